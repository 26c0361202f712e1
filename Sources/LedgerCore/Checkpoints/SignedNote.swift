public import CERKit

/// Why a signed note, a verifier key or a checkpoint could not be read.
public struct SignedNoteError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    /// The note is genuine, but every key that signed it has since stopped counting for it (revoked,
    /// retired before its entries): a later checkpoint by a valid key may still prove the same tree.
    public var signedOnlyByKeysThatNoLongerCount: Bool
    public init(_ description: String, signedOnlyByKeysThatNoLongerCount: Bool = false) {
        self.description = description
        self.signedOnlyByKeysThatNoLongerCount = signedOnlyByKeysThatNoLongerCount
    }
}

/// A signed-note verifier key (c2sp.org/signed-note): `<name>+<8 hex key ID>+<base64(type || key)>`.
/// Type 0x01 is Ed25519; type 0x04 is an Ed25519 tlog cosignature (c2sp.org/tlog-cosignature).
public struct NoteVerifier: Sendable, Equatable {
    public static let ed25519: UInt8 = 0x01
    public static let cosignatureV1: UInt8 = 0x04

    public var name: String
    public var keyId: [UInt8]
    public var type: UInt8
    public var publicKey: [UInt8]

    /// An Ed25519 verifier for `name`, with its key ID computed.
    public init(name: String, publicKey: [UInt8], type: UInt8 = NoteVerifier.ed25519) {
        self.name = name
        self.type = type
        self.publicKey = publicKey
        keyId = Self.keyId(name: name, type: type, publicKey: publicKey)
    }

    /// Parses a verifier key string, refusing anything malformed: a bad name, a key ID that is not 8 hex
    /// digits or does not match the key, base64 that is not canonical, an unknown type, a wrong length.
    public init(parsing vkey: String) throws(SignedNoteError) {
        let parts = vkey.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3 else { throw SignedNoteError("a verifier key is <name>+<key id>+<key>") }
        guard Self.isValidName(parts[0]) else { throw SignedNoteError("the key name is empty or contains '+' or whitespace") }
        guard parts[1].utf8.count == 8, let id = Hex.decode(parts[1]), parts[1] == parts[1].lowercased() else {
            throw SignedNoteError("the key ID is not 8 lowercase hex digits")
        }
        guard let raw = strictBase64(parts[2]), raw.count == 33 else { throw SignedNoteError("the key is not base64 of a type byte and 32 bytes") }
        guard raw[0] == Self.ed25519 || raw[0] == Self.cosignatureV1 else { throw SignedNoteError("unknown key type 0x\(Hex.encode([raw[0]]))") }
        self.init(name: parts[0], publicKey: Array(raw[1...]), type: raw[0])
        guard keyId == id else { throw SignedNoteError("the key ID does not match the key") }
    }

    /// `<name>+<key id>+<base64(type || key)>`.
    public var encoded: String { "\(name)+\(Hex.encode(keyId))+\(Base64.encode([type] + publicKey))" }

    /// The first four bytes of SHA-256(name || 0x0A || type || public key).
    public static func keyId(name: String, type: UInt8, publicKey: [UInt8]) -> [UInt8] {
        Array(ProtocolHash.sha256(Array(name.utf8) + [0x0A, type] + publicKey).prefix(4))
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy { $0 != "+" && !$0.properties.isWhitespace && $0.value >= 0x20 }
    }
}

/// A signed-note signer: an Ed25519 key and its name. Parses Go's `PRIVATE+KEY+<name>+<id>+<base64(0x01 || seed)>`.
public struct NoteSigner: Sendable {
    public var name: String
    public var key: Ed25519SigningKey
    public var verifier: NoteVerifier { NoteVerifier(name: name, publicKey: key.publicKey) }

    public init(name: String, key: Ed25519SigningKey) throws(SignedNoteError) {
        guard NoteVerifier.isValidName(name) else { throw SignedNoteError("the key name is empty or contains '+' or whitespace") }
        self.name = name
        self.key = key
    }

    public init(parsing skey: String) throws(SignedNoteError) {
        let parsed = try Self.privateKey(skey, type: NoteVerifier.ed25519, noun: "signer")
        try self.init(name: parsed.name, key: parsed.key)
        guard Hex.encode(verifier.keyId) == parsed.keyIdHex else { throw SignedNoteError("the key ID does not match the key") }
    }

    /// Reads Go's private key text `PRIVATE+KEY+<name>+<key id>+<base64(type || seed)>` for a key of `type`
    /// (the caller checks the key ID against its verifier, whose key ID depends on the type).
    static func privateKey(_ skey: String, type: UInt8, noun: String) throws(SignedNoteError)
        -> (name: String, keyIdHex: String, key: Ed25519SigningKey)
    {
        let parts = skey.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY" else {
            throw SignedNoteError("a \(noun) key is PRIVATE+KEY+<name>+<key id>+<key>")
        }
        guard let raw = strictBase64(parts[4]), raw.count == 33, raw[0] == type, let key = Ed25519SigningKey(seed: Array(raw[1...])) else {
            throw SignedNoteError("the \(noun) key is not base64 of 0x\(Hex.encode([type])) and a 32-byte Ed25519 seed")
        }
        return (parts[2], parts[3], key)
    }
}

