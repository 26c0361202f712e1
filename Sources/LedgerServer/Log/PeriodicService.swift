import Logging
import ServiceLifecycle

/// Background work done now and then every `interval` until graceful shutdown (which ends the wait at
/// once). A failure is logged when it starts and when the work succeeds again, not on every attempt.
public struct PeriodicService: Service {
    let interval: Duration
    let logger: Logger
    /// What the work is, for the log lines ("sign a checkpoint").
    let what: String
    let work: @Sendable () async throws -> Void

    public init(every interval: Duration, logger: Logger, what: String, _ work: @escaping @Sendable () async throws -> Void) {
        self.interval = interval
        self.logger = logger
        self.what = what
        self.work = work
    }

    public func run() async throws {
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await work()
                if failing { logger.notice("could \(what) again") }
                failing = false
            } catch {
                if !failing { logger.warning("could not \(what)", metadata: ["ledger.error": "\(error)"]) }
                failing = true
            }
            let interval = self.interval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
