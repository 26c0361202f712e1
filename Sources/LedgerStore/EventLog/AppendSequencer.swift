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
    /// The writer's counters (for metrics and benchmarks).
    var writerCounts: (overlapped: Int, failedAssumptions: Int, careful: Int) { writer.counts }

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

    /// A batch sent and not yet answered.
    private struct InFlight {
        let tickets: [Ticket]
        let sent: BatchWriter.Sent
    }

    /// The writer: writes batch after batch while appends are pending, so no thread hop or handoff
    /// separates two batches. Up to `BatchWriter.slots` optimistic batches are in flight at once: the
    /// next one is planned and sent while the previous one commits. When the queue is empty the writer
    /// watches it a little longer before it stops.
    private func writeWhilePending() {
        var inFlight: [InFlight] = []
        while true {
            // Send while a connection is free and appends are pending.
            while inFlight.count < BatchWriter.slots {
                var batch = takeBatch(keepWriting: true)
                if batch.isEmpty, inFlight.isEmpty {
                    let until = MonotonicClock.now() + Self.lingerNanoseconds
                    while batch.isEmpty, MonotonicClock.now() < until {
                        sched_yield()
                        batch = takeBatch(keepWriting: true)
                    }
                    if batch.isEmpty { batch = takeBatch(keepWriting: false) }
                    if batch.isEmpty { return }
                }
                if batch.isEmpty { break }
                let requests = batch.flatMap(\.requests), groupSizes = batch.map(\.requests.count)
                do {
                    if let sent = try writer.send(requests, groupSizes: groupSizes, recordedAt: clock(), follows: !inFlight.isEmpty) {
                        inFlight.append(InFlight(tickets: batch, sent: sent))
                        continue
                    }
                    if !inFlight.isEmpty {
                        // It cannot follow: once what is in flight is answered, it may still lead.
                        settle(&inFlight)
                        if let sent = try writer.send(requests, groupSizes: groupSizes, recordedAt: clock(), follows: false) {
                            inFlight.append(InFlight(tickets: batch, sent: sent))
                            continue
                        }
                    }
                } catch {
                    // Nothing of this batch reached the database (the connection broke while sending).
                    // What is in flight is answered first, then this batch is written carefully.
                }
                // This batch must be written carefully: first settle what is in flight.
                settle(&inFlight)
                writeCarefully([batch])
            }
            settle(&inFlight, oldestOnly: true)
        }
    }

    /// Receives in-flight batches in the order they were sent (all, or the oldest) and completes their
    /// tickets; batches that failed are written again carefully, in order, once every batch sent after
    /// them has been answered (those fail too when they built on a failed one, by their guards).
    private func settle(_ inFlight: inout [InFlight], oldestOnly: Bool = false) {
        var rewrite: [[Ticket]] = []
        var failed = false
        var received = 0
        while !inFlight.isEmpty {
            // After a failure every later batch is received too: it may have built on the failed one.
            if oldestOnly, received > 0, !failed { break }
            let first = inFlight.removeFirst()
            received += 1
            do {
                if let outcome = try writer.receive(first.sent) {
                    complete(first.tickets, outcome)
                } else {
                    rewrite.append(first.tickets)
                    failed = true
                }
            } catch let error as LedgerStoreError where Self.isRequestFault(error) {
                rewrite.append(first.tickets)
                failed = true
            } catch {
                fail(first.tickets, error)
                failed = true
            }
        }
        if !rewrite.isEmpty { writeCarefully(rewrite) }
    }

    /// Writes batches carefully, in order; a batch the database refuses because of one ticket's content
    /// is written again ticket by ticket, so only the tickets it refuses fail.
    private func writeCarefully(_ batches: [[Ticket]]) {
        for batch in batches {
            do {
                try write(batch)
            } catch let error as LedgerStoreError where batch.count > 1 && Self.isRequestFault(error) {
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

    /// Writes a batch of tickets carefully in one transaction and completes each; throws when it failed.
    /// A deadlock or serialization failure (another process's writer) is tried again, twice.
    private func write(_ batch: [Ticket]) throws {
        let requests = batch.flatMap(\.requests)
        var attempt = 1
        while true {
            do {
                complete(batch, try writer.writeCarefully(requests, groupSizes: batch.map(\.requests.count), recordedAt: clock()))
                return
            } catch let error as LedgerStoreError where error.code == .conflict && attempt < 3 {
                attempt += 1
            }
        }
    }

    /// Completes a written batch's tickets: each group's entries, or its first refusal.
    private func complete(_ batch: [Ticket], _ written: BatchWriter.Outcome) {
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
