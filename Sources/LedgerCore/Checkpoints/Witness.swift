public import CERKit

/// A witness's cosigning key (c2sp.org/tlog-cosignature): an Ed25519 key whose verifier has type 0x04.
/// A cosignature signs `cosignature/v1\ntime <t>\n` followed by the checkpoint text; its signature line
/// carries base64(key ID || t as 8 big-endian bytes || signature).
public struct CosignatureSigner: Sendable {
    public var name: String
    public var key: Ed25519SigningKey
    public var verifier: NoteVerifier { NoteVerifier(name: name, publicKey: key.publicKey, type: NoteVerifier.cosignatureV1) }

    public init(name: String, key: Ed25519SigningKey) throws(SignedNoteError) {
        guard NoteVerifier.isValidName(name) else { throw SignedNoteError("the witness name is empty or contains '+' or whitespace") }
        self.name = name
        self.key = key
    }

    /// Parses `PRIVATE+KEY+<name>+<key id>+<base64(0x04 || seed)>` (the key ID is the cosignature verifier's).
    public init(parsing skey: String) throws(SignedNoteError) {
        let parsed = try NoteSigner.privateKey(skey, type: NoteVerifier.cosignatureV1, noun: "witness")
        try self.init(name: parsed.name, key: parsed.key)
        guard Hex.encode(verifier.keyId) == parsed.keyIdHex else { throw SignedNoteError("the witness key ID does not match the key") }
    }

    /// The private key in the format `init(parsing:)` reads.
    public var encoded: String {
        "PRIVATE+KEY+\(name)+\(Hex.encode(verifier.keyId))+\(Base64.encode([NoteVerifier.cosignatureV1] + key.seed))"
    }

    /// The message a cosignature at `time` (seconds since the epoch) signs over `checkpointText`.
    public static func message(checkpointText: [UInt8], time: UInt64) -> [UInt8] {
        Array("cosignature/v1\ntime \(time)\n".utf8) + checkpointText
    }

    /// One signature line, `— <name> <base64>\n`.
    public func cosign(checkpointText: [UInt8], time: UInt64) -> [UInt8] {
        let bigEndian = (0..<8).map { UInt8(truncatingIfNeeded: time >> (56 - 8 * UInt64($0))) }
        let signature = key.sign(Self.message(checkpointText: checkpointText, time: time))
        return SignedNote.dash + Array(name.utf8) + [0x20] + Array(Base64.encode(verifier.keyId + bigEndian + signature).utf8) + [0x0A]
    }
}

/// What a witness must see before it cosigns (c2sp.org/tlog-witness `add-checkpoint`).
public struct AddCheckpointRequest: Sendable, Equatable {
    public static let maxProofLines = 63
    public static let maxBytes = 64 * 1024

    public var oldSize: UInt64
    public var proof: [[UInt8]]
    /// The signed checkpoint note.
    public var checkpoint: [UInt8]

    public init(oldSize: UInt64, proof: [[UInt8]], checkpoint: [UInt8]) {
        self.oldSize = oldSize
        self.proof = proof
        self.checkpoint = checkpoint
    }

    /// `old <size>\n`, one base64 hash per line, an empty line, the checkpoint.
    public var body: [UInt8] {
        Array(("old \(oldSize)\n" + proof.map { Base64.encode($0) + "\n" }.joined() + "\n").utf8) + checkpoint
    }

    public init(parsing body: [UInt8]) throws(SignedNoteError) {
        guard body.count <= Self.maxBytes else { throw SignedNoteError("the request is larger than \(Self.maxBytes) bytes") }
        guard let blank = TlogProof.firstBlankLine(body) else { throw SignedNoteError("the request has no empty line before its checkpoint") }
        let lines = body[..<blank].split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard let first = lines.first, first.hasPrefix("old "), let old = UInt64(first.dropFirst(4)), String(old) == first.dropFirst(4) else {
            throw SignedNoteError("the request starts with an `old N` line (decimal, no leading zeros)")
        }
        guard lines.count - 1 <= Self.maxProofLines else { throw SignedNoteError("the consistency proof has more than \(Self.maxProofLines) lines") }
        var proof: [[UInt8]] = []
        for line in lines.dropFirst() {
            guard let hash = strictBase64(line), hash.count == 32 else { throw SignedNoteError("a consistency proof line is not base64 of 32 bytes") }
            proof.append(hash)
        }
        self.init(oldSize: old, proof: proof, checkpoint: Array(body[(blank + 2)...]))
    }
}

