import CERKit
import Foundation
import LedgerCore
import LedgerProcesses
import LedgerStore
import Synchronization
import Testing
import LedgerTesting

/// The verifiable log over HTTP: checkpoints signed by the node, inclusion and consistency proofs that
/// verify with LedgerCore and with `evidence-ledger proof verify`, and one tree across two processes.
@Suite(.blockingIO) struct VerifiableLogTests {
    /// The log's origin and its trusted verifier keys, as published.
    func logKeys(_ node: TestNode) throws -> (origin: String, verifiers: [NoteVerifier], raw: [String]) {
        let info = try node.get("/v1/log")
        #expect(info.status == 200)
        let origin = try #require(info.json?["origin"]?.stringValue)
        let raw = (info.json?["verifierKeys"]?.arrayValue ?? []).compactMap { $0["verifierKey"]?.stringValue }
        return (origin, try raw.map { try NoteVerifier(parsing: $0) }, raw)
    }


    func write(_ node: TestNode, _ name: String, _ bytes: [UInt8]) throws -> String {
        let path = node.directory.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func anAttestationIsProvablyInTheSignedLog() throws {
        let node = try TestNode(serveArguments: ["--checkpoint-interval", "1"])
        let attested = try node.post("/api/attest", try freshBundle("log-1"), key: node.apiKey)
        #expect(attested.status == 200)
        let index = try #require(attested.json?["ledger"]?["index"]?.numberValue.map { Int64($0) })
        let proofURL = try #require(attested.json?["ledger"]?["inclusionProofUrl"]?.stringValue)
        #expect(proofURL.hasSuffix("/v1/log/proof/inclusion?index=\(index)"))
        let (origin, verifiers, rawKeys) = try logKeys(node)
        #expect(origin == "evidence-ledger/evidence-ledger-node" && verifiers.count == 1)

        // JSON form, against the first checkpoint that covers the entry.
        let proof = try eventually("a covering checkpoint") { () -> JSONValue? in
            let r = try node.get("/v1/log/proof/inclusion?index=\(index)")
            return r.status == 200 ? r.json : nil
        }
        let note = Array(try #require(proof["checkpoint"]?.stringValue).utf8)
        let checkpoint = try Checkpoint.open(note, origin: origin, verifiers: verifiers)
        #expect(Int64(checkpoint.size) == Int64(proof["treeSize"]!.numberValue!) && Int64(checkpoint.size) > index)

        // The leaf, recomputed by the client from the entry's bytes, matches the attestation response.
        let entry = try node.get("/v1/log/entries/\(index)", key: node.apiKey)
        #expect(entry.status == 200)
        let leafData = try #require(entry.json?["leafData"]?.stringValue.flatMap(Base64.decode))
        let leaf = Merkle.leafHash(leafData)
        #expect(Hex.encode(leaf) == attested.json?["ledger"]?["leafHash"]?.stringValue)
        let path = (proof["proof"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(Base64.decode) }
        #expect(Merkle.verifyInclusion(index: Int(index), size: Int(checkpoint.size), leafHash: leaf, proof: path, root: checkpoint.rootHash))

        // Text form (c2sp.org/tlog-proof), checked here and by the CLI.
        let text = try node.get("/v1/log/proof/inclusion?index=\(index)", headers: [("Accept", "text/plain")])
        #expect(text.status == 200 && text.header("content-type")?.hasPrefix("text/plain") == true)
        let tlog = try TlogProof(parsing: text.body)
        #expect(try tlog.verify(leafHash: leaf, origin: origin, verifiers: verifiers) == checkpoint)
        let proofFile = try write(node, "entry.tlog-proof", text.body)
        let entryFile = try write(node, "entry.json", entry.body)
        let ok = try node.cli(["proof", "verify", "--key", rawKeys[0], "--proof", proofFile, "--entry", entryFile])
        #expect(ok.status == 0 && ok.stdout.hasPrefix("VERIFIED: entry \(index) is in the tree"), "\(ok)")
        var lines = text.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.count > 3, Base64.decode(lines[2])?.count == 32 {
            var hash = Base64.decode(lines[2])!
            hash[0] ^= 1
            lines[2] = Base64.encode(hash)
            let bad = try node.cli([
                "proof", "verify", "--key", rawKeys[0], "--proof", try write(node, "bad.tlog-proof", Array(lines.joined(separator: "\n").utf8)),
                "--entry", entryFile,
            ])
            #expect(bad.status == 1 && bad.stdout.hasPrefix("NOT VERIFIED"), "\(bad)")
        }
        let stranger = NoteVerifier(name: origin, publicKey: Ed25519SigningKey(seed: [UInt8](repeating: 9, count: 32))!.publicKey).encoded
        let wrongKey = try node.cli(["proof", "verify", "--key", stranger, "--proof", proofFile, "--entry", entryFile])
        #expect(wrongKey.status == 1 && wrongKey.stdout.contains("no signature from a trusted key"), "\(wrongKey)")
        let garbage = try node.cli(["proof", "verify", "--key", rawKeys[0], "--proof", try write(node, "garbage", Array("nonsense".utf8))])
        #expect(garbage.status == 2 && garbage.stderr.contains("neither a tlog-proof"), "\(garbage)")

        // The latest checkpoint as a note, and the history.
        let latest = try node.get("/v1/log/checkpoint")
        #expect(latest.status == 200)
        #expect(try Checkpoint.open(latest.body, origin: origin, verifiers: verifiers).size >= checkpoint.size)
        let history = try node.get("/v1/log/checkpoints?after=0")
        #expect((history.json?["checkpoints"]?.arrayValue ?? []).contains { $0["size"]?.numberValue == Double(checkpoint.size) })

        // Who may read an entry: key events are public; an account's entries need its key or the admin secret.
        #expect(try node.get("/v1/log/entries/0").status == 200)
        #expect(try node.get("/v1/log/entries/\(index)").status == 404)
        let other = try node.createAccount("beta")
        #expect(try node.get("/v1/log/entries/\(index)", key: other).status == 404)
        #expect(try node.get("/v1/log/entries/\(index)", headers: [("X-Admin-Secret", node.adminToken)]).status == 200)
        #expect(try node.get("/v1/log/entries/\(index)", headers: [("X-Admin-Secret", "wrong-secret-wrong-secret")]).status == 401)

        // Bad requests are 400s that say what is wrong; nothing is a 500.
        for bad in [
            "/v1/log/proof/inclusion", "/v1/log/proof/inclusion?index=-1", "/v1/log/proof/inclusion?index=01",
            "/v1/log/proof/inclusion?index=0&size=999999", "/v1/log/proof/inclusion?index=5&size=5",
            "/v1/log/proof/consistency?from=0&to=1", "/v1/log/proof/consistency?from=3&to=2", "/v1/log/proof/consistency?from=1",
            "/v1/log/proof/consistency?from=1&to=99999999999999999999", "/v1/log/entries/abc",
        ] {
            let r = try node.get(bad)
            #expect(r.status == 400 && r.errorCode == "INVALID_REQUEST", "\(bad): \(r.status) \(r.text)")
        }
        #expect(try node.get("/v1/log/entries/424242").status == 404)
    }

    @Test func twoServersAppendingConcurrentlyKeepOneConsistentTree() throws {
        let node = try TestNode(serveArguments: ["--checkpoint-interval", "1"])
        let (second, secondPort) = try node.launch(["--checkpoint-interval", "1"])
        defer {
            second.send(SIGTERM)
            _ = second.exitCode
        }
        let ports = [node.port, secondPort]
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for i in 0..<40 {
                let port = ports[(worker + i) % 2]
                let r = try? RawHTTP.post(port: port, "/api/attest", json: try freshBundle("two-\(worker)-\(i)"), key: node.apiKey)
                if r?.status != 200 { failures.withLock { $0 += 1 } }
                if i % 10 == 0 { usleep(300_000) }  // let both checkpointers sign along the way
            }
        }
        #expect(failures.withLock { $0 } == 0)
        let size = try node.ledgerSize()
        #expect(size == 161)  // the key activation and 160 attestations
        _ = try node.post("/v1/admin/log/checkpoint", [], headers: [("X-Admin-Secret", node.adminToken)])
        let (origin, verifiers, _) = try logKeys(node)
        let checkpoints = try #require(try node.get("/v1/log/checkpoints?limit=1000").json?["checkpoints"]?.arrayValue)
        let opened = try checkpoints.map { c in try Checkpoint.open(Array(c["note"]!.stringValue!.utf8), origin: origin, verifiers: verifiers) }
        #expect(opened.count >= 3 && opened.last?.size == UInt64(size))
        for (a, b) in zip(opened, opened.dropFirst()) where a.size >= 1 {
            let port = ports[Int(a.size) % 2]
            let r = try RawHTTP.get(port: port, "/v1/log/proof/consistency?from=\(a.size)&to=\(b.size)", headers: [("Accept", "text/plain")])
            #expect(r.status == 200)
            let proof = try ConsistencyProofText(parsing: r.body)
            #expect(throws: Never.self, "\(a.size) → \(b.size)") { try proof.verify(old: a, new: b) }
        }
        let audit = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(audit.status == 0 && audit.stdout.contains("\(opened.count) checkpoints") && audit.stdout.contains("INTACT"), "\(audit.stdout)")
    }

    @Test func duringARotationCheckpointsAreSignedByTheOldAndTheNewKey() throws {
        let node = try TestNode(serveArguments: ["--checkpoint-interval", "1"])
        #expect(try node.cli(["keys", "rotate", "--overlap", "30"] + node.keyArguments).status == 0)
        #expect(FileManager.default.fileExists(atPath: node.keysDirectory + "/k1.key"), "kept for the overlap, to co-sign")
        // The server re-reads the keys every second; then it signs new checkpoints with both.
        let (origin, verifiers) = try eventually("both keys published") { () -> (String, [NoteVerifier])? in
            let k = try logKeys(node)
            return k.verifiers.count == 2 ? (k.origin, k.verifiers) : nil
        }
        var round = 0
        let note = try eventually("a checkpoint signed by both keys") { () -> [UInt8]? in
            round += 1
            _ = try node.post("/api/attest", try freshBundle("rotation-\(round)"), key: node.apiKey)  // the tree grows
            let r = try node.post("/v1/admin/log/checkpoint", [], headers: [("X-Admin-Secret", node.adminToken)])
            guard r.status == 200, let text = r.json?["note"]?.stringValue else { return nil }
            let bytes = Array(text.utf8)
            return (try? SignedNote(parsing: bytes))?.verify(with: verifiers).verified.count == 2 ? bytes : nil
        }
        // Either key alone is enough to trust it.
        for v in verifiers { #expect(throws: Never.self) { try Checkpoint.open(note, origin: origin, verifiers: [v]) } }
        // With a 1 s overlap the retired key's file is destroyed once the overlap ends.
        #expect(try node.cli(["keys", "rotate", "--overlap", "1"] + node.keyArguments).status == 0)
        _ = try eventually("k2's file destroyed after its overlap") { () -> Bool? in
            FileManager.default.fileExists(atPath: node.keysDirectory + "/k2.key") ? nil : true
        }
    }
}
