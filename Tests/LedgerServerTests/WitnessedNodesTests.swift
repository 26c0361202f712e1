import CERKit
import Foundation
import LedgerCore
import LedgerStore
import LedgerTesting
import Testing

/// Two nodes, each the other's witness (each operator runs `witness serve` for the other's log), and a
/// node that anchors its checkpoints in the other.
@Suite(.blockingIO) struct WitnessedNodesTests {

    func logKey(_ node: TestNode) throws -> String {
        try #require(node.get("/v1/log").json?["verifierKeys"]?[0]?["verifierKey"]?.stringValue)
    }

    func write(_ node: TestNode, _ name: String, _ bytes: [UInt8]) throws -> String {
        let path = node.directory.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The latest checkpoint note with its cosignatures, once its size is at least `size` and `witness` cosigned it.
    func cosignedCheckpoint(_ node: TestNode, atLeast size: Int, by witness: TestWitness) throws -> [UInt8] {
        try eventually("a checkpoint of \(size) entries cosigned by \(witness.name)") {
            let r = try node.get("/v1/log/checkpoint")
            guard r.status == 200, let note = try? SignedNote(parsing: r.body), let c = try? Checkpoint(parsing: note.text), c.size >= UInt64(size),
                (try? WitnessQuorum.check(r.body, witnesses: [witness.verifier], quorum: 1)) != nil
            else { return nil }
            return r.body
        }
    }

    @Test func twoNodesWitnessEachOtherAndASplitViewIsRefusedAndReported() throws {
        let a = try TestNode(serveArguments: ["--checkpoint-interval", "1"])
        let b = try TestNode(serveArguments: ["--checkpoint-interval", "1"])
        let keyA = try logKey(a), keyB = try logKey(b)
        // A's operator witnesses B's log (state in A's database), and B's operator A's.
        let witnessOfB = try TestWitness(name: "witness.a.test", database: a.conninfo, logs: [keyB])
        let witnessOfA = try TestWitness(name: "witness.b.test", database: b.conninfo, logs: [keyA])
        let argsA = ["--checkpoint-interval", "1", "--witness", witnessOfA.spec, "--witness-quorum", "1"]
        a.stop()
        try a.start(argsA)
        b.stop()
        try b.start(["--checkpoint-interval", "1", "--witness", witnessOfB.spec])

        let attested = try a.post("/api/attest", try freshBundle("witnessed-a"), key: a.apiKey)
        let index = try #require(attested.json?["ledger"]?["index"]?.numberValue.map { Int($0) })
        #expect(try b.post("/api/attest", try freshBundle("witnessed-b"), key: b.apiKey).status == 200)
        _ = try cosignedCheckpoint(a, atLeast: index + 1, by: witnessOfA)
        _ = try cosignedCheckpoint(b, atLeast: try b.ledgerSize(), by: witnessOfB)
        let info = try #require(a.get("/v1/log").json)
        #expect(info["witnesses"]?[0]?["name"] == "witness.b.test" && info["witnesses"]?[0]?["splitView"] == false)

        // The auditor's view: the log is witnessed by the key it trusts, and by no other.
        let audit = try a.cli(["ledger", "verify", "--witness-key", witnessOfA.vkey, "--witness-quorum", "1"] + a.keyArguments)
        #expect(audit.status == 0 && audit.stdout.contains("witnessed up to"), "\(audit)")
        #expect(!audit.stdout.contains(" 0 witness cosignatures"), "\(audit)")
        let strangerWitness = try TestWitness(name: "witness.stranger", database: b.conninfo, logs: [keyA])
        let unwitnessed = try a.cli(["ledger", "verify", "--witness-key", strangerWitness.vkey] + a.keyArguments)
        #expect(unwitnessed.status == 1 && unwitnessed.stdout.contains("no checkpoint is cosigned"), "\(unwitnessed)")
        // An offline inclusion proof carries the cosignatures; proof verify checks the quorum.
        let proof = try eventually("an inclusion proof") { () -> HTTPResult? in
            let r = try a.get("/v1/log/proof/inclusion?index=\(index)", headers: [("Accept", "text/plain")])
            return r.status == 200 && r.text.contains("— witness.b.test ") ? r : nil
        }
        let proofFile = try write(a, "witnessed.tlog-proof", proof.body)
        let entryFile = try write(a, "entry.json", try a.get("/v1/log/entries/\(index)", key: a.apiKey).body)
        let verified = try a.cli(["proof", "verify", "--key", keyA, "--proof", proofFile, "--entry", entryFile, "--witness-key", witnessOfA.vkey])
        #expect(verified.status == 0 && verified.stdout.contains("cosigned by witness.b.test"), "\(verified)")
        let notCosigned = try a.cli(["proof", "verify", "--key", keyA, "--proof", proofFile, "--entry", entryFile, "--witness-key", strangerWitness.vkey])
        #expect(notCosigned.status == 1 && notCosigned.stdout.contains("fewer than the quorum"), "\(notCosigned)")
        let badQuorum = try a.cli(["proof", "verify", "--key", keyA, "--proof", proofFile, "--entry", entryFile, "--witness-key", witnessOfA.vkey, "--witness-quorum", "2"])
        #expect(badQuorum.status == 2, "\(badQuorum)")

        // After a restart the node has forgotten the witness's size: the witness's 409 names it, and the
        // node proves consistency from there.
        a.stop()
        try a.start(argsA)
        let again = try a.post("/api/attest", try freshBundle("witnessed-a-2"), key: a.apiKey)
        let index2 = try #require(again.json?["ledger"]?["index"]?.numberValue.map { Int($0) })
        _ = try cosignedCheckpoint(a, atLeast: index2 + 1, by: witnessOfA)
        #expect(try String(contentsOfFile: witnessOfA.errors, encoding: .utf8).contains("witness.status=409"), "the catch-up went through a 409")

        // Split view: the witness is shown another tree that extends what it cosigned (signed with A's
        // key, as a compromised node would), at the size A's next checkpoint will have.
        let size = try eventually("an idle, witnessed log") { () -> Int? in
            let n = try a.ledgerSize()
            let latest = try a.get("/v1/log").json?["latestCheckpoint"]
            return latest?["size"]?.numberValue.map(Int.init) == n && latest?["witnessedBy"]?[0] == "witness.b.test" ? n : nil
        }
        let leaves = try PostgresConnection(conninfo: a.conninfo, statementTimeoutMilliseconds: 10_000, role: nil).query(
            "SELECT encode(leaf_hash, 'hex') FROM ledger_entries ORDER BY idx"
        ).rows.compactMap { $0[0].flatMap(Hex.decode) }
        #expect(leaves.count == size)
        let forged = leaves + [Merkle.leafHash(Array("a record that A never had".utf8))]
        let keyFile = try #require(try FileManager.default.contentsOfDirectory(atPath: a.keysDirectory).first { $0.hasSuffix(".key") })
        let seed = try #require(Base64.decode(try String(contentsOfFile: a.keysDirectory + "/" + keyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        let origin = try NoteVerifier(parsing: keyA).name
        let body = Checkpoint(origin: origin, size: UInt64(forged.count), rootHash: Merkle.root(forged))
        let forgedNote = try SignedNote.sign(text: body.text, signers: [try NoteSigner(name: origin, key: try #require(Ed25519SigningKey(seed: seed)))])
        let shown = try witnessOfA.add(AddCheckpointRequest(
            oldSize: UInt64(size), proof: try #require(Merkle.consistencyProof(oldSize: size, leafHashes: forged)), checkpoint: forgedNote).body)
        #expect(shown.status == 200, "\(shown.text)")
        // A's next checkpoint has that size and another root: the witness refuses it, and A reports it.
        #expect(try a.post("/api/attest", try freshBundle("witnessed-a-3"), key: a.apiKey).status == 200)
        #expect(try a.ledgerSize() == size + 1)
        _ = try eventually("the split view reported") { try a.get("/v1/log").json?["witnesses"]?[0]?["splitView"] == true ? true : nil }
        let reported = try #require(a.get("/v1/log").json?["witnesses"]?[0])
        #expect(reported["lastProblem"]?.stringValue?.contains("split view") == true, "\(reported)")
        #expect(try a.get("/metrics").text.contains("ledger_witness_split_views_total{witness=\"witness.b.test\"} 1"))
        #expect(try a.get("/v1/log").json?["latestCheckpoint"]?["witnessedBy"]?.arrayValue?.isEmpty == true, "the refused checkpoint has no cosignature")
        // Restarted and grown past the forged size, A still finds out: its proof from the witness's size fails.
        a.stop()
        try a.start(argsA)
        #expect(try a.post("/api/attest", try freshBundle("witnessed-a-4"), key: a.apiKey).status == 200)
        let later = try eventually("the fork reported after a restart") { () -> JSONValue? in
            let w = try a.get("/v1/log").json?["witnesses"]?[0]
            return w?["lastProblem"]?.stringValue?.contains("not a prefix of this log") == true ? w : nil
        }
        #expect(later["splitView"] == true, "\(later)")
        let final = try a.cli(["ledger", "verify", "--witness-key", witnessOfA.vkey] + a.keyArguments)
        #expect(final.status == 0 && final.stdout.contains("WARNING:") && final.stdout.contains("lack the witness quorum"), "\(final)")
    }

    @Test func aNodeAnchorsItsCheckpointsInAnotherNodeAndTheAuditChecksTheReceipt() throws {
        let target = try TestNode(serveArguments: ["--checkpoint-interval", "1"])
        let anchoringKey = try target.createAccount("anchoring")
        let node = try TestNode(serveArguments: ["--checkpoint-interval", "1"])
        let keyFile = try write(node, "anchor-api-key", Array(anchoringKey.utf8))
        node.stop()
        try node.start([
            "--checkpoint-interval", "1", "--anchor-node", "http://127.0.0.1:\(target.port)", "--anchor-api-key-file", keyFile, "--anchor-interval", "1",
        ])
        let attested = try node.post("/api/attest", try freshBundle("anchored"), key: node.apiKey)
        let hash = try #require(attested.json?["certificateHash"]?.stringValue)
        let index = try #require(attested.json?["ledger"]?["index"]?.numberValue.map { Int($0) })
        let anchor = try eventually("an anchor covering the attestation") { () -> Int? in
            try node.scalar("""
                SELECT min(idx) FROM ledger_entries WHERE type = 'anchor.recorded' AND (body::jsonb->>'size')::bigint > \(index)
                """).flatMap { Int($0) }
        }
        let entry = try #require(node.get("/v1/log/entries/\(anchor)").json)
        let body = try #require(entry["body"])
        // The target recorded a stamp of the checkpoint's hash for the anchoring account, signed by its active key.
        let anchoredHash = try #require(body["anchoredHash"]?.stringValue)
        let size = try #require(body["size"]?.numberValue.map { Int($0) })
        let note = try #require(try node.scalar("SELECT note FROM ledger_checkpoints WHERE tree_size = \(size)"))
        let noteFile = try write(node, "note-\(size)", Array(note.utf8))
        let digest = try TimestampAuthority.openssl(["dgst", "-sha256", "-r", noteFile], in: node.directory).prefix(64)
        #expect(anchoredHash == "sha256:\(digest)")
        #expect(body["kid"]?.stringValue == (try target.manifest()).activeKid)
        #expect(try target.scalar("SELECT count(*) FROM ledger_entries WHERE subject = 'cer:\(anchoredHash)' AND account = 'anchoring'") == "1")
        // The audit re-checks the receipt; a tampered reply is named.
        let audit = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(audit.status == 0 && !audit.stdout.contains(" 0 anchors"), "\(audit)")
        // Provenance shows the anchor with the inclusion proof that links the record to the anchored checkpoint.
        let provenance = try #require(node.get("/v1/provenance/\(hash)", key: node.apiKey).json)
        let anchors = provenance["records"]?[0]?["anchors"]?.arrayValue ?? []
        let stamp = try #require(anchors.first { $0["type"] == "stamp-hash" })
        #expect(stamp["anchoredHash"]?.stringValue == anchoredHash && stamp["checkpoint"]?["note"]?.stringValue == note)
        let proof = (stamp["inclusionProof"]?["proof"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(Base64.decode) }
        let leaf = try #require(stamp["inclusionProof"]?["leafHash"]?.stringValue.flatMap(Base64.decode))
        let root = try Checkpoint(parsing: try SignedNote(parsing: Array(note.utf8)).text).rootHash
        #expect(Merkle.verifyInclusion(index: index, size: size, leafHash: leaf, proof: proof, root: root))
        #expect(Hex.encode(leaf) == attested.json?["ledger"]?["leafHash"]?.stringValue)
        // The reply tampered in storage (the operator has the database) fails the audit.
        try TestDatabase.superuser(node.conninfo, """
            ALTER TABLE ledger_payloads DISABLE TRIGGER USER;
            UPDATE ledger_payloads SET content = convert_to(replace(convert_from(content, 'UTF8'), '"receipt"', '"receipt" '), 'UTF8')
            WHERE digest = (SELECT payload_digest FROM ledger_entries WHERE idx = \(anchor));
            """)
        let tampered = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(tampered.status == 1 && tampered.stdout.contains("anchor"), "\(tampered)")
    }
}
