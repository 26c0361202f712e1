public import Logging
public import ServiceLifecycle

/// The one kind of background loop: work done every `interval` until graceful shutdown (which ends
/// the wait at once), first at once or first after one interval, and optionally once more when
/// shutting down. A failure is logged when it starts and when the work succeeds again, not on every
/// attempt.
public struct PeriodicService: Service {
    let interval: Duration
    let logger: Logger
    /// What the work is, for the log lines ("sign a checkpoint").
    let what: String
    /// Whether the first run waits one interval.
    let startsAfterInterval: Bool
    /// Whether the work runs once more on shutdown (a final flush).
    let runsOnShutdown: Bool
    let work: @Sendable () async throws -> Void

    public init(
        every interval: Duration, logger: Logger, what: String, startsAfterInterval: Bool = false, runsOnShutdown: Bool = false,
        _ work: @escaping @Sendable () async throws -> Void
    ) {
        self.interval = interval
        self.logger = logger
        self.what = what
        self.startsAfterInterval = startsAfterInterval
        self.runsOnShutdown = runsOnShutdown
        self.work = work
    }

    public func run() async throws {
        var failing = false
        var first = true
        func once() async {
            do {
                try await work()
                if failing { logger.notice("could \(what) again") }
                failing = false
            } catch {
                if !failing { logger.warning("could not \(what)", metadata: ["ledger.error": "\(error)"]) }
                failing = true
            }
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if !(first && startsAfterInterval) { await once() }
            first = false
            let interval = self.interval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
        if runsOnShutdown { await once() }
    }
}
