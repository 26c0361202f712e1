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

    /// Grows the head from `size` to `newSize`, guarded: the head must still be at `size`.
    static func growHead(from size: Int64, to newSize: Int64) -> SQLQuery {
        """
        WITH u AS (UPDATE ledger_head SET size = \(newSize) WHERE id = 1 AND size = \(size) RETURNING 1)
        SELECT ledger_expect(count(*) = 1, 'the log head is at the size the writer read') FROM u
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
             AS e(i, s, si, t, a, b, pd, pl, k, l)
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

    /// Charges the meters, guarded: each must exist and have room for its increment. Answers one row:
    /// the guard, and each meter after it as `account TAB period TAB used TAB limit` lines.
    static func chargeMeters(_ increments: [(key: MeterKey, count: Int64)]) -> SQLQuery {
        """
        WITH v AS (SELECT * FROM unnest(\(textArray: increments.map(\.key.account))::text[], \(textArray: increments.map(\.key.period))::text[],
                                        \(int64Array: increments.map(\.count))::bigint[]) AS v(a, p, n)),
        u AS (UPDATE quota_usage q SET used = q.used + v.n FROM v, accounts a
              WHERE q.account_id = v.a AND q.period = v.p::date AND a.id = q.account_id AND q.used + v.n <= a.monthly_limit
              RETURNING q.account_id, q.period::text AS period, q.used, a.monthly_limit AS lim)
        SELECT ledger_expect(count(*) = \(increments.count), 'every charged meter has room'),
               string_agg(u.account_id || E'\\t' || u.period || E'\\t' || u.used || E'\\t' || u.lim, E'\\n') FROM u
        """
    }

    /// Guard: every credential that charges is active.
    static func expectActive(_ credentials: [Int64]) -> SQLQuery {
        """
        SELECT ledger_expect(count(*) = \(credentials.count), 'every charging credential is active') FROM api_keys
        WHERE id = ANY(\(int64Array: credentials)::bigint[]) AND status = 'active'
        """
    }

    /// The meters after a charge, from `chargeMeters`' answer.
    static func meters(fromCharge rows: PostgresRows) -> [MeterKey: MeterReading] {
        var after: [MeterKey: MeterReading] = [:]
        for line in (rows.rows.first?[1] ?? "").split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 4, let used = Int64(f[2]), let limit = Int64(f[3]) else { continue }
            after[MeterKey(account: f[0], period: f[1])] = MeterReading(used: used, limit: limit)
        }
        return after
    }
}
