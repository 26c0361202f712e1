import CERKit
import Foundation
import LedgerTesting
import Testing
@testable import LedgerCore

/// The witness's rules (c2sp.org/tlog-witness) and its cosignatures (c2sp.org/tlog-cosignature), checked
/// against the spec's example and against openssl.
@Suite struct WitnessTests {
    static let logKey = Ed25519SigningKey(seed: Array(repeating: 7, count: 32))!
    static let origin = "example.org/log"
    static func leaves(_ n: Int) -> [[UInt8]] { (0..<n).map { Merkle.leafHash(Array("leaf \($0)".utf8)) } }

    static func checkpoint(_ leaves: [[UInt8]], key: Ed25519SigningKey = logKey, origin: String = origin) throws -> [UInt8] {
        let body = Checkpoint(origin: origin, size: UInt64(leaves.count), rootHash: Merkle.root(leaves))
        return try SignedNote.sign(text: body.text, signers: [try NoteSigner(name: origin, key: key)])
    }

    static var trusted: [NoteVerifier] { [NoteVerifier(name: origin, publicKey: logKey.publicKey)] }

    @Test func theSignedMessageIsTheSpecsExample() throws {
        let example = try Data(contentsOf: TestLocations.shared("vectors/signed-note/c2sp/tlog-cosignature-signed-message-example.txt"))
        let text = Array("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n".utf8)
        #expect(CosignatureSigner.message(checkpointText: text, time: 1_679_315_147) == Array(example))
    }

    @Test func aCosignatureVerifiesWithOpenSSLAndItsKeyIdIsTheSpecs() throws {
        let signer = try CosignatureSigner(name: "witness.example/w1", key: Ed25519SigningKey(seed: Array(repeating: 9, count: 32))!)
        let text = try Checkpoint(parsing: try SignedNote(parsing: try Self.checkpoint(Self.leaves(5))).text).text
        let line = signer.cosign(checkpointText: text, time: 1_700_000_000)
        let parsed = try SignedNote(parsing: text + [0x0A] + line)
        let raw = parsed.signatures[0]
        #expect(raw.name == "witness.example/w1" && raw.signature.count == 72)
        #expect(Array(raw.signature[..<8]) == [0, 0, 0, 0, 0x65, 0x53, 0xF1, 0x00], "1700000000 as 8 big-endian bytes")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cosig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // Key ID: SHA-256(name || 0x0A || 0x04 || key)[:4], by openssl.
        try Data(Array("witness.example/w1".utf8) + [0x0A, 0x04] + signer.key.publicKey).write(to: dir.appendingPathComponent("id"))
        let digest = try TimestampAuthority.openssl(["dgst", "-sha256", "-r", "id"], in: dir)
        #expect(Hex.encode(raw.keyId) == String(digest.prefix(8)))
        // The Ed25519 signature over "cosignature/v1\ntime 1700000000\n" || text, by openssl.
        let spki = NodeKeyManifest.ed25519SpkiPrefix + signer.key.publicKey
        try Data("-----BEGIN PUBLIC KEY-----\n\(Base64.encode(spki))\n-----END PUBLIC KEY-----\n".utf8).write(to: dir.appendingPathComponent("pub.pem"))
        try Data(Array("cosignature/v1\ntime 1700000000\n".utf8) + text).write(to: dir.appendingPathComponent("msg"))
        try Data(raw.signature[8...]).write(to: dir.appendingPathComponent("sig"))
        let out = try TimestampAuthority.openssl(["pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg", "-sigfile", "sig"], in: dir)
        #expect(out.contains("Signature Verified Successfully"))
        // And our note verifier accepts it under the 0x04 key, and refuses it once the text changes.
        #expect(parsed.verify(with: [signer.verifier]).isOpen)
        var other = text
        other[other.count - 2] ^= 1
        #expect(!SignedNote(text: other, signatures: parsed.signatures).verify(with: [signer.verifier]).isOpen)
        // The private key round-trips through its text form.
        #expect(try CosignatureSigner(parsing: signer.encoded).verifier == signer.verifier)
    }

    func decide(_ old: UInt64, _ proof: [[UInt8]], _ note: [UInt8], latest: (UInt64, [UInt8])?, trusted: [NoteVerifier]? = WitnessTests.trusted) -> WitnessDecision {
        WitnessDecision.decide(AddCheckpointRequest(oldSize: old, proof: proof, checkpoint: note), trusted: trusted, latest: latest.map { (size: $0.0, rootHash: $0.1) })
    }

    func status(_ d: WitnessDecision) -> Int {
        if case .refuse(let s, _, _) = d { return s }
        return 200
    }

