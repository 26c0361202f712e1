import Foundation
/// A SQL statement built safely by construction: its text comes only from string literals written in
/// the source (`StaticString`), from `SQLFragment`s (themselves literals), from quoted identifiers and
/// quoted string literals; every other interpolated value becomes a bind parameter (`$1`, `$2`, …).
/// There is no way to turn a runtime `String` into SQL text except `\(identifier:)` and `\(literal:)`,
/// which quote it. (Migrations are whole scripts, run by `Migrator` through `executeScript`.)
public struct SQLQuery: Sendable, ExpressibleByStringInterpolation {
    public private(set) var sql: String
    public private(set) var binds: [SQLValue]

    public init(stringLiteral value: StaticString) {
        sql = value.description
        binds = []
    }

    public init(stringInterpolation: StringInterpolation) {
        sql = stringInterpolation.sql
        binds = stringInterpolation.binds
    }

    /// `sql` with each parameter reference `$n` made `$(n + offset)`. Text outside references is copied
    /// as is; the SQL we write holds no `$` followed by a digit anywhere else (no dollar-quoted bodies).
    static func renumbered(_ sql: String, by offset: Int) -> String {
        guard offset > 0 else { return sql }
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var bytes = sql.utf8[...]
        while let dollar = bytes.firstIndex(of: UInt8(ascii: "$")) {
            out += String(Substring(bytes[..<dollar]))
            var digitsEnd = bytes.index(after: dollar)
            while digitsEnd < bytes.endIndex, bytes[digitsEnd] >= 0x30, bytes[digitsEnd] <= 0x39 { digitsEnd = bytes.index(after: digitsEnd) }
            if let n = Int(String(Substring(bytes[bytes.index(after: dollar)..<digitsEnd]))) {
                out += "$\(n + offset)"
            } else {
                out += "$"
            }
            bytes = bytes[digitsEnd...]
        }
        out += String(Substring(bytes))
        return out
    }

    /// Appends `other` (its parameters renumbered after these).
    public mutating func append(_ other: SQLQuery) {
        sql += Self.renumbered(other.sql, by: binds.count)
        binds += other.binds
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [SQLValue] = []

        public init(literalCapacity: Int, interpolationCount: Int) { sql.reserveCapacity(literalCapacity + interpolationCount * 3) }
        public mutating func appendLiteral(_ literal: StaticString) { sql += literal.description }
        /// A bind parameter.
        public mutating func appendInterpolation(_ value: SQLValue) {
            binds.append(value)
            sql += "$\(binds.count)"
        }
        public mutating func appendInterpolation(_ value: String?) { appendInterpolation(value.map(SQLValue.text) ?? .null) }
        public mutating func appendInterpolation(_ value: Int64) { appendInterpolation(SQLValue.int(value)) }
        public mutating func appendInterpolation(_ value: Int) { appendInterpolation(SQLValue.int(Int64(value))) }
        public mutating func appendInterpolation(_ value: [UInt8]?) { appendInterpolation(value.map(SQLValue.bytes) ?? .null) }
        /// A `text[]` parameter (sent in binary: no quoting of its elements).
        public mutating func appendInterpolation(textArray value: [String]) { appendInterpolation(SQLValue.textArray(value)) }
        /// A `bigint[]` parameter.
        public mutating func appendInterpolation(int64Array value: [Int64]) { appendInterpolation(SQLValue.int64Array(value)) }
        /// A `bytea[]` parameter (NULL elements allowed).
        public mutating func appendInterpolation(byteaArray value: [[UInt8]?]) { appendInterpolation(SQLValue.byteaArray(value)) }
        /// Fixed SQL text: a column list, a clause chosen by the caller.
        public mutating func appendInterpolation(sql fragment: SQLFragment) {
            // A fragment never holds `$n` of its own, so it cannot shift the parameters around it.
            sql += fragment.sql
        }
        /// Another statement's text and parameters, embedded (as a CTE, say): its `$n` are renumbered
        /// after the parameters already bound here.
        public mutating func appendInterpolation(embedding sub: SQLQuery) {
            sql += SQLQuery.renumbered(sub.sql, by: binds.count)
            binds += sub.binds
        }
        /// An identifier (a database, role or table name), double-quoted.
        public mutating func appendInterpolation(identifier name: String) { sql += quoteIdentifier(name) }
        /// A string constant quoted into the text, for the few statements that take no parameters
        /// (`ALTER ROLE … PASSWORD`).
        public mutating func appendInterpolation(literal value: String) { sql += quoteLiteral(value) }
    }
}

