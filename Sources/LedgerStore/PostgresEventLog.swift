import CERKit
import Foundation
import LedgerCore
import Synchronization

/// The result of one append.
public enum AppendResult: Sendable, Equatable {
    /// Written now, at this entry.
    case appended(LedgerEntry)
    /// An idempotent retry: the entry written earlier under the same key.
    case existing(LedgerEntry)

    public var entry: LedgerEntry {
        switch self {
        case .appended(let e), .existing(let e): return e
        }
    }
}

/// Why an append was refused (not an operational fault).
public enum AppendRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    case versionConflict(subject: String, expected: Int64, actual: Int64)
    case invalid(String)

    public var description: String {
        switch self {
        case .versionConflict(let s, let e, let a): return "subject \(s) is at version \(a), not the expected \(e)"
        case .invalid(let why): return why
        }
    }
}

/// The append-only event log in PostgreSQL. Concurrent appends are batched into one transaction
/// (group commit) that takes the head row `FOR UPDATE`, so any number of processes produce one dense log.
public final class PostgresEventLog: Sendable {
    public let pool: PostgresConnectionPool
    /// Most appends written by one transaction.
    public let maxBatch: Int
    private let clock: @Sendable () -> Int64
    private let sequencer = Mutex(SequencerState())

    /// Batches written and entries appended (for metrics).
    public var statistics: (batches: Int, appended: Int) { sequencer.withLock { ($0.batches, $0.appended) } }

    private let onBatch: (@Sendable (_ appended: Int) -> Void)?

    /// `onBatch` is told the number of entries each committed batch appended (for metrics).
    public init(
        pool: PostgresConnectionPool, maxBatch: Int = 256, clock: @escaping @Sendable () -> Int64 = PostgresEventLog.wallClock,
        onBatch: (@Sendable (_ appended: Int) -> Void)? = nil
    ) {
        self.pool = pool
        self.maxBatch = maxBatch
        self.clock = clock
        self.onBatch = onBatch
    }

