/// A canonicalization profile of the NexArt protocol, chosen by `snapshot.protocolVersion`.
public enum CanonicalizationProfile: String, Sendable, CaseIterable {
    /// Protocol 1.2.0: NexArt's frozen `toCanonicalJson` (JSON.stringify bytes, sorted keys).
    case nexartV1 = "nexart-v1"
    /// Protocol 1.3.x: RFC 8785 JCS. Same bytes as nexart-v1 for I-JSON; unpaired surrogates are refused.
    case jcsV1 = "jcs-v1"

    /// The profile for a protocol version, or nil for an unknown version (callers fail closed).
    public static func forProtocolVersion(_ version: String) -> CanonicalizationProfile? {
        switch version {
        case "1.2.0": return .nexartV1
        case "1.3.0", "1.3.1": return .jcsV1
        default: return nil
        }
    }
}

/// Why a value has no canonical form.
public struct CanonicalizationError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        case nonFiniteNumber = "NON_FINITE_NUMBER"
        case loneSurrogate = "LONE_SURROGATE"
    }
    public var reason: Reason
    public var message: String
    public var description: String { message }
}

/// Canonical JSON bytes: no whitespace, object keys sorted by UTF-16 code units at every level,
/// ECMAScript number formatting, and `JSON.stringify` string escaping.
public enum CanonicalJSON {
    /// The canonical UTF-8 bytes of `value` under `profile`.
    public static func encode(_ value: JSONValue, profile: CanonicalizationProfile = .nexartV1)
        throws(CanonicalizationError) -> [UInt8]
    {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        try write(value, profile: profile, to: &out)
        return out
    }

    /// The canonical text of `value` (lone surrogates, if allowed, appear as `\udxxx` escapes).
    public static func string(_ value: JSONValue, profile: CanonicalizationProfile = .nexartV1)
        throws(CanonicalizationError) -> String
    {
        String(decoding: try encode(value, profile: profile), as: UTF8.self)
    }

    /// Appends the canonical bytes of `value` to `out`.
    public static func write(_ value: JSONValue, profile: CanonicalizationProfile, to out: inout [UInt8])
        throws(CanonicalizationError)
    {
        switch value {
        case .null: out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
        case .bool(true): out.append(contentsOf: [0x74, 0x72, 0x75, 0x65])
        case .bool(false): out.append(contentsOf: [0x66, 0x61, 0x6C, 0x73, 0x65])
        case .number(let n):
            guard n.isFinite else {
                let text = n.isNaN ? "NaN" : (n < 0 ? "-Infinity" : "Infinity")
                throw CanonicalizationError(
                    reason: .nonFiniteNumber, message: "Non-finite number not allowed in canonical JSON: \(text)")
            }
            ECMAScriptNumber.append(n, to: &out)
        case .string(let s): try writeString(s.bytes, profile: profile, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            var first = true
            for e in elements {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                try write(e, profile: profile, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            let sorted = sortedMembers(object)
            var first = true
            for m in sorted {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                try writeString(m.key.bytes, profile: profile, to: &out)
                out.append(UInt8(ascii: ":"))
                try write(m.value, profile: profile, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func sortedMembers(_ object: JSONObject) -> [JSONObject.Member] {
        let members = object.members
        if members.count < 2 { return members }
        var isSorted = true
        for i in 1..<members.count where !JSONString.utf16Precedes(members[i - 1].key.bytes, members[i].key.bytes) {
            isSorted = false
            break
        }
        if isSorted { return members }
        return members.sorted { JSONString.utf16Precedes($0.key.bytes, $1.key.bytes) }
    }

    /// `JSON.stringify` string escaping over WTF-8 bytes.
    static func writeString(_ bytes: [UInt8], profile: CanonicalizationProfile, to out: inout [UInt8])
        throws(CanonicalizationError)
    {
        out.append(UInt8(ascii: "\""))
        try bytes.withUnsafeBufferPointer { (p: UnsafeBufferPointer<UInt8>) throws(CanonicalizationError) in
            var runStart = 0
            var i = 0
            let count = p.count
            while i < count {
                let b = p[i]
                // Fast path: bytes that are copied as they are.
                if b >= 0x20 && b != 0x22 && b != 0x5C && b != 0xED {
                    i += 1
                    continue
                }
                if b == 0xED {
                    // 0xED 0xA0–0xBF starts an unpaired surrogate (WTF-8); other 0xED sequences are plain text.
                    guard i + 2 < count, p[i + 1] >= 0xA0 else {
                        i += 1
                        continue
                    }
                    guard profile == .nexartV1 else {
                        throw CanonicalizationError(
                            reason: .loneSurrogate,
                            message: "Lone surrogate not allowed in jcs-v1 canonical JSON (RFC 8785 needs I-JSON)")
                    }
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: p[runStart..<i]))
                    let unit = UInt16(b & 0x0F) << 12 | UInt16(p[i + 1] & 0x3F) << 6 | UInt16(p[i + 2] & 0x3F)
                    out.append(contentsOf: [0x5C, 0x75, hexDigit(unit >> 12), hexDigit(unit >> 8), hexDigit(unit >> 4), hexDigit(unit)])
                    i += 3
                    runStart = i
                    continue
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: p[runStart..<i]))
                switch b {
                case 0x22: out.append(contentsOf: [0x5C, 0x22])
                case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
                case 0x08: out.append(contentsOf: [0x5C, 0x62])
                case 0x09: out.append(contentsOf: [0x5C, 0x74])
                case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
                case 0x0C: out.append(contentsOf: [0x5C, 0x66])
                case 0x0D: out.append(contentsOf: [0x5C, 0x72])
                default: out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hexDigit(UInt16(b) >> 4), hexDigit(UInt16(b))])
                }
                i += 1
                runStart = i
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: p[runStart..<count]))
        }
        out.append(UInt8(ascii: "\""))
    }

    /// The lowercase hex digit of the low four bits.
    @inline(__always) static func hexDigit(_ v: UInt16) -> UInt8 {
        let n = UInt8(truncatingIfNeeded: v & 0xF)
        return n < 10 ? 0x30 + n : 0x57 + n
    }

    /// The canonical bytes of `object`, recording where the values of `recordKeys` inside its member
    /// `nestedKey` (an object) start and end, so they can be hashed without a second canonicalization.
    static func encodeRecording(_ object: JSONObject, nestedKey: String, recordKeys: [String], profile: CanonicalizationProfile)
        throws(CanonicalizationError) -> (bytes: [UInt8], ranges: [String: Range<Int>])
    {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        var ranges: [String: Range<Int>] = [:]
        out.append(UInt8(ascii: "{"))
        for (i, m) in sortedMembers(object).enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            try writeString(m.key.bytes, profile: profile, to: &out)
            out.append(UInt8(ascii: ":"))
            guard m.key.equals(nestedKey), case .object(let nested) = m.value else {
                try write(m.value, profile: profile, to: &out)
                continue
            }
            out.append(UInt8(ascii: "{"))
            for (j, n) in sortedMembers(nested).enumerated() {
                if j > 0 { out.append(UInt8(ascii: ",")) }
                try writeString(n.key.bytes, profile: profile, to: &out)
                out.append(UInt8(ascii: ":"))
                let start = out.count
                try write(n.value, profile: profile, to: &out)
                for key in recordKeys where n.key.equals(key) { ranges[key] = start..<out.count }
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
        return (out, ranges)
    }
}
