import CERKit
import Foundation
import LedgerCore
import LedgerTesting
import Testing

/// Per-checkpoint RFC 3161 timestamps from a real authority (`openssl ts -reply` behind HTTP on loopback).
@Suite(.blockingIO) struct TimestampTests {

    func stamps(_ node: TestNode) throws -> Int { Int(try node.scalar("SELECT count(*) FROM ledger_entries WHERE type = 'checkpoint.timestamped'") ?? "0") ?? 0 }

    @Test func checkpointsAreTimestampedByARealAuthorityWhichTheAuditAndOpenSSLVerify() throws {
        let tsa = try TimestampAuthority()
        let url = try tsa.serve()
        let node = try TestNode(serveArguments: ["--checkpoint-interval", "1", "--tsa-url", url, "--tsa-roots", tsa.rootPath])
        let first = try node.post("/api/attest", try freshBundle("stamped-1"), key: node.apiKey)
        let attested = try #require(first.json?["ledger"]?["index"]?.numberValue.map { Int($0) })
        // The timestamp of a checkpoint that covers the attestation (an earlier one may cover only the key).
        let index = try eventually("a checkpoint timestamp covering the attestation") {
            try node.scalar("""
                SELECT min(idx) FROM ledger_entries WHERE type = 'checkpoint.timestamped' AND (body::jsonb->>'size')::bigint > \(attested)
                """).flatMap { Int($0) }
        }
        let entry = try node.get("/v1/log/entries/\(index)")
        #expect(entry.status == 200, "checkpoint evidence is public")
        let body = try #require(entry.json?["body"])
        let size = try #require(body["size"]?.numberValue.map { Int($0) })
        #expect(entry.json?["subject"]?.stringValue == "checkpoint:\(size)" && body["tsa"]?.stringValue == url)
        // The token (the entry's payload) is over SHA-256 of the stored note, computed here with openssl.
        let note = try #require(try node.scalar("SELECT note FROM ledger_checkpoints WHERE tree_size = \(size)"))
        let noteFile = node.directory.appendingPathComponent("note-\(size)").path
        try Data(note.utf8).write(to: URL(fileURLWithPath: noteFile))
        let digest = try TimestampAuthority.openssl(["dgst", "-sha256", "-r", noteFile], in: node.directory).prefix(64)
        #expect(body["noteSha256"]?.stringValue == String(digest))
        let tokenHex = try #require(try node.scalar(
            "SELECT encode(p.content, 'hex') FROM ledger_entries e JOIN ledger_payloads p ON p.digest = e.payload_digest WHERE e.idx = \(index)"))
        let token = try #require(Hex.decode(tokenHex))
        #expect(try tsa.opensslVerifies(reply: token, sha256: try #require(Hex.decode(String(digest)))))
        // Provenance links the record to the first timestamped checkpoint that covers it, with its inclusion proof.
        let hash = try #require(first.json?["certificateHash"]?.stringValue)
        let evidence = try #require(node.get("/v1/provenance/\(hash)", key: node.apiKey).json?["records"]?[0]?["trustedTimestamps"]?.arrayValue)
        let viaCheckpoint = try #require(evidence.first { $0["scope"] == "checkpoint" }, "\(evidence)")
        let coveringNote = try #require(viaCheckpoint["checkpoint"]?["note"]?.stringValue)
        let covering = try Checkpoint(parsing: try SignedNote(parsing: Array(coveringNote.utf8)).text)
        let path = (viaCheckpoint["inclusionProof"]?["proof"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(Base64.decode) }
        let leaf = try #require(viaCheckpoint["inclusionProof"]?["leafHash"]?.stringValue.flatMap(Base64.decode))
        #expect(Merkle.verifyInclusion(index: attested, size: Int(covering.size), leafHash: leaf, proof: path, root: covering.rootHash))
        let coveringFile = node.directory.appendingPathComponent("covering-note").path
        try Data(coveringNote.utf8).write(to: URL(fileURLWithPath: coveringFile))
        let coveringDigest = try TimestampAuthority.openssl(["dgst", "-sha256", "-r", coveringFile], in: node.directory).prefix(64)
        let coveringToken = try #require(viaCheckpoint["token"]?.stringValue.flatMap(Base64.decode))
        #expect(try tsa.opensslVerifies(reply: coveringToken, sha256: try #require(Hex.decode(String(coveringDigest)))))
        let audit = try node.cli(["ledger", "verify", "--tsa-roots", tsa.rootPath] + node.keyArguments)
        #expect(audit.status == 0 && audit.stdout.contains("checkpoint timestamps"), "\(audit)")
        #expect(!audit.stdout.contains(" 0 checkpoint timestamps"), "\(audit)")
        // Against other roots the same tokens fail the audit.
        let stranger = try TimestampAuthority()
        let refused = try node.cli(["ledger", "verify", "--tsa-roots", stranger.rootPath] + node.keyArguments)
        #expect(refused.status == 1 && refused.stdout.contains("does not verify: TSA_UNTRUSTED"), "\(refused)")

        // An idle log: the timestamp entries make new checkpoints, which are not timestamped in turn.
        let settled = try stamps(node)
        usleep(3_000_000)
        #expect(try stamps(node) == settled, "no churn on an idle log")

        // The authority goes away: attestations and checkpoints go on; the timestamp follows once it is back.
        let port = try #require(URL(string: url)?.port)
        tsa.stopServing()
        #expect(try node.post("/api/attest", try freshBundle("stamped-2"), key: node.apiKey).status == 200)
        usleep(2_500_000)
        #expect(try stamps(node) == settled)
        try tsa.serve(port: port)
        _ = try eventually("a timestamp after the authority is back") { try stamps(node) > settled ? true : nil }
        let again = try node.cli(["ledger", "verify", "--tsa-roots", tsa.rootPath] + node.keyArguments)
        #expect(again.status == 0, "\(again)")
    }

    @Test func recordsAreTimestampedAsNexArtDoesAndLateWhenTheAuthorityWasAway() throws {
        let tsa = try TimestampAuthority()
        let url = try tsa.serve()
        let node = try TestNode(serveArguments: [
            "--checkpoint-interval", "1", "--tsa-url", url, "--tsa-roots", tsa.rootPath, "--timestamps", "records",
        ])
        let bundle = try freshBundle("record-stamp-1")
        let attested = try node.post("/api/attest", bundle, key: node.apiKey)
        #expect(attested.status == 200, "\(attested.text)")
        let response = try #require(attested.json)
        #expect(response["timestamp"]?["type"] == "rfc3161" && response["timestamp"]?["provider"] == "127.0.0.1")
        #expect(response["receipt"]?["timestampType"] == "rfc3161")
        // The token verifies with openssl over the certificate hash's digest, and with our verifier.
        let hash = try #require(response["certificateHash"]?.stringValue)
        let token = try #require(response["timestamp"]?["token"]?.stringValue.flatMap(Base64.decode))
        #expect(try tsa.opensslVerifies(reply: token, sha256: try #require(Hex.decode(String(hash.dropFirst(7))))))
        let manifest = try node.get("/.well-known/nexart-node.json")
        let manifestFile = node.directory.appendingPathComponent("manifest.json").path
        try Data(manifest.body).write(to: URL(fileURLWithPath: manifestFile))
        let packageFile = node.directory.appendingPathComponent("package.json").path
        var pkg = try #require(package(cer: try JSONParser.parse(bundle), response: response).objectValue)
        pkg["timestamp"] = response["timestamp"]
        try Data(try CanonicalJSON.encode(.object(pkg))).write(to: URL(fileURLWithPath: packageFile))
        let verified = try node.cli(["verify", "--keys", manifestFile, "--tsa-roots", tsa.rootPath, "--require-receipt", packageFile])
        #expect(verified.status == 0 && verified.stdout.contains("RFC 3161 token verified"), "\(verified)")
        #expect(try node.scalar("SELECT count(*) FROM ledger_entries WHERE type = 'cer.timestamped' AND subject = 'cer:\(hash)'") == "1")
        // A replay asks the authority for nothing (its serial counter does not move) and answers the same token.
        let serial = try String(contentsOf: tsa.directory.appendingPathComponent("tsaserial"), encoding: .utf8)
        let replay = try node.post("/api/attest", bundle, key: node.apiKey)
        #expect(replay.status == 200 && replay.json?["timestamp"]?["token"] == response["timestamp"]?["token"])
        #expect(try String(contentsOf: tsa.directory.appendingPathComponent("tsaserial"), encoding: .utf8) == serial)
        let audit = try node.cli(["ledger", "verify", "--tsa-roots", tsa.rootPath] + node.keyArguments)
        #expect(audit.status == 0 && audit.stdout.contains(", 1 record timestamps"), "\(audit)")

        // The authority is away: the attestation goes ahead node-issued; the token follows as an entry.
        let port = try #require(URL(string: url)?.port)
        tsa.stopServing()
        let late = try node.post("/api/attest", try freshBundle("record-stamp-2"), key: node.apiKey)
        #expect(late.status == 200 && late.json?["timestamp"]?["type"] == "node-issued" && late.json?["receipt"]?["timestampType"] == "node-issued")
        let lateHash = try #require(late.json?["certificateHash"]?.stringValue)
        #expect(try node.scalar("SELECT count(*) FROM ledger_entries WHERE type = 'cer.timestamped' AND subject = 'cer:\(lateHash)'") == "0")
        // The queue outlives the server: stopped before the authority is back, it still stamps the record after a restart.
        #expect(try node.scalar("SELECT count(*) FROM ledger_timestamp_queue WHERE subject = 'cer:\(lateHash)'") == "1")
        node.stop()
        try tsa.serve(port: port)
        try node.start(["--checkpoint-interval", "1", "--tsa-url", url, "--tsa-roots", tsa.rootPath, "--timestamps", "records"])
        _ = try eventually("the late token") {
            try node.scalar("SELECT count(*) FROM ledger_entries WHERE type = 'cer.timestamped' AND subject = 'cer:\(lateHash)'") == "1" ? true : nil
        }
        // The row leaves the queue just after the token's entry is appended.
        _ = try eventually("the queue drained") { try node.scalar("SELECT count(*) FROM ledger_timestamp_queue") == "0" ? true : nil }
        // Resolve and provenance list both per-record tokens, each with its ledger entry.
        let provenance = try #require(node.get("/v1/provenance/\(lateHash)", key: node.apiKey).json)
        let stamps = provenance["records"]?[0]?["trustedTimestamps"]?.arrayValue ?? []
        #expect(stamps.count == 1 && stamps[0]["scope"] == "record" && stamps[0]["token"]?.stringValue?.isEmpty == false, "\(stamps)")
        let given = try #require(node.get("/v1/provenance/\(hash)", key: node.apiKey).json?["records"]?[0]?["trustedTimestamps"]?.arrayValue)
        #expect(given.filter { $0["scope"] == "record" }.count == 1, "the token given with the attestation is listed once: \(given)")
        // Erasing a record erases its bundle, not its timestamp tokens: they are over the hash, and still verify.
        #expect(try node.post("/v1/records/\(hash)/deletion", json: [:], key: node.apiKey).status == 202)
        #expect(try node.cli(["retention", "run", "--database-url", node.conninfo, "--floor-days", "0"]).stdout.contains("erased 1 records (1 payloads)"))
        let erased = try node.cli(["ledger", "verify", "--tsa-roots", tsa.rootPath, "--retention-floor-days", "0"] + node.keyArguments)
        #expect(erased.status == 0 && erased.stdout.contains(", 2 record timestamps"), "\(erased)")
    }
}
