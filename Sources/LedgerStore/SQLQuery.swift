/// A SQL statement whose interpolated values become bind parameters (`$1`, `$2`, …), never SQL text.
public struct SQLQuery: Sendable, ExpressibleByStringInterpolation {
    public private(set) var sql: String
    public private(set) var binds: [SQLValue]

    public init(stringLiteral value: String) {
        sql = value
        binds = []
    }

    public init(stringInterpolation: StringInterpolation) {
        sql = stringInterpolation.sql
        binds = stringInterpolation.binds
    }

    /// SQL text used as is. The only bypass of parameter binding: use it for fixed text only.
    public init(unsafeSQL sql: String, binds: [SQLValue] = []) {
        self.sql = sql
        self.binds = binds
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [SQLValue] = []

        public init(literalCapacity: Int, interpolationCount: Int) { sql.reserveCapacity(literalCapacity + interpolationCount * 3) }
        public mutating func appendLiteral(_ literal: String) { sql += literal }
        public mutating func appendInterpolation(_ value: SQLValue) {
            binds.append(value)
            sql += "$\(binds.count)"
        }
        public mutating func appendInterpolation(_ value: String?) { appendInterpolation(value.map(SQLValue.text) ?? .null) }
        public mutating func appendInterpolation(_ value: Int64) { appendInterpolation(SQLValue.int(value)) }
        public mutating func appendInterpolation(_ value: Int) { appendInterpolation(SQLValue.int(Int64(value))) }
        public mutating func appendInterpolation(_ value: [UInt8]?) { appendInterpolation(value.map(SQLValue.bytes) ?? .null) }
        public mutating func appendInterpolation(textArray value: [String]) { appendInterpolation(SQLValue.textArray(value)) }
    }
}

/// A bind parameter, sent in PostgreSQL's text format.
public enum SQLValue: Sendable, Equatable {
    case null
    case text(String)
    case int(Int64)
    case bytes([UInt8])
    case textArray([String])

    /// The text-format representation, or nil for NULL.
    var textFormat: String? {
        switch self {
        case .null: return nil
        case .text(let s): return s
        case .int(let i): return String(i)
        case .bytes(let b): return "\\x" + hexString(b)
        case .textArray(let a):
            return "{" + a.map { "\"" + $0.replacingBackslashAndQuote() + "\"" }.joined(separator: ",") + "}"
        }
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

extension String {
    fileprivate func replacingBackslashAndQuote() -> String {
        // Byte-wise: both characters are ASCII, and most values contain neither.
        guard utf8.contains(where: { $0 == 0x5C || $0 == 0x22 }) else { return self }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count + 8)
        for b in utf8 {
            if b == 0x5C || b == 0x22 { out.append(0x5C) }
            out.append(b)
        }
        return String(decoding: out, as: UTF8.self)
    }
}
