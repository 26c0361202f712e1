import CERKit
import LedgerCore

/// The SQL of one batch, one function per statement. Rows go as arrays (one parameter a column, sent
/// in binary), so a statement's text does not depend on how many rows it writes: it is prepared once
/// per connection and never re-parsed, and no value is ever escaped.
enum BatchStatements {
    // MARK: Reads (the careful mode, under the head lock)

    /// Locks the head row and reads the size (every writer of every process takes it, so batches are
    /// serialised and the log stays dense).
    static let lockHead: SQLQuery = "SELECT size FROM ledger_head WHERE id = 1 FOR UPDATE"

    /// A careful batch waits for locks as long as it takes (the writer's session default is short).
    static let waitForLocks: SQLQuery = "SET LOCAL lock_timeout = 0"

    /// The last entry of each subject: one index probe per subject (stays O(log n) as subjects grow).
    static func subjectHeads(_ subjects: [String]) -> SQLQuery {
        """
        SELECT s.subject, e.subject_index, e.leaf_hash FROM unnest(\(textArray: subjects)::text[]) AS s(subject)
        CROSS JOIN LATERAL (SELECT subject_index, leaf_hash FROM ledger_entries WHERE subject = s.subject
                            ORDER BY subject_index DESC LIMIT 1) e
        """
    }

    /// Entries already holding these idempotency keys. One index probe per key; LIMIT 1 (the key is
    /// unique) keeps the planner from flattening the LATERAL subquery into a hash join over the table.
    static func idempotentEntries(_ keyed: [(subject: String, type: String, key: String)]) -> SQLQuery {
        """
        SELECT e.* FROM unnest(\(textArray: keyed.map(\.subject))::text[], \(textArray: keyed.map(\.type))::text[],
                               \(textArray: keyed.map(\.key))::text[]) AS k(subject, type, key)
        CROSS JOIN LATERAL (SELECT \(sql: EntryRows.columns) FROM ledger_entries WHERE subject = k.subject AND type = k.type
                            AND idempotency_key = k.key AND idempotency_key IS NOT NULL LIMIT 1) e
        """
    }

    /// Stored claims of these keys.
    static func claims(_ claims: [Claim]) -> SQLQuery {
        """
        SELECT c.scope, c.key, c.value FROM unnest(\(textArray: claims.map(\.scope))::text[], \(textArray: claims.map(\.key))::text[]) AS k(scope, key)
        CROSS JOIN LATERAL (SELECT scope, key, value FROM ledger_claims WHERE scope = k.scope AND key = k.key LIMIT 1) c
        """
    }

    /// Makes sure each meter row of an existing account exists (used 0), so it can be locked.
    static func createMeters(_ meters: [MeterKey]) -> SQLQuery {
        """
        INSERT INTO quota_usage (account_id, period, used)
        SELECT v.a, v.p::date, 0 FROM unnest(\(textArray: meters.map(\.account))::text[], \(textArray: meters.map(\.period))::text[]) AS v(a, p)
        JOIN accounts ON accounts.id = v.a
        ON CONFLICT (account_id, period) DO NOTHING
        """
    }

    /// Locks the meter rows (in a fixed order, so two writers cannot deadlock) and reads them.
    static func lockMeters(_ meters: [MeterKey]) -> SQLQuery {
        """
        SELECT q.account_id, q.period::text, q.used, a.monthly_limit FROM quota_usage q JOIN accounts a ON a.id = q.account_id
        WHERE (q.account_id, q.period) IN (SELECT v.a, v.p::date FROM unnest(\(textArray: meters.map(\.account))::text[],
                                                                             \(textArray: meters.map(\.period))::text[]) AS v(a, p))
        ORDER BY q.account_id, q.period FOR UPDATE OF q
        """
    }

    /// The credentials' current status.
    static func credentialStatus(_ ids: [Int64]) -> SQLQuery {
        "SELECT id, status FROM api_keys WHERE id = ANY(\(int64Array: ids)::bigint[])"
    }

    // MARK: Writes (both modes; each assumption a guard)

