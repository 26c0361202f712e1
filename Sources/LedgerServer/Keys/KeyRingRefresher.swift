import Logging
import ServiceLifecycle

/// Re-reads the node's key events every `interval`, so rotations made by any process reach this one.
public struct KeyRingRefresher: Service {
    let ring: KeyRing
    let interval: Duration
    let logger: Logger

    public init(ring: KeyRing, interval: Duration, logger: Logger) {
        self.ring = ring
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var lastKid = ring.current.signer?.kid
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // Wakes at once on graceful shutdown, so stopping never waits out an interval.
            let interval = self.interval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            if Task.isShuttingDownGracefully || Task.isCancelled { break }
            do {
                let snapshot = try await ring.refresh()
                if snapshot.signer?.kid != lastKid {
                    logger.notice("signing key changed", metadata: ["ledger.kid": "\(snapshot.signer?.kid ?? "none")"])
                    lastKid = snapshot.signer?.kid
                }
            } catch {
                logger.warning("could not re-read the node's keys", metadata: ["ledger.error": "\(error)"])
            }
        }
    }
}