    /// Milliseconds since the epoch from the system clock.
    public static let wallClock: @Sendable () -> Int64 = { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    static let columns = "idx, subject, subject_index, type, account, (extract(epoch from recorded_at) * 1000)::bigint, body, payload_digest, prev_subject_leaf, idempotency_key, leaf_hash"

    // MARK: Appending

    /// Appends one event; waits until its batch has committed. Throws `AppendRefusal` for a version
    /// conflict or an invalid request, `LedgerStoreError` for operational faults (retryable ones say so).
    public func append(_ request: AppendRequest) async throws -> AppendResult {
        try await append(group: [request])[0]
    }

    /// Appends several events atomically, in order, in one batch: either every one is appended (or found
    /// as an idempotent retry), or none is and the first refusal is thrown.
    public func append(group requests: [AppendRequest]) async throws -> [AppendResult] {
        guard !requests.isEmpty else { return [] }
        let ticket = Ticket(requests: requests)
        let startWriter = sequencer.withLock { s -> Bool in
            s.pending.append(ticket)
            if s.isWriting { return false }
            s.isWriting = true
            return true
        }
        if startWriter { pool.submitBlocking({ [self] in writeWhilePending() }, inactive: { [self] in failPending() }) }
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<[AppendResult], any Error>) in
            let ready = sequencer.withLock { _ -> Result<[AppendResult], any Error>? in
                if let result = ticket.result { return result }
                ticket.continuation = c
                return nil
            }
            if let ready { c.resume(with: ready) }
        }
    }

    final class Ticket: @unchecked Sendable {  // fields guarded by the sequencer mutex
        let requests: [AppendRequest]
        var result: Result<[AppendResult], any Error>?
        var continuation: CheckedContinuation<[AppendResult], any Error>?
        init(requests: [AppendRequest]) { self.requests = requests }
    }

    final class WriterConnection: @unchecked Sendable {  // used only by the one running writer
        var connection: PostgresConnection?
    }

    struct SequencerState {
        var pending: [Ticket] = []
        var isWriting = false
        var batches = 0
        var appended = 0
    }

    private let writer = WriterConnection()

    private func complete(_ ticket: Ticket, _ result: Result<[AppendResult], any Error>) {
        let c = sequencer.withLock { _ -> CheckedContinuation<[AppendResult], any Error>? in
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
        let pending = sequencer.withLock { s -> [Ticket] in
            let p = s.pending
            s.pending = []
            s.isWriting = false
            return p
        }
        for t in pending { complete(t, .failure(LedgerStoreError(.shutdown, "the event log's database pool is shut down"))) }
    }

    /// The writer: runs on a database thread with its own connection and writes batch after batch while
    /// appends are pending, so no thread hop or handoff separates two batches.
    private func writeWhilePending() {
        while true {
            let batch = sequencer.withLock { s -> [Ticket] in
                let n = min(maxBatch, s.pending.count)
                if n == 0 {
                    s.isWriting = false
                    return []
                }
                let batch = Array(s.pending.prefix(n))
                s.pending.removeFirst(n)
                return batch
            }
            if batch.isEmpty { return }
            let requests = batch.flatMap(\.requests)
            do {
                if writer.connection == nil || writer.connection!.isBroken {
                    writer.connection?.close()
                    writer.connection = try pool.makeDedicatedConnection()
                }
                let outcomes = try Self.writeBatch(
                    requests, groupSizes: batch.map(\.requests.count), recordedAt: clock(), on: writer.connection!)
                let appended = outcomes.filter { if case .appended = $0 { return true } else { return false } }.count
                sequencer.withLock { s in
                    s.batches += 1
                    s.appended += appended
                }
                onBatch?(appended)
                var start = 0
                for ticket in batch {
                    let group = outcomes[start..<(start + ticket.requests.count)]
                    start += ticket.requests.count
                    complete(ticket, Self.result(of: group))
                }
            } catch {
                if writer.connection?.isBroken == true {
                    writer.connection?.close()
                    writer.connection = nil
                }
                for ticket in batch { complete(ticket, .failure(error)) }
            }
        }
    }

    /// A group's result: all its entries, or its first refusal (preferring the member that caused it).
    static func result(of group: ArraySlice<AppendOutcome>) -> Result<[AppendResult], any Error> {
        var results: [AppendResult] = []
        var cause: AppendRefusal?
        var refusedWithGroup = false
        for outcome in group {
            switch outcome {
            case .appended(let e): results.append(.appended(e))
            case .existing(let e): results.append(.existing(e))
            case .versionConflict(let s, let e, let a): cause = cause ?? .versionConflict(subject: s, expected: e, actual: a)
            case .rejected(let why) where why == AppendPlanner.refusedWithGroup: refusedWithGroup = true
            case .rejected(let why): cause = cause ?? .invalid(why)
            }
        }
        if let cause { return .failure(cause) }
        if refusedWithGroup { return .failure(AppendRefusal.invalid(AppendPlanner.refusedWithGroup)) }
        return .success(results)
    }

    /// One batch in one transaction, in two round trips (pipeline mode): BEGIN, lock the head, read the
    /// subjects' last entries and the idempotency keys; then plan, insert, grow the head and COMMIT.
    static func writeBatch(
        _ requests: [AppendRequest], groupSizes: [Int]? = nil, recordedAt: Int64, on connection: PostgresConnection
    ) throws -> [AppendOutcome] {
        let subjects = Array(Set(requests.map(\.subject)))
        let keyed = requests.filter { $0.idempotencyKey != nil }
        var reads: [SQLQuery] = [
            "BEGIN",
            "SELECT size FROM ledger_head WHERE id = 1 FOR UPDATE",
            // One index probe per subject for its last entry (stays O(log n) as subjects grow).
            """
            SELECT s.subject, e.subject_index, e.leaf_hash FROM unnest(\(textArray: subjects)::text[]) AS s(subject)
            CROSS JOIN LATERAL (SELECT subject_index, leaf_hash FROM ledger_entries WHERE subject = s.subject
                                ORDER BY subject_index DESC LIMIT 1) e
            """,
        ]
        if !keyed.isEmpty {
            // One index probe per key. LIMIT 1 (the key is unique) keeps the planner from flattening the
            // LATERAL subquery into a hash join over the whole table, which it otherwise does.
            reads.append(SQLQuery(unsafeSQL: """
                SELECT e.* FROM unnest($1::text[], $2::text[], $3::text[]) AS k(subject, type, key)
                CROSS JOIN LATERAL (SELECT \(columns) FROM ledger_entries WHERE subject = k.subject AND type = k.type
                                    AND idempotency_key = k.key AND idempotency_key IS NOT NULL LIMIT 1) e
                """, binds: [.textArray(keyed.map(\.subject)), .textArray(keyed.map(\.type)), .textArray(keyed.map { $0.idempotencyKey! })]))
        }
        do {
            let results = try connection.pipeline(reads)
            guard let sizeText = results[1].rows.first?[0], let size = Int64(sizeText) else {
                throw LedgerStoreError(.database, "the ledger head row is missing; run migrations")
            }
            var heads: [String: SubjectHead] = [:]
            for row in results[2].rows {
                heads[row[0]!] = SubjectHead(count: Int64(row[1]!)! + 1, lastLeaf: decodeBytea(row[2]))
            }
            var existing: [AppendPlanner.IdempotencyKey: LedgerEntry] = [:]
            if results.count > 3 {
                for row in results[3].rows {
                    let entry = try decodeEntry(row)
                    existing[AppendPlanner.IdempotencyKey(subject: entry.subject, type: entry.type, key: entry.idempotencyKey!)] = entry
                }
            }
            var salts: [[UInt8]?] = []
            var digests: [[UInt8]?] = []
            var generator = SystemRandomNumberGenerator()
            for r in requests {
                if let payload = r.payload {
                    let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
                    salts.append(salt)
                    digests.append(ProtocolHash.sha256(salt + payload))
                } else {
                    salts.append(nil)
                    digests.append(nil)
                }
            }
            let (outcomes, newSize) = AppendPlanner.plan(
                requests: requests, size: size, subjects: heads, existing: existing, payloadDigests: digests, recordedAt: recordedAt, groupSizes: groupSizes)
            var writes: [SQLQuery] = []
            var entries: [LedgerEntry] = []
            var payloadValues: [SQLValue] = []
            for (i, outcome) in outcomes.enumerated() {
                guard case .appended(let e) = outcome else { continue }
                entries.append(e)
                if let salt = salts[i], let digest = digests[i], let payload = requests[i].payload {
                    payloadValues += [.bytes(digest), .bytes(salt), .bytes(payload)]
                }
            }
            if !payloadValues.isEmpty {
                let rows = (0..<(payloadValues.count / 3)).map { "($\($0 * 3 + 1), $\($0 * 3 + 2), $\($0 * 3 + 3))" }.joined(separator: ", ")
                writes.append(SQLQuery(unsafeSQL: "INSERT INTO ledger_payloads (digest, salt, content) VALUES \(rows)", binds: payloadValues))
            }
            if !entries.isEmpty {
                var values: [SQLValue] = []
                var tuples: [String] = []
                for e in entries {
                    let n = values.count
                    tuples.append("($\(n + 1), $\(n + 2), $\(n + 3), $\(n + 4), $\(n + 5), to_timestamp($\(n + 6)::bigint / 1000.0), $\(n + 7), $\(n + 8), $\(n + 9), $\(n + 10), $\(n + 11))")
                    let body = (try? CanonicalJSON.string(e.body, profile: .nexartV1)) ?? "{}"
                    values += [
                        .int(e.index), .text(e.subject), .int(e.subjectIndex), .text(e.type), e.account.map(SQLValue.text) ?? .null,
                        .int(e.recordedAt), .text(body), e.payloadDigest.map(SQLValue.bytes) ?? .null,
                        e.prevSubjectLeaf.map(SQLValue.bytes) ?? .null, e.idempotencyKey.map(SQLValue.text) ?? .null, .bytes(e.leafHash),
                    ]
                }
                writes.append(SQLQuery(unsafeSQL: """
                    INSERT INTO ledger_entries (idx, subject, subject_index, type, account, recorded_at, body, payload_digest,
                        prev_subject_leaf, idempotency_key, leaf_hash) VALUES \(tuples.joined(separator: ", "))
                    """, binds: values))
                writes.append("UPDATE ledger_head SET size = \(newSize) WHERE id = 1")
            }
            writes.append("COMMIT")
            _ = try connection.pipeline(writes)
            return outcomes
        } catch {
            if !connection.isBroken { _ = try? connection.execute("ROLLBACK") }
            throw error
        }
    }

    static func decodeEntry(_ row: [String?]) throws(LedgerStoreError) -> LedgerEntry {
        guard let idx = row[0].flatMap({ Int64($0) }), let subject = row[1], let subjectIndex = row[2].flatMap({ Int64($0) }),
            let type = row[3], let recorded = row[5].flatMap({ Int64($0) }), let bodyText = row[6],
            let leaf = decodeBytea(row[10])
        else { throw LedgerStoreError(.database, "an entry row could not be read") }
        guard let body = try? JSONParser.parse(bodyText) else {
            throw LedgerStoreError(.database, "entry \(idx) has a body that is not JSON")
        }
        // The stored leaf hash, not a recomputed one: audits compare the two.
        return LedgerEntry.unchecked(
            index: idx, subject: subject, subjectIndex: subjectIndex, type: type, account: row[4], recordedAt: recorded, body: body,
            payloadDigest: decodeBytea(row[7]), prevSubjectLeaf: decodeBytea(row[8]), idempotencyKey: row[9], leafHash: leaf)
    }

    // MARK: Reading

    /// The number of entries.
    public func size() async throws -> Int64 {
        try await pool.withConnection { c in Int64(try c.query("SELECT size FROM ledger_head WHERE id = 1").rows[0][0]!)! }
    }

    /// Entries with `from <= index < from + limit`, in order.
    public func entries(from: Int64, limit: Int) async throws -> [LedgerEntry] {
        try await pool.withConnection { c in
            try c.query(SQLQuery(unsafeSQL: "SELECT \(Self.columns) FROM ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2", binds: [.int(from), .int(Int64(limit))]))
                .rows.map { row throws(LedgerStoreError) in try Self.decodeEntry(row) }
        }
    }

    /// A subject's entries in order, with its chain checked.
    public func entries(subject: String) async throws -> (entries: [LedgerEntry], problems: [LedgerProblem]) {
        let entries = try await pool.withConnection { c in
            try c.query(SQLQuery(unsafeSQL: "SELECT \(Self.columns) FROM ledger_entries WHERE subject = $1 ORDER BY subject_index", binds: [.text(subject)]))
                .rows.map { row throws(LedgerStoreError) in try Self.decodeEntry(row) }
        }
        var problems: [LedgerProblem] = []
        var previous: LedgerEntry? = nil
        for e in entries {
            if e.subjectIndex != (previous.map { $0.subjectIndex + 1 } ?? 0) {
                problems.append(LedgerProblem(index: e.index, what: "an entry of \(subject) is missing before this one"))
            }
            if e.prevSubjectLeaf != previous?.leafHash { problems.append(LedgerProblem(index: e.index, what: "chain link does not match the previous entry")) }
            if !e.isLeafHashConsistent { problems.append(LedgerProblem(index: e.index, what: "leaf hash does not match the entry")) }
            previous = e
        }
        return (entries, problems)
    }

    /// Every node-key event (`key.*` types), in log order.
    public func keyEvents() async throws -> [LedgerEntry] {
        try await pool.withConnection { c in
            // The predicate repeats the partial index's, so the index serves it.
            try c.query(SQLQuery(unsafeSQL: "SELECT \(Self.columns) FROM ledger_entries WHERE type LIKE 'key.%' ORDER BY idx"))
                .rows.map { row throws(LedgerStoreError) in try Self.decodeEntry(row) }
        }
    }

    /// An account's entries of one type, newest first.
    public func entries(account: String, type: String, limit: Int, offset: Int) async throws -> [LedgerEntry] {
        try await pool.withConnection { c in
            try c.query(SQLQuery(
                unsafeSQL: """
                    SELECT \(Self.columns) FROM ledger_entries WHERE account = $1 AND type = $2 ORDER BY idx DESC LIMIT $3 OFFSET $4
                    """, binds: [.text(account), .text(type), .int(Int64(limit)), .int(Int64(offset))])
            ).rows.map { row throws(LedgerStoreError) in try Self.decodeEntry(row) }
        }
    }

    /// The entry holding an idempotency key, if any.
    public func entry(subject: String, type: String, idempotencyKey: String) async throws -> LedgerEntry? {
        try await pool.withConnection { c in
            try c.query(SQLQuery(
                unsafeSQL: "SELECT \(Self.columns) FROM ledger_entries WHERE subject = $1 AND type = $2 AND idempotency_key = $3",
                binds: [.text(subject), .text(type), .text(idempotencyKey)])
            ).rows.first.map { row throws(LedgerStoreError) in try Self.decodeEntry(row) }
        }
    }

    /// A payload's bytes, or nil when it was never stored or has been deleted.
    public func payload(digest: [UInt8]) async throws -> [UInt8]? {
        try await pool.withConnection { c in
            decodeBytea(try c.query("SELECT content FROM ledger_payloads WHERE digest = \(digest)").rows.first?[0])
        }
    }

    /// Deletes a payload and its salt; the entry, its leaf and every proof stay valid.
    @discardableResult
    public func deletePayload(digest: [UInt8]) async throws -> Bool {
        try await pool.withConnection { c in try c.execute("DELETE FROM ledger_payloads WHERE digest = \(digest)") == 1 }
    }
}