    /// A batch's whole write as one statement: every INSERT and UPDATE a data-modifying CTE (each runs
    /// exactly once, to completion), the head grown from `size` to `newSize`, the guards (the head was
    /// at `size`, every charged meter had room, every charging credential is active) and in the answer's
    /// last column the meters after the charge as `account TAB period TAB used TAB limit` lines. One
    /// statement instead of six: one executor start, one round of constraint set-up per table.
    ///
    /// The answer's target list fixes the order of the work (its columns are evaluated left to right,
    /// each CTE when first read): take this batch's baton, insert the rows, wait for the predecessor's
    /// baton (`waitFor`, when a batch sent earlier on another connection is still in flight: its
    /// transaction holds that advisory lock until it commits or rolls back), then grow the head. So a
    /// batch's inserts overlap its predecessor's commit, and its head guard is only evaluated once the
    /// predecessor has finished. Batons are transaction-level advisory locks `(writer, sequence % 3)`.
    static func writeBatch(
        growFrom size: Int64, to newSize: Int64, entries: [LedgerEntry], recordedAt: Int64,
        payloads: [(digest: [UInt8], salt: [UInt8], content: [UInt8])], claims: [(claim: Claim, entryIndex: Int64)],
        nodes: [(id: MerkleNodeID, hash: [UInt8])], increments: [(key: MeterKey, count: Int64)], credentials: [Int64],
        baton: (writer: Int64, own: Int64, waitFor: Int64?)
    ) -> SQLQuery {
        // `size = size + n`, checked against the expected result, rather than `WHERE size = expected`: a
        // READ COMMITTED UPDATE that finds the head changed since its snapshot (the predecessor grew it)
        // follows it to the newest version, where a WHERE on the old value would skip the row.
        var q: SQLQuery = "WITH h AS (UPDATE ledger_head SET size = size + \(newSize - size) WHERE id = 1 RETURNING size)"
        q.append(", e AS (\(embedding: insertEntries(entries, recordedAt: recordedAt)) RETURNING 1)")
        if !payloads.isEmpty { q.append(", p AS (\(embedding: insertPayloads(payloads)))") }
        if !claims.isEmpty { q.append(", c AS (\(embedding: insertClaims(claims)))") }
        q.append(nodes.isEmpty ? ", n AS (SELECT 1 WHERE false)" : ", n AS (\(embedding: insertNodes(nodes)) RETURNING 1)")
        if !increments.isEmpty {
            q.append("""
                , v AS (SELECT * FROM unnest(\(textArray: increments.map(\.key.account))::text[], \(textArray: increments.map(\.key.period))::text[],
                                             \(int64Array: increments.map(\.count))::bigint[]) AS v(a, p, n)),
                m AS (UPDATE quota_usage q SET used = q.used + v.n FROM v, accounts a
                      WHERE q.account_id = v.a AND q.period = v.p::date AND a.id = q.account_id AND q.used + v.n <= a.monthly_limit
                      RETURNING q.account_id, q.period::text AS period, q.used, a.monthly_limit AS lim)
                """)
        }
        q.append(" SELECT pg_advisory_xact_lock(\(baton.writer)::int, \(baton.own)::int)::text, (SELECT count(*) FROM e), (SELECT count(*) FROM n), ")
        if let waitFor = baton.waitFor { q.append("pg_advisory_xact_lock(\(baton.writer)::int, \(waitFor)::int)::text, ") } else { q.append("NULL::text, ") }
        q.append("ledger_expect((SELECT size FROM h) = \(newSize), 'the log head is at the size the writer expects')")
        if increments.isEmpty {
            q.append(", NULL::text")
        } else {
            q.append("""
                , ledger_expect((SELECT count(*) FROM m) = \(increments.count), 'every charged meter has room')
                  AND ledger_expect((SELECT count(*) FROM api_keys WHERE id = ANY(\(int64Array: credentials)::bigint[]) AND status = 'active')
                                    = \(credentials.count), 'every charging credential is active'),
                  (SELECT string_agg(m.account_id || E'\\t' || m.period || E'\\t' || m.used || E'\\t' || m.lim, E'\\n') FROM m)
                """)
        }
        return q
    }

