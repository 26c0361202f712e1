import Logging
import ServiceLifecycle
import Synchronization

/// Buffers usage events and writes them in batches, so recording usage costs a request no round
/// trip. Flushes every `interval` and once more on graceful shutdown.
public final class UsageRecorder: Service, Sendable {
    private let store: AccountStore
    private let interval: Duration
    private let logger: Logger
    private let buffer = Mutex<[UsageEvent]>([])

    public init(store: AccountStore, interval: Duration, logger: Logger) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    public func record(_ event: UsageEvent) {
        buffer.withLock { $0.append(event) }
    }

    /// Writes what is buffered now.
    public func flush() async {
        let events = buffer.withLock { b -> [UsageEvent] in
            let e = b
            b = []
            return e
        }
        guard !events.isEmpty else { return }
        do {
            try await store.record(events)
        } catch {
            // Keep them for the next attempt rather than lose them.
            buffer.withLock { $0.insert(contentsOf: events, at: 0) }
            logger.warning("usage events could not be written; will retry", metadata: ["ledger.count": "\(events.count)", "ledger.error": "\(error)"])
        }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // Wakes at once on graceful shutdown, so stopping never waits out an interval.
            let interval = self.interval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            await flush()
        }
        await flush()
    }
}
