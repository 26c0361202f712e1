public import Logging
public import ServiceLifecycle
import Synchronization

/// Buffers usage events and writes them in batches, so recording usage costs a request no round
/// trip. Flushes every `interval` and once more on graceful shutdown.
public final class UsageRecorder: Service, Sendable {
    private let store: AccountStore
    private let interval: Duration
    private let logger: Logger
    private let buffer = Mutex<[UsageEvent]>([])
    private let droppedCount = Mutex(0)
    /// Most events held while the database is away; later ones are dropped and counted.
    let capacity: Int

    public init(store: AccountStore, interval: Duration, logger: Logger, capacity: Int = 100_000) {
        self.store = store
        self.interval = interval
        self.logger = logger
        self.capacity = capacity
    }

    /// Events dropped since start (buffer full while the database was away), exported as a metric.
    public var dropped: Int { droppedCount.withLock { $0 } }

    public func record(_ event: UsageEvent) {
        let kept = buffer.withLock { b -> Bool in
            guard b.count < capacity else { return false }
            b.append(event)
            return true
        }
        if !kept { droppedCount.withLock { $0 += 1 } }
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
            // Keep them for the next attempt (one per interval) as far as the buffer has room.
            let lost = buffer.withLock { b -> Int in
                let room = max(0, capacity - b.count)
                b.insert(contentsOf: events.prefix(room), at: 0)
                return max(0, events.count - room)
            }
            if lost > 0 { droppedCount.withLock { $0 += lost } }
            logger.warning("usage events could not be written; will retry", metadata: ["ledger.count": "\(events.count)", "ledger.error": "\(error)"])
        }
    }

    public func run() async throws {
        try await PeriodicService(every: interval, logger: logger, what: "write usage", startsAfterInterval: true, runsOnShutdown: true) { [self] in
            await flush()
        }.run()
    }
}
