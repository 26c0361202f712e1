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
    /// The request's charge was not admitted.
    case notAdmitted(AdmissionRefusal)
    /// The claimed key already belongs to another value.
    case claimConflict(scope: String, key: String, existingValue: String)

    public var description: String {
        switch self {
        case .versionConflict(let s, let e, let a): return "subject \(s) is at version \(a), not the expected \(e)"
        case .invalid(let why): return why
        case .notAdmitted(let refusal): return refusal.description
        case .claimConflict(let scope, let key, let existing): return "\(key) in \(scope) already belongs to \(existing)"
        }
    }
}

/// Why a charged append was not admitted.
public enum AdmissionRefusal: Sendable, Equatable, CustomStringConvertible {
    /// The account has used its whole limit for the period.
    case quotaExceeded(used: Int64, limit: Int64)
    /// The credential was revoked (or no longer exists).
    case credentialInactive
    /// The account does not exist.
    case unknownAccount

    public var description: String {
        switch self {
        case .quotaExceeded(let used, let limit): return "the monthly quota is used up (\(used) of \(limit))"
        case .credentialInactive: return "the API key is inactive"
        case .unknownAccount: return "the account does not exist"
        }
    }
}

/// An account's usage after a charged append was admitted.
public struct MeterReading: Sendable, Equatable {
    public var used: Int64
    public var limit: Int64
    public var remaining: Int64 { max(0, limit - used) }
}

/// The append-only event log in PostgreSQL. Concurrent appends are batched into one transaction
/// (group commit) that takes the head row `FOR UPDATE`, so any number of processes produce one dense log.
public final class PostgresEventLog: Sendable {
    public let pool: PostgresConnectionPool
    /// Most appends written by one transaction.
    public let maxBatch: Int
    private let clock: @Sendable () -> Int64
    private let sequencer = Mutex(SequencerState())
    /// Stored tree nodes of level ≥ `cachedNodeLevel` read so far. Nodes never change once written, so
    /// they are cached without invalidation; a proof then reads only its few low nodes from the database.
    let nodeCache = Mutex<[MerkleNodeID: [UInt8]]>([:])
    static let cachedNodeLevel = 6
    static let nodeCacheLimit = 200_000

    /// Batches written and entries appended (for metrics).
    public var statistics: (batches: Int, appended: Int) { sequencer.withLock { ($0.batches, $0.appended) } }
    /// Batches that failed on one ticket's content and were written again ticket by ticket.
    public var isolatedBatches: Int { sequencer.withLock { $0.isolated } }

    private let onBatch: (@Sendable (_ appended: Int) -> Void)?
    /// Whether batches store the tree nodes they complete. Only a benchmark turns this off (to measure
    /// what the tree costs); such a log has an incomplete tree, which `ledger verify` reports.
    let maintainsTree: Bool

    /// `onBatch` is told the number of entries each committed batch appended (for metrics).
    public init(
        pool: PostgresConnectionPool, maxBatch: Int = 256, clock: @escaping @Sendable () -> Int64 = PostgresEventLog.wallClock,
        onBatch: (@Sendable (_ appended: Int) -> Void)? = nil, maintainsTree: Bool = true
    ) {
        self.pool = pool
        self.maxBatch = maxBatch
        self.clock = clock
        self.onBatch = onBatch
        self.maintainsTree = maintainsTree
        writer.maintainsTree = maintainsTree
    }

