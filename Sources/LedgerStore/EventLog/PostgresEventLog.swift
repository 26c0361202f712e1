import CERKit
import Foundation
public import LedgerCore
import Synchronization

/// The append-only event log in PostgreSQL: the one API the rest of the ledger appends and reads
/// through. Appends go to the `AppendSequencer`, which group-commits them with one `BatchWriter`;
/// reads are plain queries (`EntryRows`); the Merkle tree over the entries is in `Tree/TreeStorage.swift`.
public final class PostgresEventLog: Sendable {
    public let pool: PostgresConnectionPool
    /// Most appends (tickets) written by one transaction.
    public var maxBatch: Int { sequencer.maxBatch }
    let sequencer: AppendSequencer
    /// Stored tree nodes of level ≥ `cachedNodeLevel` read so far. Nodes never change once written, so
    /// they are cached without invalidation; a proof then reads only its few low nodes from the database.
    let nodeCache = Mutex<[MerkleNodeID: [UInt8]]>([:])
    static let cachedNodeLevel = 6
    static let nodeCacheLimit = 200_000

    /// Batches written and entries appended (for metrics).
    public var statistics: (batches: Int, appended: Int) { sequencer.statistics }
    /// Batches that failed on one ticket's content and were written again ticket by ticket.
    public var isolatedBatches: Int { sequencer.isolatedBatches }
    /// Batches sent while another was in flight, optimistic batches whose assumption failed, and batches
    /// written under the head lock (for metrics and benchmarks).
    public var writerCounts: (overlapped: Int, failedAssumptions: Int, careful: Int) { sequencer.writerCounts }

    /// `onBatch` is told the number of entries each committed batch appended (for metrics).
    /// `maintainsTree` false is for a benchmark only (to measure what the tree costs): such a log has an
    /// incomplete tree, which `ledger verify` reports.
    public init(
        pool: PostgresConnectionPool, maxBatch: Int = 256, clock: @escaping @Sendable () -> Int64 = PostgresEventLog.wallClock,
        onBatch: (@Sendable (_ appended: Int) -> Void)? = nil, maintainsTree: Bool = true
    ) {
        self.pool = pool
        sequencer = AppendSequencer(pool: pool, maxBatch: maxBatch, clock: clock, onBatch: onBatch, maintainsTree: maintainsTree)
    }

