import CERKit

/// One row of a result, in text format, read by position through typed accessors that throw a
/// `LedgerStoreError` naming the column instead of crashing on a NULL or a value of another shape.
public struct PostgresRow: Sendable, Equatable {
    /// The raw text values (nil: NULL).
    public let values: [String?]

    public init(values: [String?]) { self.values = values }

    /// The raw text of column `i`, or nil for NULL (or a column the row does not have).
    public subscript(_ i: Int) -> String? { i < values.count ? values[i] : nil }

    public var count: Int { values.count }

    private func missing(_ i: Int, _ what: String) -> LedgerStoreError {
        LedgerStoreError(.database, i < values.count ? "column \(i) of a result row is not \(what)" : "a result row has no column \(i)")
    }

    /// Column `i` as text; throws on NULL.
    public func text(_ i: Int) throws(LedgerStoreError) -> String {
        guard let v = self[i] else { throw missing(i, "text (it is NULL)") }
        return v
    }

    /// Column `i` as an integer; throws on NULL or anything else.
    public func int64(_ i: Int) throws(LedgerStoreError) -> Int64 {
        guard let v = self[i], let n = Int64(v) else { throw missing(i, "an integer") }
        return n
    }

    /// Column `i` as an integer, or nil for NULL; throws on a value that is not one.
    public func optionalInt64(_ i: Int) throws(LedgerStoreError) -> Int64? {
        guard let v = self[i] else { return nil }
        guard let n = Int64(v) else { throw missing(i, "an integer") }
        return n
    }

    /// Column `i` as a number; throws on NULL or anything else.
    public func double(_ i: Int) throws(LedgerStoreError) -> Double {
        guard let v = self[i], let n = Double(v) else { throw missing(i, "a number") }
        return n
    }

    /// Column `i` as a boolean (`t`/`f`); throws on NULL or anything else.
    public func bool(_ i: Int) throws(LedgerStoreError) -> Bool {
        switch self[i] {
        case "t": return true
        case "f": return false
        default: throw missing(i, "a boolean")
        }
    }

    /// Column `i` (bytea) as bytes; throws on NULL or anything else.
    public func bytes(_ i: Int) throws(LedgerStoreError) -> [UInt8] {
        guard let b = decodeBytea(self[i]) else { throw missing(i, "bytea") }
        return b
    }

    /// Column `i` (bytea) as bytes, or nil for NULL; throws on a value that is not bytea.
    public func optionalBytes(_ i: Int) throws(LedgerStoreError) -> [UInt8]? {
        guard self[i] != nil else { return nil }
        return try bytes(i)
    }
}

/// A bytea column in text format (`\x…`) as bytes.
public func decodeBytea(_ text: String?) -> [UInt8]? {
    guard let text, text.hasPrefix("\\x") else { return nil }
    return Hex.decode(String(text.dropFirst(2)))
}

extension PostgresConnection {
    /// The log's size, from its head row.
    public func headSize() throws(LedgerStoreError) -> Int64 {
        guard let row = try query("SELECT size FROM ledger_head WHERE id = 1").rows.first else {
            throw LedgerStoreError(.database, "the ledger head row is missing; run migrations")
        }
        return try row.int64(0)
    }

    /// The one integer a statement returns (`count(*)`, say).
    public func scalarInt(_ sql: SQLQuery) throws(LedgerStoreError) -> Int64 {
        try query(sql).single("an integer").int64(0)
    }
}