/// The witness's rules, without I/O: given a request, the keys it trusts for the checkpoint's origin and
/// the latest checkpoint it cosigned for that origin, either the new state to store and cosign, or the
/// refusal with the status c2sp.org/tlog-witness prescribes.
public enum WitnessDecision: Sendable, Equatable {
    /// Cosign, after storing `size` and `rootHash` as the origin's latest (atomically with the check).
    case cosign(origin: String, size: UInt64, rootHash: [UInt8], checkpointText: [UInt8])
    /// Refuse with `status`; a 409 carries the latest cosigned size.
    case refuse(status: Int, reason: String, latestSize: UInt64?)

    /// The origin a request's checkpoint names, to look up its keys and state (nil: unreadable, 400).
    public static func origin(of request: AddCheckpointRequest) -> String? {
        guard let note = try? SignedNote(parsing: request.checkpoint), let body = try? Checkpoint(parsing: note.text) else { return nil }
        return body.origin
    }

    /// `trusted` is nil when the origin is unknown; `latest` is nil when nothing was cosigned yet.
    public static func decide(
        _ request: AddCheckpointRequest, trusted: [NoteVerifier]?, latest: (size: UInt64, rootHash: [UInt8])?
    ) -> WitnessDecision {
        let note: SignedNote
        let body: Checkpoint
        do {
            note = try SignedNote(parsing: request.checkpoint)
            body = try Checkpoint(parsing: note.text)
        } catch {
            return .refuse(status: 400, reason: "the checkpoint is not a signed note of a checkpoint: \(error)", latestSize: nil)
        }
        guard body.size <= UInt64(Int64.max) else { return .refuse(status: 400, reason: "the checkpoint's size is out of range", latestSize: nil) }
        guard let trusted else { return .refuse(status: 404, reason: "this witness does not know the origin \"\(body.origin.prefix(200))\"", latestSize: nil) }
        // Signatures from unknown keys are ignored; one trusted signature that verifies is needed.
        let verification = note.verify(with: trusted.filter { $0.name == body.origin && $0.type == NoteVerifier.ed25519 })
        guard !verification.verified.isEmpty else {
            return .refuse(status: 403, reason: "no signature on the checkpoint verifies with a key this witness trusts for \(body.origin)", latestSize: nil)
        }
        guard request.oldSize <= body.size else {
            return .refuse(status: 400, reason: "the old size \(request.oldSize) is larger than the checkpoint's size \(body.size)", latestSize: nil)
        }
        let latestSize = latest?.size ?? 0
        guard request.oldSize == latestSize else {
            return .refuse(status: 409, reason: "the latest checkpoint cosigned for \(body.origin) has size \(latestSize), not \(request.oldSize)", latestSize: latestSize)
        }
        if request.oldSize == 0 {
            guard request.proof.isEmpty else { return .refuse(status: 422, reason: "the consistency proof from size 0 must be empty", latestSize: nil) }
        } else if request.oldSize == body.size {
            guard request.proof.isEmpty else { return .refuse(status: 422, reason: "the consistency proof between equal sizes must be empty", latestSize: nil) }
            guard latest?.rootHash == body.rootHash else {
                return .refuse(
                    status: 409, reason: "this witness cosigned another tree of size \(body.size) for \(body.origin): a split view", latestSize: latestSize)
            }
        } else if let latest, !Merkle.verifyConsistency(
            size1: Int(latest.size), size2: Int(body.size), proof: request.proof, root1: latest.rootHash, root2: body.rootHash)
        {
            return .refuse(status: 422, reason: "the consistency proof from size \(latest.size) to \(body.size) does not verify", latestSize: nil)
        }
        return .cosign(origin: body.origin, size: body.size, rootHash: body.rootHash, checkpointText: note.text)
    }
}

/// Cosignature checks for auditors: every cosignature by a trusted witness verifies, and at least `quorum`
/// distinct witnesses cosigned.
public enum WitnessQuorum {
    /// The names of the trusted witnesses whose cosignatures verify on `note`.
    @discardableResult
    public static func check(_ note: [UInt8], witnesses: [NoteVerifier], quorum: Int) throws(SignedNoteError) -> [String] {
        let parsed = try SignedNote(parsing: note)
        let verification = parsed.verify(with: witnesses.filter { $0.type == NoteVerifier.cosignatureV1 })
        if let bad = verification.invalid.first { throw SignedNoteError("the cosignature of witness \(bad) does not verify") }
        var names: [String] = []
        for name in verification.verified where !names.contains(name) { names.append(name) }
        guard names.count >= quorum else {
            throw SignedNoteError("the checkpoint is cosigned by \(names.count) of the trusted witnesses, fewer than the quorum of \(quorum)")
        }
        return names
    }
}
