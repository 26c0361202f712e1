import CERKit

/// A transparency-log checkpoint (c2sp.org/tlog-checkpoint): origin, tree size, RFC 6962 root hash,
/// then optional extension lines.
public struct Checkpoint: Sendable, Equatable {
    public var origin: String
    public var size: UInt64
    public var rootHash: [UInt8]
    public var extensions: [String]

    public init(origin: String, size: UInt64, rootHash: [UInt8], extensions: [String] = []) {
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
        self.extensions = extensions
    }

    /// Parses a checkpoint body (a note's text).
    public init(parsing text: [UInt8]) throws(SignedNoteError) {
        guard text.last == 0x0A else { throw SignedNoteError("a checkpoint ends with a newline") }
        let lines = text.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard lines.count >= 3 else { throw SignedNoteError("a checkpoint has an origin, a size and a root hash") }
        guard !lines[0].isEmpty else { throw SignedNoteError("the checkpoint origin is empty") }
        guard let size = UInt64(lines[1]), lines[1] == String(size) else {
            throw SignedNoteError("the checkpoint size is not a decimal number without leading zeros")
        }
        guard let root = strictBase64(lines[2]), root.count == 32 else { throw SignedNoteError("the checkpoint root is not base64 of 32 bytes") }
        guard lines[3...].allSatisfy({ !$0.isEmpty }) else { throw SignedNoteError("a checkpoint extension line is empty") }
        self.init(origin: lines[0], size: size, rootHash: root, extensions: Array(lines[3...]))
    }

    /// The checkpoint body: `origin\nsize\nbase64(root)\n` and the extension lines.
    public var text: [UInt8] {
        Array(([origin, String(size), Base64.encode(rootHash)] + extensions).map { $0 + "\n" }.joined().utf8)
    }
}

/// Standard base64 that must re-encode to the same text (no missing padding, no stray bits).
func strictBase64(_ text: String) -> [UInt8]? {
    guard let bytes = Base64.decode(text), Base64.encode(bytes) == text else { return nil }
    return bytes
}

extension Checkpoint {
    /// Opens a signed checkpoint: at least one trusted signature verifies, none is invalid, and the
    /// origin is the expected one (a valid signature over another log's checkpoint is refused).
    public static func open(_ note: [UInt8], origin: String, verifiers: [NoteVerifier]) throws(SignedNoteError) -> Checkpoint {
        let parsed = try SignedNote(parsing: note)
        let verification = parsed.verify(with: verifiers)
        if let bad = verification.invalid.first { throw SignedNoteError("the signature of \(bad) does not verify") }
        guard verification.isOpen else { throw SignedNoteError("the checkpoint has no signature from a trusted key") }
        let checkpoint = try Checkpoint(parsing: parsed.text)
        guard checkpoint.origin == origin else {
            throw SignedNoteError("the checkpoint is for origin \"\(checkpoint.origin)\", not \"\(origin)\"")
        }
        return checkpoint
    }
}
