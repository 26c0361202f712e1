import LedgerProjections
import Logging
import ServiceLifecycle

/// Keeps the read models close to the log's head in the background (appends made by any process).
/// Readers still catch a model up themselves when it is behind (LedgerQueries), so an answer always
/// includes every append committed before the request.
public struct ProjectionService: Service {
    let runner: ProjectionRunner
    let interval: Duration
    let logger: Logger

    public init(runner: ProjectionRunner, interval: Duration, logger: Logger) {
        self.runner = runner
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                // Sequentially, so a long catch-up (after a migration or downtime) never holds more than
                // two of the pool's connections.
                try await runner.catchUp(wait: false, concurrently: false)
                if failing { logger.notice("projections are being applied again") }
                failing = false
            } catch {
                if !failing { logger.warning("could not apply the log to the projections", metadata: ["ledger.error": "\(error)"]) }
                failing = true
            }
            let interval = self.interval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