    /// Milliseconds since the epoch from the system clock.
    public static let wallClock: @Sendable () -> Int64 = { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    // MARK: Appending

    /// Appends one event; waits until its batch has committed. Throws `AppendRefusal` for a version
    /// conflict or an invalid request, `LedgerStoreError` for operational faults (retryable ones say so).
    public func append(_ request: AppendRequest) async throws -> AppendResult {
        try await append(group: [request])[0]
    }

    /// Appends several events atomically, in order, in one batch: either every one is appended (or found
    /// as an idempotent retry), or none is and the first refusal is thrown.
    public func append(group requests: [AppendRequest]) async throws -> [AppendResult] {
        try await appendMetered(group: requests).results
    }

    /// As `append(group:)`, and the account's usage after the group's charge (when a member carries one
    /// and was appended, not found as a retry).
    public func appendMetered(group requests: [AppendRequest]) async throws -> (results: [AppendResult], meter: MeterReading?) {
        try await sequencer.append(requests)
    }

    /// True for a refusal caused by what a request carries (a value, a constraint), not by the database's
    /// state: retrying the other tickets of its batch without it will succeed.
    public static func isRequestFault(_ error: LedgerStoreError) -> Bool { AppendSequencer.isRequestFault(error) }

    // MARK: Reading

    /// The number of entries.
    public func size() async throws -> Int64 {
        try await pool.withConnection { c in try c.headSize() }
    }

    /// Entries with `from <= index < from + limit`, in order.
    public func entries(from: Int64, limit: Int) async throws -> [LedgerEntry] {
        try await pool.withConnection { c in
            try EntryRows.decode(c.query("SELECT \(sql: EntryRows.columns) FROM ledger_entries WHERE idx >= \(from) ORDER BY idx LIMIT \(limit)"))
        }
    }

    /// The entry at `index`, if the log has it.
    public func entry(index: Int64) async throws -> LedgerEntry? {
        try await pool.withConnection { c in
            try EntryRows.decode(c.query("SELECT \(sql: EntryRows.columns) FROM ledger_entries WHERE idx = \(index)")).first
        }
    }

    /// A subject's entries in order, with its chain checked.
    public func entries(subject: String) async throws -> (entries: [LedgerEntry], problems: [LedgerProblem]) {
        let entries = try await pool.withConnection { c in
            try EntryRows.decode(c.query("SELECT \(sql: EntryRows.columns) FROM ledger_entries WHERE subject = \(subject) ORDER BY subject_index"))
        }
        return (entries, SubjectChain.problems(subject: subject, entries))
    }

    /// Every node-key event (`key.*` types), in log order.
    public func keyEvents(after: Int64 = -1, limit: Int = Int(Int32.max)) async throws -> [LedgerEntry] {
        try await pool.withConnection { c in
            // The predicate repeats the partial index's, so the index serves it.
            try EntryRows.decode(c.query("""
                SELECT \(sql: EntryRows.columns) FROM ledger_entries WHERE type LIKE 'key.%' AND idx > \(after) ORDER BY idx LIMIT \(Int64(limit))
                """))
        }
    }

    /// An account's entries of one type, newest first.
    public func entries(account: String, type: String, limit: Int, offset: Int) async throws -> [LedgerEntry] {
        try await pool.withConnection { c in
            try EntryRows.decode(c.query("""
                SELECT \(sql: EntryRows.columns) FROM ledger_entries WHERE account = \(account) AND type = \(type)
                ORDER BY idx DESC LIMIT \(limit) OFFSET \(offset)
                """))
        }
    }

    /// The entry holding an idempotency key, if any.
    public func entry(subject: String, type: String, idempotencyKey: String) async throws -> LedgerEntry? {
        try await pool.withConnection { c in
            try EntryRows.decode(c.query("""
                SELECT \(sql: EntryRows.columns) FROM ledger_entries WHERE subject = \(subject) AND type = \(type) AND idempotency_key = \(idempotencyKey)
                """)).first
        }
    }

    /// The newest entry of `type` among the last `window` entries, if any.
    public func latestEntry(type: String, window: Int64 = 100_000) async throws -> LedgerEntry? {
        try await pool.withConnection { c in
            let head = try c.headSize()
            return try EntryRows.decode(c.query("""
                SELECT \(sql: EntryRows.columns) FROM ledger_entries WHERE type = \(type) AND idx >= \(head - window) ORDER BY idx DESC LIMIT 1
                """)).first
        }
    }

    /// Evidence entries (`checkpoint.timestamped`, `anchor.recorded`) before index `before`, newest first.
    public func evidenceEntries(before: Int64, limit: Int) async throws -> [LedgerEntry] {
        try await pool.withConnection { c in
            try EntryRows.decode(c.query("""
                SELECT \(sql: EntryRows.columns) FROM ledger_entries
                WHERE type IN ('checkpoint.timestamped', 'anchor.recorded') AND idx < \(before) ORDER BY idx DESC LIMIT \(limit)
                """))
        }
    }

    /// Evidence entries about checkpoints of sizes in `sizes` (subjects `checkpoint:<size>`), oldest first.
    public func evidenceEntries(checkpointSizes sizes: [Int64]) async throws -> [LedgerEntry] {
        guard !sizes.isEmpty else { return [] }
        return try await pool.withConnection { c in
            try EntryRows.decode(c.query("""
                SELECT \(sql: EntryRows.columns) FROM ledger_entries
                WHERE subject = ANY(\(textArray: sizes.map { "checkpoint:\($0)" })::text[]) ORDER BY idx
                """))
        }
    }

    /// Whether entries `from..<to` hold one whose type is not `type`.
    public func containsEntry(from: Int64, to: Int64, notOfTypes types: [String]) async throws -> Bool {
        try await pool.withConnection { c in
            try c.query("SELECT EXISTS (SELECT 1 FROM ledger_entries WHERE idx >= \(from) AND idx < \(to) AND type <> ALL(\(textArray: types)::text[]))").rows.first?[0] == "t"
        }
    }

    /// A stored claim's value and the entry that made it, if the key is claimed.
    public func claim(scope: String, key: String) async throws -> (value: String, entryIndex: Int64)? {
        try await pool.withConnection { c in
            try c.query("SELECT value, entry_idx FROM ledger_claims WHERE scope = \(scope) AND key = \(key)")
                .rows.first.map { r throws(LedgerStoreError) in (try r.text(0), try r.int64(1)) }
        }
    }

    /// A payload's bytes, or nil when it was never stored or has been deleted.
    public func payload(digest: [UInt8]) async throws -> [UInt8]? {
        try await pool.withConnection { c in
            try c.query("SELECT content FROM ledger_payloads WHERE digest = \(digest)").rows.first.map { r throws(LedgerStoreError) in try r.bytes(0) }
        }
    }

    /// Deletes a payload and its salt (recording its partition for a rewrite, as every erasure does); the
    /// entry, its leaf and every proof stay valid.
    @discardableResult
    public func deletePayload(digest: [UInt8]) async throws -> Bool {
        try await erasePayloads(digests: [digest]) == 1
    }
}
