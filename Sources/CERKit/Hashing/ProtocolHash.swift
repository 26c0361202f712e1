import Crypto

/// The protocol's hash strings: `"sha256:" + 64 lowercase hex digits`.
public enum ProtocolHash {
    /// The prefix every protocol hash carries.
    public static let prefix = "sha256:"

    /// SHA-256 of `bytes` (swift-crypto: several times faster than libsodium's SHA-256 here).
    public static func sha256(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var hasher = SHA256()
        if bytes.withContiguousStorageIfAvailable({ hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }) == nil {
            hasher.update(data: Array(bytes))
        }
        return Array(hasher.finalize())
    }

    /// `"sha256:" + hex(SHA-256(bytes))`.
    public static func hash(_ bytes: some Sequence<UInt8>) -> String {
        var hasher = SHA256()
        if bytes.withContiguousStorageIfAvailable({ hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }) == nil {
            hasher.update(data: Array(bytes))
        }
        return hasher.finalize().withUnsafeBytes { digest in
            String(unsafeUninitializedCapacity: 71) { out in
                let hex: StaticString = "0123456789abcdef"
                for (i, c) in "sha256:".utf8.enumerated() { out[i] = c }
                for (i, b) in digest.enumerated() {
                    out[7 + 2 * i] = hex.utf8Start[Int(b >> 4)]
                    out[8 + 2 * i] = hex.utf8Start[Int(b & 0xF)]
                }
                return 71
            }
        }
    }

    /// The protocol hash of the canonical JSON of `value`.
    public static func canonical(_ value: JSONValue, profile: CanonicalizationProfile = .nexartV1)
        throws(CanonicalizationError) -> String
    {
        hash(try CanonicalJSON.encode(value, profile: profile))
    }

    /// The input/output hash rule (§2.2): a string hashes as its raw UTF-8 bytes, anything else as
    /// canonical JSON. Also `hashToolOutput` and `hashToolInput`.
    public static func value(_ value: JSONValue, profile: CanonicalizationProfile = .nexartV1)
        throws(CanonicalizationError) -> String
    {
        if case .string(let s) = value {
            guard profile == .nexartV1 || !s.hasLoneSurrogate else {
                throw CanonicalizationError(reason: .loneSurrogate, message: "Lone surrogate in a hashed string")
            }
            // JavaScript hashes the UTF-8 encoding, in which an unpaired surrogate becomes U+FFFD.
            return hash(s.hasLoneSurrogate ? s.utf8Replacing : s.bytes)
        }
        return try canonical(value, profile: profile)
    }

    /// True when `text` is `sha256:` followed by exactly 64 lowercase hex digits (the node's rule).
    public static func isWellFormed(_ text: String) -> Bool {
        let utf8 = text.utf8
        guard utf8.count == 71, text.hasPrefix(prefix) else { return false }
        return utf8.dropFirst(7).allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// The 32 digest bytes of a well-formed protocol hash, else nil.
    public static func digest(of text: String) -> [UInt8]? {
        guard isWellFormed(text) else { return nil }
        return Hex.decode(String(text.dropFirst(7)))
    }
}

/// Lowercase hexadecimal.
public enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lowercase hex of `bytes`.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Bytes of a hex string (either case), or nil when it is not hex of even length.
    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }
}