    @Test func everyRuleOfAddCheckpoint() throws {
        let all = Self.leaves(10)
        let at4 = Array(all[..<4]), at7 = Array(all[..<7])
        let note7 = try Self.checkpoint(at7)
        let proof = try #require(Merkle.consistencyProof(oldSize: 4, leafHashes: at7))
        let latest4 = (UInt64(4), Merkle.root(at4))
        #expect(status(decide(4, proof, note7, latest: latest4)) == 200)
        #expect(status(decide(0, [], note7, latest: nil)) == 200, "a first checkpoint needs no proof")
        #expect(status(decide(4, proof, note7, latest: latest4, trusted: nil)) == 404, "unknown origin")
        let stranger = Ed25519SigningKey(seed: Array(repeating: 8, count: 32))!
        #expect(status(decide(4, proof, try Self.checkpoint(at7, key: stranger), latest: latest4)) == 403, "no trusted signature")
        #expect(status(decide(8, proof, note7, latest: latest4)) == 400, "old size above the checkpoint's")
        guard case .refuse(409, _, let size) = decide(3, proof, note7, latest: latest4) else { Issue.record("old size mismatch"); return }
        #expect(size == 4)
        var bad = proof
        bad[0][0] ^= 1
        #expect(status(decide(4, bad, note7, latest: latest4)) == 422, "a proof that does not verify")
        #expect(status(decide(0, proof, note7, latest: nil)) == 422, "a proof from size 0 must be empty")
        // The same size: the same root is cosigned again, another root is a split view.
        #expect(status(decide(7, [], note7, latest: (7, Merkle.root(at7)))) == 200)
        let forked = Array(all[..<6]) + [Merkle.leafHash(Array("forged".utf8))]
        guard case .refuse(409, let reason, 7) = decide(7, [], try Self.checkpoint(forked), latest: (7, Merkle.root(at7))) else {
            Issue.record("a split view is a 409")
            return
        }
        #expect(reason.contains("split view"))
        // Signatures of unknown keys beside a trusted one are ignored.
        let both = try SignedNote.sign(
            text: try SignedNote(parsing: note7).text,
            signers: [try NoteSigner(name: "other", key: stranger), try NoteSigner(name: Self.origin, key: Self.logKey)])
        #expect(status(decide(4, proof, both, latest: latest4)) == 200)
    }

    @Test func requestsAreReadStrictly() throws {
        let note = try Self.checkpoint(Self.leaves(3))
        let proofLine = Base64.encode(Array(repeating: 1, count: 32))
        let good = Array("old 2\n\(proofLine)\n\n".utf8) + note
        let parsed = try AddCheckpointRequest(parsing: good)
        #expect(parsed.oldSize == 2 && parsed.proof.count == 1 && parsed.checkpoint == note && parsed.body == good)
        for bad in ["old 02\n\n", "old -1\n\n", "new 2\n\n", "old 2\nnot base64\n\n", "old 2\n\(Base64.encode([1, 2]))\n\n", "old 2\n"] {
            #expect(throws: SignedNoteError.self, "\(bad)") { try AddCheckpointRequest(parsing: Array(bad.utf8) + note) }
        }
        let tooMany = "old 2\n" + String(repeating: proofLine + "\n", count: 64) + "\n"
        #expect(throws: SignedNoteError.self) { try AddCheckpointRequest(parsing: Array(tooMany.utf8) + note) }
    }

    @Test func aQuorumCountsDistinctTrustedWitnessesAndRefusesABadCosignature() throws {
        let note = try Self.checkpoint(Self.leaves(3))
        let text = try SignedNote(parsing: note).text
        let w1 = try CosignatureSigner(name: "w1", key: Ed25519SigningKey(seed: Array(repeating: 1, count: 32))!)
        let w2 = try CosignatureSigner(name: "w2", key: Ed25519SigningKey(seed: Array(repeating: 2, count: 32))!)
        let cosigned = note + w1.cosign(checkpointText: text, time: 10) + w1.cosign(checkpointText: text, time: 11)
        #expect(try WitnessQuorum.check(cosigned, witnesses: [w1.verifier, w2.verifier], quorum: 1) == ["w1"])
        #expect(throws: SignedNoteError.self, "one witness twice is not two") {
            try WitnessQuorum.check(cosigned, witnesses: [w1.verifier, w2.verifier], quorum: 2)
        }
        #expect(try WitnessQuorum.check(cosigned + w2.cosign(checkpointText: text, time: 12), witnesses: [w1.verifier, w2.verifier], quorum: 2).count == 2)
        // A cosignature over another checkpoint, pasted under this one, does not verify.
        let otherText = try SignedNote(parsing: try Self.checkpoint(Self.leaves(4))).text
        #expect(throws: SignedNoteError.self) {
            try WitnessQuorum.check(note + w2.cosign(checkpointText: otherText, time: 12), witnesses: [w2.verifier], quorum: 1)
        }
    }
}
