import CERKit
public import LedgerCore

/// How an entry is read from `ledger_entries`: the column list every entry query selects, and the
/// typed decoding of one row.
public enum EntryRows {
    /// The entry columns, in the order `decode` reads them (11 columns).
    public static let columns: SQLFragment = """
        idx, subject, subject_index, type, account, (extract(epoch from recorded_at) * 1000)::bigint, body, payload_digest, \
        prev_subject_leaf, idempotency_key, leaf_hash
        """

    /// The entry in `row` starting at column `o`. Keeps the stored leaf hash, not a recomputed one:
    /// audits compare the two.
    public static func decode(_ row: PostgresRow, from o: Int = 0) throws(LedgerStoreError) -> LedgerEntry {
        let idx = try row.int64(o)
        guard let body = try? JSONParser.parse(try row.text(o + 6)) else {
            throw LedgerStoreError(.database, "entry \(idx) has a body that is not JSON")
        }
        return LedgerEntry.unchecked(
            index: idx, subject: try row.text(o + 1), subjectIndex: try row.int64(o + 2), type: try row.text(o + 3), account: row[o + 4],
            recordedAt: try row.int64(o + 5), body: body, payloadDigest: try row.optionalBytes(o + 7),
            prevSubjectLeaf: try row.optionalBytes(o + 8), idempotencyKey: row[o + 9], leafHash: try row.bytes(o + 10))
    }

    /// Every row of `rows` as an entry.
    public static func decode(_ rows: PostgresRows) throws(LedgerStoreError) -> [LedgerEntry] {
        try rows.rows.map { r throws(LedgerStoreError) in try decode(r) }
    }
}
