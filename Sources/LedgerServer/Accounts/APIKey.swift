import CERKit

/// API keys: `el_live_` followed by 48 lowercase hex digits (24 random bytes). Only the SHA-256 of a
/// key is stored; the key itself is shown once.
public enum APIKey {
    public static let prefix = "el_live_"

    /// A fresh random key.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return prefix + Hex.encode((0..<24).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// True when `raw` has the shape of a key (a cheap refusal before any lookup).
    public static func isWellFormed(_ raw: String) -> Bool {
        let u = Array(raw.utf8)
        guard u.count == prefix.utf8.count + 48, raw.hasPrefix(prefix) else { return false }
        return u[prefix.utf8.count...].allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// The stored form.
    public static func hash(_ raw: String) -> [UInt8] { ProtocolHash.sha256(Array(raw.utf8)) }

    /// The part of a key shown in listings (`el_live_1a2b…`).
    public static func displayPrefix(_ raw: String) -> String { String(raw.prefix(prefix.count + 4)) }
}

/// The account an authenticated request acts for.
public struct Principal: Sendable, Equatable {
    public var accountId: String
    public var apiKeyId: Int64
    public var plan: String
    public var monthlyLimit: Int64
}

/// A billing month in UTC.
public struct QuotaPeriod: Sendable, Equatable {
    /// `YYYY-MM-01`.
    public var start: String
    /// First instant of the next month, ISO-8601 (`resetAt`).
    public var resetAt: String

    public init(milliseconds: Int64) {
        let iso = Timestamp.iso8601(milliseconds: milliseconds)
        let year = Int(iso.prefix(4))!
        let month = Int(iso.dropFirst(5).prefix(2))!
        start = String(iso.prefix(7)) + "-01"
        let (ny, nm) = month == 12 ? (year + 1, 1) : (year, month + 1)
        resetAt = zeroPadded(ny, width: 4) + "-" + zeroPadded(nm, width: 2) + "-01T00:00:00.000Z"
    }
}

/// `v` in decimal, left-padded with zeros to `width` digits.
func zeroPadded(_ v: Int, width: Int) -> String {
    let digits = "\(v)"
    return repeatElement("0", count: max(0, width - digits.count)).joined() + digits
}
