import CERKit

/// An inclusion proof in c2sp.org/tlog-proof form: `c2sp.org/tlog-proof@v1`, an optional `extra` line,
/// `index N`, one base64 hash per line, an empty line, then the signed checkpoint verbatim.
public struct TlogProof: Sendable, Equatable {
    public static let header = "c2sp.org/tlog-proof@v1"
    public var extra: [UInt8]?
    public var index: UInt64
    public var proof: [[UInt8]]
    /// The signed checkpoint note.
    public var checkpoint: [UInt8]

    public init(index: UInt64, proof: [[UInt8]], checkpoint: [UInt8], extra: [UInt8]? = nil) {
        self.index = index
        self.proof = proof
        self.checkpoint = checkpoint
        self.extra = extra
    }

    public init(parsing bytes: [UInt8]) throws(SignedNoteError) {
        // The proof ends at the first empty line; the checkpoint note follows.
        guard let blank = Self.firstBlankLine(bytes) else { throw SignedNoteError("a tlog-proof has an empty line before its checkpoint") }
        let head = bytes[..<blank].split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        var lines = head[...]
        guard lines.popFirst() == Self.header else { throw SignedNoteError("a tlog-proof starts with \(Self.header)") }
        var extra: [UInt8]? = nil
        if let line = lines.first, line.hasPrefix("extra ") {
            guard let data = strictBase64(String(line.dropFirst(6))) else { throw SignedNoteError("the extra line is not base64") }
            extra = data
            lines = lines.dropFirst()
        }
        guard let indexLine = lines.popFirst(), indexLine.hasPrefix("index "), let index = UInt64(indexLine.dropFirst(6)),
            String(index) == indexLine.dropFirst(6)
        else { throw SignedNoteError("a tlog-proof has an `index N` line (decimal, no leading zeros)") }
        var proof: [[UInt8]] = []
        for line in lines {
            guard let hash = strictBase64(line), hash.count == 32 else { throw SignedNoteError("a proof line is not base64 of 32 bytes") }
            proof.append(hash)
        }
        guard proof.count <= 64 else { throw SignedNoteError("a proof has more than 64 hashes") }
        self.init(index: index, proof: proof, checkpoint: Array(bytes[(blank + 2)...]), extra: extra)
    }

    /// The position of the first "\n\n" (the newline ending the last proof line).
    static func firstBlankLine(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for i in 0..<(bytes.count - 1) where bytes[i] == 0x0A && bytes[i + 1] == 0x0A { return i }
        return nil
    }

    public var text: [UInt8] {
        var s = Self.header + "\n"
        if let extra { s += "extra \(Base64.encode(extra))\n" }
        s += "index \(index)\n"
        for h in proof { s += Base64.encode(h) + "\n" }
        return Array((s + "\n").utf8) + checkpoint
    }

    /// Opens the checkpoint with the trusted keys and checks that `leafHash` is entry `index` of its tree.
    public func verify(leafHash: [UInt8], origin: String, verifiers: [NoteVerifier]) throws(SignedNoteError) -> Checkpoint {
        let cp = try Checkpoint.open(checkpoint, origin: origin, verifiers: verifiers)
        guard index < cp.size else { throw SignedNoteError("entry \(index) is not in the checkpoint's tree of \(cp.size)") }
        guard Merkle.verifyInclusion(index: Int(index), size: Int(cp.size), leafHash: leafHash, proof: proof, root: cp.rootHash) else {
            throw SignedNoteError("the inclusion proof does not lead from the leaf to the checkpoint's root")
        }
        return cp
    }
}

/// A consistency proof in EvidenceLedger's text form: `evidence-ledger/consistency-proof@v1`, `old N`,
/// `new M`, then one base64 hash per line (RFC 6962 §2.1.2 order).
public struct ConsistencyProofText: Sendable, Equatable {
    public static let header = "evidence-ledger/consistency-proof@v1"
    public var oldSize: UInt64
    public var newSize: UInt64
    public var proof: [[UInt8]]

    public init(oldSize: UInt64, newSize: UInt64, proof: [[UInt8]]) {
        self.oldSize = oldSize
        self.newSize = newSize
        self.proof = proof
    }

    public init(parsing bytes: [UInt8]) throws(SignedNoteError) {
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }[...]
        if lines.last == "" { lines = lines.dropLast() }
        guard lines.popFirst() == Self.header else { throw SignedNoteError("a consistency proof starts with \(Self.header)") }
        func size(_ name: String) throws(SignedNoteError) -> UInt64 {
            guard let line = lines.popFirst(), line.hasPrefix(name + " "), let v = UInt64(line.dropFirst(name.count + 1)),
                String(v) == line.dropFirst(name.count + 1)
            else { throw SignedNoteError("a consistency proof has a `\(name) N` line") }
            return v
        }
        let old = try size("old"), new = try size("new")
        var proof: [[UInt8]] = []
        for line in lines {
            guard let hash = strictBase64(line), hash.count == 32 else { throw SignedNoteError("a proof line is not base64 of 32 bytes") }
            proof.append(hash)
        }
        self.init(oldSize: old, newSize: new, proof: proof)
    }

    public var text: [UInt8] {
        Array(([Self.header, "old \(oldSize)", "new \(newSize)"] + proof.map { Base64.encode($0) }).map { $0 + "\n" }.joined().utf8)
    }

    /// Checks that `new` extends `old` (two checkpoints already opened).
    public func verify(old: Checkpoint, new: Checkpoint) throws(SignedNoteError) {
        guard old.size == oldSize, new.size == newSize else {
            throw SignedNoteError("the proof is for sizes \(oldSize) → \(newSize), the checkpoints are \(old.size) → \(new.size)")
        }
        guard old.origin == new.origin else { throw SignedNoteError("the checkpoints are of different logs") }
        guard Merkle.verifyConsistency(size1: Int(old.size), size2: Int(new.size), proof: proof, root1: old.rootHash, root2: new.rootHash) else {
            throw SignedNoteError("the consistency proof does not connect the two checkpoints' roots")
        }
    }
}