    /// Milliseconds since the epoch from the system clock.
    public static let wallClock: @Sendable () -> Int64 = { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    public static let columns = "idx, subject, subject_index, type, account, (extract(epoch from recorded_at) * 1000)::bigint, body, payload_digest, prev_subject_leaf, idempotency_key, leaf_hash"

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
        guard !requests.isEmpty else { return ([], nil) }
        let ticket = Ticket(requests: requests)
        let startWriter = sequencer.withLock { s -> Bool in
            s.pending.append(ticket)
            if s.isWriting { return false }
            s.isWriting = true
            return true
        }
        if startWriter { pool.submitBlocking({ [self] in writeWhilePending() }, inactive: { [self] in failPending() }) }
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<GroupResult, any Error>) in
            let ready = sequencer.withLock { _ -> Result<GroupResult, any Error>? in
                if let result = ticket.result { return result }
                ticket.continuation = c
                return nil
            }
            if let ready { c.resume(with: ready) }
        }
    }

    typealias GroupResult = (results: [AppendResult], meter: MeterReading?)

    final class Ticket: @unchecked Sendable {  // fields guarded by the sequencer mutex
        let requests: [AppendRequest]
        var result: Result<GroupResult, any Error>?
        var continuation: CheckedContinuation<GroupResult, any Error>?
        init(requests: [AppendRequest]) { self.requests = requests }
    }

    final class WriterConnection: @unchecked Sendable {  // used only by the one running writer
        var connection: PostgresConnection?
        /// The log's size after this writer's last batch (nil: unknown, read it under the lock).
        var size: Int64?
        /// Last entry of subjects this writer appended to; exact while no other writer has appended.
        var heads: [String: SubjectHead] = [:]
        /// Batches to write the careful way after an optimistic one failed (the workload is touching
        /// subjects this writer has not seen, or another writer is active).
        var carefulBatches = 0
        /// The tree's compact range at `size` (nil: unknown, read it under the lock).
        var frontier: MerkleFrontier?
        var maintainsTree = true

        func forget() {
            size = nil
            frontier = nil
            heads.removeAll()
        }
    }

    struct SequencerState {
        var pending: [Ticket] = []
        var isWriting = false
        var batches = 0
        var appended = 0
        var isolated = 0
    }

    private let writer = WriterConnection()

    private func complete(_ ticket: Ticket, _ result: Result<GroupResult, any Error>) {
        let c = sequencer.withLock { _ -> CheckedContinuation<GroupResult, any Error>? in
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
                // At most `maxBatch` tickets and `maxBatchEntries` entries (a large group may exceed it alone).
                var n = 0, entries = 0
                while n < min(maxBatch, s.pending.count), n == 0 || entries + s.pending[n].requests.count <= Self.maxBatchEntries {
                    entries += s.pending[n].requests.count
                    n += 1
                }
                if n == 0 {
                    s.isWriting = false
                    return []
                }
                let batch = Array(s.pending.prefix(n))
                s.pending.removeFirst(n)
                return batch
            }
            if batch.isEmpty { return }
            do {
                try write(batch)
            } catch let error as LedgerStoreError where batch.count > 1 && Self.isRequestFault(error) {
                // The database refused something one ticket carries: write each ticket alone, so only the
                // tickets it refuses fail and the others of the batch are committed.
                sequencer.withLock { $0.isolated += 1 }
                for ticket in batch {
                    do { try write([ticket]) } catch { fail([ticket], error) }
                }
            } catch {
                fail(batch, error)
            }
        }
    }

    /// Most entries one batch writes (tickets are not split: a larger group is written alone).
    static let maxBatchEntries = 4096

    /// True for a refusal caused by what a request carries (a value, a constraint), not by the database's
    /// state: retrying the other tickets of its batch without it will succeed.
    public static func isRequestFault(_ error: LedgerStoreError) -> Bool {
        guard let state = error.sqlState, !error.isRetryable else { return false }
        // 22: data exception, 23: integrity constraint, 54: program limit exceeded, 42: a statement refused.
        return ["22", "23", "54", "42"].contains(String(state.prefix(2)))
    }

    /// Writes a batch of tickets in one transaction and completes each; throws when the batch failed.
    private func write(_ batch: [Ticket]) throws {
        let requests = batch.flatMap(\.requests)
        do {
            if writer.connection == nil || writer.connection!.isBroken {
                writer.connection?.close()
                writer.connection = try pool.makeDedicatedConnection()
            }
            let written = try Self.write(requests, groupSizes: batch.map(\.requests.count), recordedAt: clock(), writer: writer)
            let outcomes = written.outcomes
            let appended = outcomes.filter { if case .appended = $0 { return true } else { return false } }.count
            sequencer.withLock { s in
                s.batches += 1
                s.appended += appended
            }
            onBatch?(appended)
            var start = 0
            for ticket in batch {
                let range = start..<(start + ticket.requests.count)
                start += ticket.requests.count
                if let refusal = range.lazy.compactMap({ written.refusals[$0] }).first {
                    complete(ticket, .failure(refusal))
                    continue
                }
                let meter = range.lazy.compactMap({ written.meters[$0] }).first
                complete(ticket, Self.result(of: outcomes[range]).map { ($0, meter) })
            }
        } catch {
            writer.forget()
            if writer.connection?.isBroken == true {
                writer.connection?.close()
                writer.connection = nil
            }
            throw error
        }
    }

    private func fail(_ tickets: [Ticket], _ error: any Error) {
        for ticket in tickets { complete(ticket, .failure(error)) }
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
    struct BatchOutcome {
        var outcomes: [AppendOutcome]
        /// Requests refused before planning (admission, claims), by position.
        var refusals: [Int: AppendRefusal] = [:]
        /// Usage after each admitted, appended charge, by position.
        var meters: [Int: MeterReading] = [:]
        /// The log's size after the batch.
        var size: Int64 = 0
        /// The tree's compact range after the batch (nil when the tree is not maintained).
        var frontier: MerkleFrontier?
    }

    /// Writes a batch: first optimistically in one round trip from what this writer knows (its last size
    /// and subject heads), guarded so that any wrong assumption aborts the transaction; then, when that
    /// aborts or cannot be tried, in two round trips that read everything under the head lock.
    static func write(_ requests: [AppendRequest], groupSizes: [Int]?, recordedAt: Int64, writer: WriterConnection) throws -> BatchOutcome {
        let connection = writer.connection!
        if writer.carefulBatches > 0 {
            writer.carefulBatches -= 1
        } else if let size = writer.size, writer.frontier?.size == size || !writer.maintainsTree,
            canWriteOptimistically(requests, heads: writer.heads)
        {
            if let outcome = try writeOptimistically(
                requests, groupSizes: groupSizes, recordedAt: recordedAt, on: connection, size: size, heads: writer.heads,
                frontier: writer.frontier)
            {
                remember(outcome, in: writer)
                return outcome
            }
            writer.forget()
            writer.carefulBatches = 8
        }
        let outcome = try writeBatch(
            requests, groupSizes: groupSizes, recordedAt: recordedAt, on: connection, frontier: writer.maintainsTree ? (writer.frontier ?? MerkleFrontier()) : nil)
        remember(outcome, in: writer)
        return outcome
    }

    static func remember(_ outcome: BatchOutcome, in writer: WriterConnection) {
        if writer.heads.count > 100_000 { writer.heads.removeAll() }
        writer.size = outcome.size
        writer.frontier = outcome.frontier
        for case .appended(let e) in outcome.outcomes {
            writer.heads[e.subject] = SubjectHead(count: e.subjectIndex + 1, lastLeaf: e.leafHash)
        }
    }

    /// An expected subject version can be decided without reading only for a subject whose head is
    /// known, or when it claims the subject is new (a unique index then verifies that).
    static func canWriteOptimistically(_ requests: [AppendRequest], heads: [String: SubjectHead]) -> Bool {
        requests.allSatisfy { r in r.expectedSubjectVersion == nil || r.expectedSubjectVersion == 0 || heads[r.subject] != nil }
    }

    /// SQLSTATEs by which a guard reports a wrong assumption: division by zero (a guard's count did not
    /// match) and unique violation (a subject position, idempotency key or claim already exists).
    static let assumptionFailed: Set<String> = ["22012", "23505"]

    /// One round trip: BEGIN, grow the head only if it still has the size this writer left it at, charge
    /// meters only if each has room, check credentials, insert, COMMIT. Subjects this writer has not seen
    /// are taken to be new and idempotency keys and claims to be unused; the unique indexes refuse any
    /// that are not. Returns nil when an assumption failed (the transaction was rolled back).
    static func writeOptimistically(
        _ requests: [AppendRequest], groupSizes: [Int]?, recordedAt: Int64, on connection: PostgresConnection, size: Int64,
        heads: [String: SubjectHead], frontier: MerkleFrontier?
    ) throws -> BatchOutcome? {
        let (salts, digests) = salted(requests)
        // Only this batch's subjects: the planner copies its map, and the writer's may be large.
        var known: [String: SubjectHead] = [:]
        for r in requests { if let head = heads[r.subject] { known[r.subject] = head } }
        let (outcomes, newSize) = AppendPlanner.plan(
            requests: requests, size: size, subjects: known, existing: [:], payloadDigests: digests, recordedAt: recordedAt,
            groupSizes: groupSizes)
        if newSize == size { return BatchOutcome(outcomes: outcomes, size: size, frontier: frontier) }
        var counts: [MeterKey: Int64] = [:]
        var credentials = Set<Int64>()
        for (i, request) in requests.enumerated() {
            guard let charge = request.charge, case .appended = outcomes[i] else { continue }
            counts[MeterKey(account: charge.account, period: charge.period), default: 0] += 1
            credentials.insert(charge.credentialId)
        }
        var statements: [SQLQuery] = [
            "BEGIN",
            "WITH u AS (UPDATE ledger_head SET size = \(newSize) WHERE id = 1 AND size = \(size) RETURNING 1) SELECT 1 / (SELECT count(*)::int FROM u)",
        ]
        let meters = counts.keys.sorted { ($0.account, $0.period) < ($1.account, $1.period) }
        if !meters.isEmpty {
            statements.append(SQLQuery(unsafeSQL: """
                WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS v(a, p, n)),
                u AS (UPDATE quota_usage q SET used = q.used + v.n::bigint FROM v, accounts a
                      WHERE q.account_id = v.a AND q.period = v.p::date AND a.id = q.account_id AND q.used + v.n::bigint <= a.monthly_limit
                      RETURNING q.account_id, q.period::text AS period, q.used, a.monthly_limit AS lim)
                SELECT 1 / (CASE WHEN count(*) = $4::int THEN 1 ELSE 0 END),
                       string_agg(u.account_id || E'\\t' || u.period || E'\\t' || u.used || E'\\t' || u.lim, E'\\n') FROM u
                """, binds: [
                    .textArray(meters.map(\.account)), .textArray(meters.map(\.period)), .textArray(meters.map { String(counts[$0]!) }),
                    .int(Int64(meters.count)),
                ]))
            statements.append(SQLQuery(unsafeSQL: """
                SELECT 1 / (CASE WHEN count(*) = $2::int THEN 1 ELSE 0 END) FROM api_keys
                WHERE id = ANY($1::text[]::bigint[]) AND status = 'active'
                """, binds: [.textArray(credentials.map { String($0) }), .int(Int64(credentials.count))]))
        }
        statements += insertStatements(requests, outcomes, salts: salts, digests: digests, storedClaims: [:])
        var tree = frontier
        if var t = tree {
            statements.append(treeStatement(growing: &t, with: outcomes))
            tree = t
        }
        statements.append("COMMIT")
        let results: [PostgresRows]
        do {
            results = try connection.pipeline(statements)
        } catch where error.sqlState.map(assumptionFailed.contains) == true {
            if !connection.isBroken { _ = try? connection.execute("ROLLBACK") }
            return nil
        } catch {
            if !connection.isBroken { _ = try? connection.execute("ROLLBACK") }
            throw error
        }
        var outcome = BatchOutcome(outcomes: outcomes, size: newSize, frontier: tree)
        if !meters.isEmpty {
            var after: [MeterKey: (used: Int64, limit: Int64)] = [:]
            for line in (results[2].rows.first?[1] ?? "").split(separator: "\n") {
                let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                guard f.count == 4, let used = Int64(f[2]), let limit = Int64(f[3]) else { continue }
                after[MeterKey(account: f[0], period: f[1])] = (used, limit)
            }
            var added: [MeterKey: Int64] = [:]
            for (i, request) in requests.enumerated() {
                guard let charge = request.charge, case .appended = outcomes[i] else { continue }
                let key = MeterKey(account: charge.account, period: charge.period)
                guard let meter = after[key] else { continue }
                added[key, default: 0] += 1
                outcome.meters[i] = MeterReading(used: meter.used - counts[key]! + added[key]!, limit: meter.limit)
            }
        }
        return outcome
    }

    static func writeBatch(
        _ requests: [AppendRequest], groupSizes: [Int]? = nil, recordedAt: Int64, on connection: PostgresConnection,
        frontier: MerkleFrontier?
    ) throws -> BatchOutcome {
        let subjects = Array(Set(requests.map(\.subject)))
        let keyed = requests.filter { $0.idempotencyKey != nil }
        let charges = requests.compactMap(\.charge)
        let meters = Array(Set(charges.map { MeterKey(account: $0.account, period: $0.period) })).sorted { ($0.account, $0.period) < ($1.account, $1.period) }
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
        let claims = requests.flatMap(\.claims)
        var claimReadsAt = -1
        if !claims.isEmpty {
            claimReadsAt = reads.count
            reads.append(SQLQuery(unsafeSQL: """
                SELECT c.scope, c.key, c.value FROM unnest($1::text[], $2::text[]) AS k(scope, key)
                CROSS JOIN LATERAL (SELECT scope, key, value FROM ledger_claims WHERE scope = k.scope AND key = k.key LIMIT 1) c
                """, binds: [.textArray(claims.map(\.scope)), .textArray(claims.map(\.key))]))
        }
        var meterReadsAt = -1
        if !charges.isEmpty {
            // Admission, under the same transaction: meter rows exist and are locked (in a fixed order, so
            // two writers cannot deadlock), and the credentials' current status is read.
            meterReadsAt = reads.count
            let accounts = SQLValue.textArray(meters.map(\.account)), periods = SQLValue.textArray(meters.map(\.period))
            reads.append(SQLQuery(unsafeSQL: """
                INSERT INTO quota_usage (account_id, period, used)
                SELECT v.a, v.p::date, 0 FROM unnest($1::text[], $2::text[]) AS v(a, p) JOIN accounts ON accounts.id = v.a
                ON CONFLICT (account_id, period) DO NOTHING
                """, binds: [accounts, periods]))
            reads.append(SQLQuery(unsafeSQL: """
                SELECT q.account_id, q.period::text, q.used, a.monthly_limit FROM quota_usage q JOIN accounts a ON a.id = q.account_id
                WHERE (q.account_id, q.period) IN (SELECT v.a, v.p::date FROM unnest($1::text[], $2::text[]) AS v(a, p))
                ORDER BY q.account_id, q.period FOR UPDATE OF q
                """, binds: [accounts, periods]))
            reads.append(SQLQuery(
                unsafeSQL: "SELECT id, status FROM api_keys WHERE id = ANY($1::text[]::bigint[])",
                binds: [.textArray(Array(Set(charges.map { String($0.credentialId) })))]))
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
            if !keyed.isEmpty {
                for row in results[3].rows {
                    let entry = try decodeEntry(row)
                    existing[AppendPlanner.IdempotencyKey(subject: entry.subject, type: entry.type, key: entry.idempotencyKey!)] = entry
                }
            }
            let (salts, digests) = Self.salted(requests)
            var admission = Admission()
            if meterReadsAt >= 0 {
                admission = Admission(requests: requests, meterRows: results[meterReadsAt + 1].rows, keyRows: results[meterReadsAt + 2].rows)
            }
            var rejections = admission.rejections
            var refusals = admission.refusals.mapValues { AppendRefusal.notAdmitted($0) }
            // Claims: an existing claim for another value refuses the request; claims made earlier in this
            // batch count (all batches hold the head lock, so no other writer adds claims meanwhile).
            var claimed: [ClaimKey: String] = [:]
            if claimReadsAt >= 0 {
                for row in results[claimReadsAt].rows { claimed[ClaimKey(scope: row[0]!, key: row[1]!)] = row[2]! }
            }
            let stored = claimed
            if rejections.isEmpty { rejections = Array(repeating: nil, count: requests.count) }
            for (i, request) in requests.enumerated() where !request.claims.isEmpty && rejections[i] == nil {
                if let conflict = request.claims.first(where: { c in claimed[ClaimKey(scope: c.scope, key: c.key)].map { $0 != c.value } ?? false }) {
                    let owner = claimed[ClaimKey(scope: conflict.scope, key: conflict.key)]!
                    refusals[i] = .claimConflict(scope: conflict.scope, key: conflict.key, existingValue: owner)
                    rejections[i] = "claim conflict"
                } else {
                    for c in request.claims { claimed[ClaimKey(scope: c.scope, key: c.key)] = c.value }
                }
            }
            let (outcomes, newSize) = AppendPlanner.plan(
                requests: requests, size: size, subjects: heads, existing: existing, payloadDigests: digests, recordedAt: recordedAt,
                groupSizes: groupSizes, rejections: rejections)
            var writes = Self.insertStatements(requests, outcomes, salts: salts, digests: digests, storedClaims: stored)
            var tree: MerkleFrontier? = nil
            if let frontier {
                // Another writer may have grown the log since this one last wrote: its compact range is
                // then read again, under the head lock, from the stored nodes.
                var t = try frontier.size == size ? frontier : loadFrontier(size: size, on: connection)
                if newSize != size { writes.append(Self.treeStatement(growing: &t, with: outcomes)) }
                tree = t
            }
            if newSize != size { writes.append("UPDATE ledger_head SET size = \(newSize) WHERE id = 1") }
            let charged = admission.charge(outcomes)
            if !charged.increments.isEmpty {
                writes.append(SQLQuery(unsafeSQL: """
                    UPDATE quota_usage q SET used = q.used + v.n::bigint FROM unnest($1::text[], $2::text[], $3::text[]) AS v(a, p, n)
                    WHERE q.account_id = v.a AND q.period = v.p::date
                    """, binds: [
                        .textArray(charged.increments.map(\.key.account)), .textArray(charged.increments.map(\.key.period)),
                        .textArray(charged.increments.map { String($0.count) }),
                    ]))
            }
            writes.append("COMMIT")
            _ = try connection.pipeline(writes)
            return BatchOutcome(outcomes: outcomes, refusals: refusals, meters: charged.meters, size: newSize, frontier: tree)
        } catch {
            if !connection.isBroken { _ = try? connection.execute("ROLLBACK") }
            throw error
        }
    }

    /// Grows `frontier` by the appended entries' leaves (in index order) and returns the INSERT of every
    /// node they complete.
    static func treeStatement(growing frontier: inout MerkleFrontier, with outcomes: [AppendOutcome]) -> SQLQuery {
        var appended: [LedgerEntry] = []
        for case .appended(let e) in outcomes { appended.append(e) }
        appended.sort { $0.index < $1.index }
        var levels: [String] = [], indexes: [String] = [], hashes: [String] = []
        for e in appended {
            precondition(e.index == frontier.size, "the planner assigns dense indexes from the head")
            for (id, hash) in frontier.append(leafHash: e.leafHash) {
                levels.append(String(id.level))
                indexes.append(String(id.index))
                hashes.append(hexString(hash))
            }
        }
        // No ON CONFLICT: a node that exists means the writer's view of the tree is wrong; abort.
        return SQLQuery(unsafeSQL: """
            INSERT INTO ledger_tree_nodes (level, idx, hash)
            SELECT l::smallint, i::bigint, decode(h, 'hex') FROM unnest($1::text[], $2::text[], $3::text[]) AS t(l, i, h)
            """, binds: [.textArray(levels), .textArray(indexes), .textArray(hashes)])
    }

    /// The compact range of the tree of `size` leaves, read from the stored nodes.
    static func loadFrontier(size: Int64, on connection: PostgresConnection) throws(LedgerStoreError) -> MerkleFrontier {
        let ids = MerkleFrontier.nodes(size: size)
        let hashes = try readNodes(ids, on: connection)
        guard let frontier = MerkleFrontier(size: size, hashes: hashes) else {
            let missing = ids.first { hashes[$0] == nil }.map(\.description) ?? "a node"
            throw LedgerStoreError(.database, "the log's tree is incomplete at size \(size) (\(missing) is missing); run `evidence-ledger ledger verify`")
        }
        return frontier
    }

    /// Stored node hashes by id: level 0 from the entries' leaf hashes, the rest from the tree table.
    /// One index probe per node, in one statement.
    static func readNodes(_ ids: [MerkleNodeID], on connection: PostgresConnection) throws(LedgerStoreError) -> [MerkleNodeID: [UInt8]] {
        if ids.isEmpty { return [:] }
        return try readTree(ids, checkpoints: [], on: connection).nodes
    }

    /// In one statement (one snapshot): the head's size, the stored nodes `ids`, and the checkpoints of
    /// the given sizes that were signed. A proof request is then one round trip.
    static func readTree(
        _ ids: [MerkleNodeID], checkpoints sizes: [Int64], on connection: PostgresConnection
    ) throws(LedgerStoreError) -> (head: Int64, nodes: [MerkleNodeID: [UInt8]], checkpoints: [Int64: StoredCheckpoint]) {
        let leaves = ids.filter { $0.level == 0 }, interior = ids.filter { $0.level > 0 }
        let rows = try connection.query(SQLQuery(unsafeSQL: """
            SELECT -1, size, NULL::bytea, NULL::text, NULL::bigint FROM ledger_head WHERE id = 1
            UNION ALL
            SELECT w.l, w.i, n.hash, NULL, NULL FROM unnest($1::text[]::smallint[], $2::text[]::bigint[]) AS w(l, i)
            CROSS JOIN LATERAL (SELECT hash FROM ledger_tree_nodes WHERE level = w.l AND idx = w.i) n
            UNION ALL
            SELECT 0, e.idx, e.leaf_hash, NULL, NULL FROM ledger_entries e WHERE e.idx = ANY($3::text[]::bigint[])
            UNION ALL
            SELECT -2, c.tree_size, c.root_hash, c.note, (extract(epoch from c.signed_at) * 1000)::bigint
            FROM ledger_checkpoints c WHERE c.tree_size = ANY($4::text[]::bigint[])
            """, binds: [
                .textArray(interior.map { String($0.level) }), .textArray(interior.map { String($0.index) }),
                .textArray(leaves.map { String($0.index) }), .textArray(sizes.map { String($0) }),
            ])).rows
        var head: Int64 = -1
        var hashes: [MerkleNodeID: [UInt8]] = [:]
        var checkpoints: [Int64: StoredCheckpoint] = [:]
        for row in rows {
            guard let level = row[0].flatMap({ Int($0) }), let index = row[1].flatMap({ Int64($0) }) else { continue }
            switch level {
            case -1: head = index
            case -2:
                if let c = decodeCheckpoint([row[1], row[2], row[3], row[4]]) { checkpoints[c.size] = c }
            default:
                if let hash = decodeBytea(row[2]) { hashes[MerkleNodeID(level: level, index: index)] = hash }
            }
        }
        guard head >= 0 else { throw LedgerStoreError(.database, "the ledger head row is missing; run migrations") }
        return (head, hashes, checkpoints)
    }

    /// A fresh random salt and the salted digest for each request's payload.
    static func salted(_ requests: [AppendRequest]) -> (salts: [[UInt8]?], digests: [[UInt8]?]) {
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
        return (salts, digests)
    }

    /// Rows per multi-row INSERT (11 parameters an entry row: 11,000 per statement).
    static let rowsPerStatement = 1000

    /// INSERTs for the appended entries, their payloads and their new claims.
    static func insertStatements(
        _ requests: [AppendRequest], _ outcomes: [AppendOutcome], salts: [[UInt8]?], digests: [[UInt8]?], storedClaims: [ClaimKey: String]
    ) -> [SQLQuery] {
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
        // Statements of bounded size: libpq takes at most 65,535 parameters, whatever the batch holds.
        for start in stride(from: 0, to: payloadValues.count, by: 3 * rowsPerStatement) {
            let chunk = Array(payloadValues[start..<min(payloadValues.count, start + 3 * rowsPerStatement)])
            let rows = (0..<(chunk.count / 3)).map { "($\($0 * 3 + 1), $\($0 * 3 + 2), $\($0 * 3 + 3))" }.joined(separator: ", ")
            writes.append(SQLQuery(unsafeSQL: "INSERT INTO ledger_payloads (digest, salt, content) VALUES \(rows)", binds: chunk))
        }
        for start in stride(from: 0, to: entries.count, by: rowsPerStatement) {
            var values: [SQLValue] = []
            var tuples: [String] = []
            for e in entries[start..<min(entries.count, start + rowsPerStatement)] {
                let n = values.count
                tuples.append("($\(n + 1), $\(n + 2), $\(n + 3), $\(n + 4), $\(n + 5), to_timestamp($\(n + 6)::bigint / 1000.0), $\(n + 7), $\(n + 8), $\(n + 9), $\(n + 10), $\(n + 11))")
                values += [
                    .int(e.index), .text(e.subject), .int(e.subjectIndex), .text(e.type), e.account.map(SQLValue.text) ?? .null,
                    .int(e.recordedAt), .text(String(decoding: e.canonicalBody, as: UTF8.self)), e.payloadDigest.map(SQLValue.bytes) ?? .null,
                    e.prevSubjectLeaf.map(SQLValue.bytes) ?? .null, e.idempotencyKey.map(SQLValue.text) ?? .null, .bytes(e.leafHash),
                ]
            }
            writes.append(SQLQuery(unsafeSQL: """
                INSERT INTO ledger_entries (idx, subject, subject_index, type, account, recorded_at, body, payload_digest,
                    prev_subject_leaf, idempotency_key, leaf_hash) VALUES \(tuples.joined(separator: ", "))
                """, binds: values))
        }
        var newClaims: [(Claim, Int64)] = []
        for (i, request) in requests.enumerated() {
            guard case .appended(let e) = outcomes[i] else { continue }
            for claim in request.claims
            where storedClaims[ClaimKey(scope: claim.scope, key: claim.key)] == nil
                && !newClaims.contains(where: { $0.0.scope == claim.scope && $0.0.key == claim.key })
            {
                newClaims.append((claim, e.index))
            }
        }
        if !newClaims.isEmpty {
            // No ON CONFLICT: an existing claim must abort the batch (the optimistic path relies on it).
            writes.append(SQLQuery(unsafeSQL: """
                INSERT INTO ledger_claims (scope, key, value, entry_idx)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]::bigint[])
                """, binds: [
                    .textArray(newClaims.map(\.0.scope)), .textArray(newClaims.map(\.0.key)), .textArray(newClaims.map(\.0.value)),
                    .textArray(newClaims.map { String($0.1) }),
                ]))
        }
        return writes
    }

    public static func decodeEntry(_ row: [String?]) throws(LedgerStoreError) -> LedgerEntry {
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
        return (entries, Self.subjectChainProblems(subject: subject, entries))
    }

    /// A subject's chain problems, its entries given in subject order: a gap in subject positions, a
    /// link that does not match, a leaf that does not match its entry.
    public static func subjectChainProblems(subject: String, _ entries: [LedgerEntry]) -> [LedgerProblem] {
        var problems: [LedgerProblem] = []
        var previous: LedgerEntry? = nil
        for e in entries {
            let expected = previous.map { $0.subjectIndex + 1 } ?? 0
            if e.subjectIndex != expected {
                let missing = e.subjectIndex - expected
                problems.append(LedgerProblem(index: e.index, what: "\(missing) entr\(missing == 1 ? "y" : "ies") of \(subject) missing before this one"))
            }
            if e.prevSubjectLeaf != previous?.leafHash { problems.append(LedgerProblem(index: e.index, what: "chain link does not match the previous entry")) }
            if !e.isLeafHashConsistent { problems.append(LedgerProblem(index: e.index, what: "leaf hash does not match the entry")) }
            previous = e
        }
        return problems
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
    /// A stored claim's value and the entry that made it, if the key is claimed.
    public func claim(scope: String, key: String) async throws -> (value: String, entryIndex: Int64)? {
        try await pool.withConnection { c in
            try c.query("SELECT value, entry_idx FROM ledger_claims WHERE scope = \(scope) AND key = \(key)")
                .rows.first.flatMap { row in row[0].flatMap { v in row[1].flatMap { Int64($0) }.map { (v, $0) } } }
        }
    }

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

/// A claimed key in its scope.
struct ClaimKey: Hashable {
    var scope: String
    var key: String
}

/// A metered account and billing period.
struct MeterKey: Hashable {
    var account: String
    var period: String
}

/// Admission of a batch's charged requests, decided from the locked meter rows and the credentials'
/// status (pure; the writer does the I/O).
struct Admission {
    var rejections: [String?] = []
    var refusals: [Int: AdmissionRefusal] = [:]
    private var requests: [AppendRequest] = []
    private var before: [MeterKey: (used: Int64, limit: Int64)] = [:]

    init() {}

    /// Admits charged requests in order while their meter has room and their credential is active.
    /// Every charged request takes a slot, retries included (they are only known after planning).
    init(requests: [AppendRequest], meterRows: [[String?]], keyRows: [[String?]]) {
        self.requests = requests
        for row in meterRows {
            guard let account = row[0], let period = row[1], let used = row[2].flatMap({ Int64($0) }), let limit = row[3].flatMap({ Int64($0) })
            else { continue }
            before[MeterKey(account: account, period: period)] = (used, limit)
        }
        var active = Set<Int64>()
        for row in keyRows where row[1] == "active" { if let id = row[0].flatMap({ Int64($0) }) { active.insert(id) } }
        var taken: [MeterKey: Int64] = [:]
        rejections = Array(repeating: nil, count: requests.count)
        for (i, request) in requests.enumerated() {
            guard let charge = request.charge else { continue }
            let key = MeterKey(account: charge.account, period: charge.period)
            guard let meter = before[key] else {
                refuse(i, .unknownAccount)
                continue
            }
            guard active.contains(charge.credentialId) else {
                refuse(i, .credentialInactive)
                continue
            }
            let used = meter.used + (taken[key] ?? 0)
            guard used < meter.limit else {
                refuse(i, .quotaExceeded(used: used, limit: meter.limit))
                continue
            }
            taken[key, default: 0] += 1
        }
    }

    private mutating func refuse(_ i: Int, _ refusal: AdmissionRefusal) {
        refusals[i] = refusal
        rejections[i] = "not admitted: \(refusal)"
    }

    /// What the appended charged requests add to each meter, and each one's reading after it.
    func charge(_ outcomes: [AppendOutcome]) -> (increments: [(key: MeterKey, count: Int64)], meters: [Int: MeterReading]) {
        var added: [MeterKey: Int64] = [:]
        var readings: [Int: MeterReading] = [:]
        for (i, request) in requests.enumerated() {
            guard let charge = request.charge, i < outcomes.count else { continue }
            let key = MeterKey(account: charge.account, period: charge.period)
            guard let meter = before[key] else { continue }
            if case .appended = outcomes[i] { added[key, default: 0] += 1 }
            readings[i] = MeterReading(used: meter.used + (added[key] ?? 0), limit: meter.limit)
        }
        return (added.map { ($0.key, $0.value) }.sorted { ($0.key.account, $0.key.period) < ($1.key.account, $1.key.period) }, readings)
    }
}
