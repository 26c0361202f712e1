#if canImport(Glibc)
    import Glibc
#endif
import LedgerCore
import Synchronization

/// Group commit: appends queue as tickets; one writer at a time, on a database thread with its own
/// connection, takes the queue in batches and writes each batch in one transaction (`BatchWriter`),
/// so any number of concurrent appenders share each commit. A batch the database refuses because of
/// one ticket's content is written again ticket by ticket, so only that ticket fails.
final class AppendSequencer: Sendable {
    let pool: PostgresConnectionPool
    /// Most tickets one batch takes.
    let maxBatch: Int
    /// Most entries one batch writes (tickets are not split: a larger group is written alone).
    static let maxBatchEntries = 4096
    /// How long an idle writer keeps watching the queue before it lets its thread go: an appender that
    /// appends again right after its acknowledgement then finds the writer running (no thread wake-up).
    static let lingerNanoseconds: UInt64 = 150_000

    private let clock: @Sendable () -> Int64
    private let onBatch: (@Sendable (_ appended: Int) -> Void)?
    private let state = Mutex(State())
    private let writer: BatchWriter

    init(pool: PostgresConnectionPool, maxBatch: Int, clock: @escaping @Sendable () -> Int64, onBatch: (@Sendable (Int) -> Void)?, maintainsTree: Bool) {
        self.pool = pool
        self.maxBatch = maxBatch
        self.clock = clock
        self.onBatch = onBatch
        writer = BatchWriter(pool: pool, maintainsTree: maintainsTree)
    }

    typealias GroupResult = (results: [AppendResult], meter: MeterReading?)

    /// One caller's group of appends, waiting for its batch.
    final class Ticket: @unchecked Sendable {  // fields guarded by the sequencer's mutex
        let requests: [AppendRequest]
        var result: Result<GroupResult, any Error>?
        var continuation: CheckedContinuation<GroupResult, any Error>?
        init(requests: [AppendRequest]) { self.requests = requests }
    }

    struct State {
        var pending: [Ticket] = []
        var isWriting = false
        var batches = 0
        var appended = 0
        var isolated = 0
    }

    var statistics: (batches: Int, appended: Int) { state.withLock { ($0.batches, $0.appended) } }
    var isolatedBatches: Int { state.withLock { $0.isolated } }

    /// Queues `requests` as one ticket and waits for its batch to commit.
    func append(_ requests: [AppendRequest]) async throws -> GroupResult {
        guard !requests.isEmpty else { return ([], nil) }
        let ticket = Ticket(requests: requests)
        let startWriter = state.withLock { s -> Bool in
            s.pending.append(ticket)
            if s.isWriting { return false }
            s.isWriting = true
            return true
        }
        if startWriter { pool.submitBlocking({ [self] in writeWhilePending() }, inactive: { [self] in failPending() }) }
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<GroupResult, any Error>) in
            let ready = state.withLock { _ -> Result<GroupResult, any Error>? in
                if let result = ticket.result { return result }
                ticket.continuation = c
                return nil
            }
            if let ready { c.resume(with: ready) }
        }
    }

    private func complete(_ ticket: Ticket, _ result: Result<GroupResult, any Error>) {
        let c = state.withLock { _ -> CheckedContinuation<GroupResult, any Error>? in
            if let c = ticket.continuation {
                ticket.continuation = nil
                return c
            }
            ticket.result = result
            return nil
        }
        c?.resume(with: result)
    }

    /// Fails every pending append (the pool was shut down before the writer could run).
    private func failPending() {
        let pending = state.withLock { s -> [Ticket] in
            let p = s.pending
            s.pending = []
            s.isWriting = false
            return p
        }
        for t in pending { complete(t, .failure(LedgerStoreError(.shutdown, "the event log's database pool is shut down"))) }
    }

    /// The next batch: at most `maxBatch` tickets and `maxBatchEntries` entries (a larger group alone).
    /// Empty when nothing is pending, in which case the writer has stopped (unless `keepWriting`).
    private func takeBatch(keepWriting: Bool) -> [Ticket] {
        state.withLock { s -> [Ticket] in
            var n = 0, entries = 0
            while n < min(maxBatch, s.pending.count), n == 0 || entries + s.pending[n].requests.count <= Self.maxBatchEntries {
                entries += s.pending[n].requests.count
                n += 1
            }
            if n == 0 {
                if !keepWriting { s.isWriting = false }
                return []
            }
            let batch = Array(s.pending.prefix(n))
            s.pending.removeFirst(n)
            return batch
        }
    }

    /// The writer: writes batch after batch while appends are pending, so no thread hop or handoff
    /// separates two batches; when the queue is empty it watches it a little longer before it stops.
    private func writeWhilePending() {
        while true {
            var batch = takeBatch(keepWriting: true)
            if batch.isEmpty {
                let until = MonotonicClock.now() + Self.lingerNanoseconds
                while batch.isEmpty, MonotonicClock.now() < until {
                    sched_yield()
                    batch = takeBatch(keepWriting: true)
                }
                if batch.isEmpty { batch = takeBatch(keepWriting: false) }
            }
            if batch.isEmpty { return }
            do {
                try write(batch)
            } catch let error as LedgerStoreError where batch.count > 1 && Self.isRequestFault(error) {
                // The database refused something one ticket carries: write each ticket alone, so only the
                // tickets it refuses fail and the others of the batch are committed.
                state.withLock { $0.isolated += 1 }
                for ticket in batch {
                    do { try write([ticket]) } catch { fail([ticket], error) }
                }
            } catch {
                fail(batch, error)
            }
        }
    }

    /// True for a refusal caused by what a request carries (a value, a constraint), not by the database's
    /// state: retrying the other tickets of its batch without it will succeed.
    static func isRequestFault(_ error: LedgerStoreError) -> Bool {
        guard let state = error.sqlState, !error.isRetryable else { return false }
        // 22: data exception, 23: integrity constraint, 54: program limit exceeded, 42: a statement refused.
        return ["22", "23", "54", "42"].contains(String(state.prefix(2)))
    }

    /// Writes a batch of tickets in one transaction and completes each; throws when the batch failed.
    private func write(_ batch: [Ticket]) throws {
        let requests = batch.flatMap(\.requests)
        let written = try writer.write(requests, groupSizes: batch.map(\.requests.count), recordedAt: clock())
        let appended = written.outcomes.reduce(0) { n, o in if case .appended = o { return n + 1 } else { return n } }
        state.withLock { s in
            s.batches += 1
            s.appended += appended
        }
        onBatch?(appended)
        var start = 0
        for ticket in batch {
            let range = start..<(start + ticket.requests.count)
            start += ticket.requests.count
            let meter = range.lazy.compactMap({ written.meters[$0] }).first
            complete(ticket, AppendResult.group(written.outcomes[range]).map { ($0, meter) }.mapError { $0 as any Error })
        }
    }

    private func fail(_ tickets: [Ticket], _ error: any Error) {
        for ticket in tickets { complete(ticket, .failure(error)) }
    }
}

/// A monotonic clock in nanoseconds (CLOCK_MONOTONIC), for the writer's short linger.
enum MonotonicClock {
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