/// A piece of SQL text written in the source: a column list, a lock clause, a table name. Made only
/// from string literals, so it can never carry a runtime value.
public struct SQLFragment: Sendable, Equatable, ExpressibleByStringLiteral {
    public let sql: String
    public init(stringLiteral value: StaticString) { sql = value.description }
}

/// A bind parameter. Scalars go in PostgreSQL's text format; arrays and bytea in binary, so no value
/// is ever escaped or parsed as text. An array parameter must be cast to its type in the SQL
/// (`$1::text[]`), which tells the server how to read the binary.
public enum SQLValue: Sendable, Equatable {
    case null
    case text(String)
    case int(Int64)
    case bytes([UInt8])
    case textArray([String])
    /// A `text[]` whose elements may be NULL.
    case nullableTextArray([String?])
    case int64Array([Int64])
    case byteaArray([[UInt8]?])

    /// PostgreSQL type OIDs used in the binary array header.
    private static let textOID: UInt32 = 25, int8OID: UInt32 = 20, byteaOID: UInt32 = 17

    /// The value as sent: bytes and whether they are in binary format (nil bytes: NULL).
    var wire: (bytes: [UInt8]?, binary: Bool) {
        switch self {
        case .null: return (nil, false)
        case .text(let s): return (Array(s.utf8), false)
        case .int(let i): return (Array(String(i).utf8), false)
        case .bytes(let b): return (b, true)
        case .textArray(let a): return (Self.binaryArray(Self.textOID, a.map { Array($0.utf8) }), true)
        case .nullableTextArray(let a): return (Self.binaryArray(Self.textOID, a.map { $0.map { Array($0.utf8) } }), true)
        case .int64Array(let a): return (Self.binaryArray(Self.int8OID, a.map { Self.bigEndian(UInt64(bitPattern: $0)) }), true)
        case .byteaArray(let a): return (Self.binaryArray(Self.byteaOID, a), true)
        }
    }

    /// PostgreSQL's binary array format (array_recv): dimensions, null flag, element type, then for
    /// the one dimension its length and lower bound 1, then each element as length + bytes (-1: NULL).
    static func binaryArray(_ elementType: UInt32, _ elements: [[UInt8]?]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(20 + elements.reduce(0) { $0 + 4 + ($1?.count ?? 0) })
        let hasNull = elements.contains { $0 == nil }
        if elements.isEmpty {
            out += bigEndian(UInt32(0)) + bigEndian(UInt32(0)) + bigEndian(elementType)
            return out
        }
        out += bigEndian(UInt32(1)) + bigEndian(UInt32(hasNull ? 1 : 0)) + bigEndian(elementType)
        out += bigEndian(UInt32(elements.count)) + bigEndian(UInt32(1))
        for e in elements {
            if let e {
                out += bigEndian(UInt32(e.count))
                out += e
            } else {
                out += bigEndian(UInt32.max)
            }
        }
        return out
    }

    static func bigEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        withUnsafeBytes(of: v.bigEndian) { Array($0) }
    }
}

func hexString(_ bytes: [UInt8]) -> String {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Double-quotes an identifier.
func quoteIdentifier(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

/// Quotes a string constant as an escape string (`E'…'`), doubling quotes and backslashes, so it reads
/// the same whatever `standard_conforming_strings` says.
func quoteLiteral(_ value: String) -> String {
    "E'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "''") + "'"
}