    /// A follower's second statement (a fresh snapshot, taken once its head wait is over): the entry
    /// its predecessor wrote last is in the log. Only the predecessor's commit can put it there, so a
    /// follower can never build on a predecessor that rolled back (whatever another writer did since).
    static func expectCommitted(index: Int64, leafHash: [UInt8]) -> SQLQuery {
        """
        SELECT ledger_expect(EXISTS (SELECT 1 FROM ledger_entries WHERE idx = \(index) AND leaf_hash = \(leafHash)),
                             'the previous batch committed')
        """
    }

    /// Inserts the appended entries.
    static func insertEntries(_ entries: [LedgerEntry], recordedAt: Int64) -> SQLQuery {
        """
        INSERT INTO ledger_entries (idx, subject, subject_index, type, account, recorded_at, body, payload_digest,
            prev_subject_leaf, idempotency_key, leaf_hash)
        SELECT i, s, si, t, a, to_timestamp(\(recordedAt)::bigint / 1000.0), b, pd, pl, k, l
        FROM unnest(\(int64Array: entries.map(\.index))::bigint[], \(textArray: entries.map(\.subject))::text[],
                    \(int64Array: entries.map(\.subjectIndex))::bigint[], \(textArray: entries.map(\.type))::text[],
                    \(.nullableTextArray(entries.map(\.account)))::text[],
                    \(textArray: entries.map { String(decoding: $0.canonicalBody, as: UTF8.self) })::text[],
                    \(byteaArray: entries.map(\.payloadDigest))::bytea[], \(byteaArray: entries.map(\.prevSubjectLeaf))::bytea[],
                    \(.nullableTextArray(entries.map(\.idempotencyKey)))::text[], \(byteaArray: entries.map { $0.leafHash })::bytea[])
             AS r(i, s, si, t, a, b, pd, pl, k, l)
        """
    }

    /// Inserts payloads with their salts.
    static func insertPayloads(_ payloads: [(digest: [UInt8], salt: [UInt8], content: [UInt8])]) -> SQLQuery {
        """
        INSERT INTO ledger_payloads (digest, salt, content)
        SELECT * FROM unnest(\(byteaArray: payloads.map(\.digest))::bytea[], \(byteaArray: payloads.map(\.salt))::bytea[],
                             \(byteaArray: payloads.map(\.content))::bytea[])
        """
    }

    /// Records new claims. No ON CONFLICT: an existing claim must abort the batch (the optimistic mode
    /// takes every claim to be new and relies on this).
    static func insertClaims(_ claims: [(claim: Claim, entryIndex: Int64)]) -> SQLQuery {
        """
        INSERT INTO ledger_claims (scope, key, value, entry_idx)
        SELECT * FROM unnest(\(textArray: claims.map(\.claim.scope))::text[], \(textArray: claims.map(\.claim.key))::text[],
                             \(textArray: claims.map(\.claim.value))::text[], \(int64Array: claims.map(\.entryIndex))::bigint[])
        """
    }

    /// Inserts tree nodes. No ON CONFLICT: a node that exists means the writer's view of the tree is wrong.
    static func insertNodes(_ nodes: [(id: MerkleNodeID, hash: [UInt8])]) -> SQLQuery {
        """
        INSERT INTO ledger_tree_nodes (level, idx, hash)
        SELECT l::smallint, i, h FROM unnest(\(int64Array: nodes.map { Int64($0.id.level) })::bigint[], \(int64Array: nodes.map(\.id.index))::bigint[],
                                             \(byteaArray: nodes.map(\.hash))::bytea[]) AS t(l, i, h)
        """
    }

    /// The meters after a charge, from `writeBatch`' answer (its last column).
    static func meters(fromCharge rows: PostgresRows) -> [MeterKey: MeterReading] {
        var after: [MeterKey: MeterReading] = [:]
        for line in (rows.rows.first.flatMap { $0[$0.count - 1] } ?? "").split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 4, let used = Int64(f[2]), let limit = Int64(f[3]) else { continue }
            after[MeterKey(account: f[0], period: f[1])] = MeterReading(used: used, limit: limit)
        }
        return after
    }
}