/// A note (c2sp.org/signed-note): text ending in a newline, an empty line, then signature lines
/// `— <name> <base64(key ID || signature)>`.
public struct SignedNote: Sendable, Equatable {
    public struct Signature: Sendable, Equatable {
        public var name: String
        public var keyId: [UInt8]
        public var signature: [UInt8]
    }

    /// The signed text, ending in `\n`.
    public var text: [UInt8]
    public var signatures: [Signature]

    static let dash: [UInt8] = [0xE2, 0x80, 0x94, 0x20]

    public init(text: [UInt8], signatures: [Signature]) {
        self.text = text
        self.signatures = signatures
    }

    /// Parses a note. The text ends at the last blank line; every following line must be a signature.
    public init(parsing note: [UInt8]) throws(SignedNoteError) {
        guard String(validating: note, as: UTF8.self) != nil else { throw SignedNoteError("the note is not UTF-8") }
        guard !note.contains(where: { $0 < 0x20 && $0 != 0x0A }) else { throw SignedNoteError("the note contains control characters") }
        guard note.last == 0x0A, note.count >= 2 else { throw SignedNoteError("the note does not end with a newline") }
        var split: Int? = nil
        var i = note.count - 2
        while i >= 0 {
            if note[i] == 0x0A && note[i + 1] == 0x0A {
                split = i
                break
            }
            i -= 1
        }
        guard let split else { throw SignedNoteError("the note has no blank line before its signatures") }
        text = Array(note[...split])
        signatures = []
        for line in note[(split + 2)...].split(separator: 0x0A, omittingEmptySubsequences: false).dropLast() {
            guard line.starts(with: Self.dash) else { throw SignedNoteError("a signature line does not start with an em dash and a space") }
            let rest = Array(line.dropFirst(Self.dash.count))
            guard let space = rest.lastIndex(of: 0x20) else { throw SignedNoteError("a signature line has no signature") }
            let name = String(decoding: rest[..<space], as: UTF8.self)
            guard NoteVerifier.isValidName(name) else { throw SignedNoteError("a signature line has an invalid key name") }
            guard let raw = strictBase64(String(decoding: rest[(space + 1)...], as: UTF8.self)), raw.count >= 5 else {
                throw SignedNoteError("a signature of \(name) is not base64 of a key ID and a signature")
            }
            signatures.append(Signature(name: name, keyId: Array(raw[..<4]), signature: Array(raw[4...])))
        }
        guard !signatures.isEmpty else { throw SignedNoteError("the note has no signatures") }
        guard signatures.count <= 100 else { throw SignedNoteError("the note has too many signatures") }
    }

    /// What verification found: trusted keys whose signature verified, signatures from keys not trusted
    /// (ignored), and trusted keys whose signature did not verify.
    public struct Verification: Sendable, Equatable {
        public var verified: [String] = []
        public var unverified: [String] = []
        public var invalid: [String] = []
        /// At least one trusted signature verified and none was invalid.
        public var isOpen: Bool { !verified.isEmpty && invalid.isEmpty }
    }

    /// Checks every signature against the trusted `verifiers` (matched by name and key ID).
    public func verify(with verifiers: [NoteVerifier]) -> Verification {
        var result = Verification()
        for s in signatures {
            guard let v = verifiers.first(where: { $0.name == s.name && $0.keyId == s.keyId }) else {
                result.unverified.append(s.name)
                continue
            }
            let ok: Bool
            switch v.type {
            case NoteVerifier.ed25519:
                ok = Ed25519.isValidSignature(s.signature, of: text, publicKey: v.publicKey)
            case NoteVerifier.cosignatureV1 where s.signature.count == 72:
                let time = s.signature[..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                ok = Ed25519.isValidSignature(Array(s.signature[8...]), of: Array("cosignature/v1\ntime \(time)\n".utf8) + text, publicKey: v.publicKey)
            default:
                ok = false
            }
            if ok { result.verified.append(s.name) } else { result.invalid.append(s.name) }
        }
        return result
    }

    /// A note of `text` signed by each signer (Ed25519, deterministic).
    public static func sign(text: [UInt8], signers: [NoteSigner]) throws(SignedNoteError) -> [UInt8] {
        guard text.last == 0x0A, !text.contains(where: { $0 < 0x20 && $0 != 0x0A }), String(validating: text, as: UTF8.self) != nil else {
            throw SignedNoteError("a note's text is UTF-8 without control characters and ends with a newline")
        }
        var out = text + [0x0A]
        for s in signers {
            out += Self.dash + Array(s.name.utf8) + [0x20]
            out += Array(Base64.encode(s.verifier.keyId + s.key.sign(text)).utf8) + [0x0A]
        }
        return out
    }
}
