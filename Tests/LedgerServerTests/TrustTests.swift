import CERKit
import Foundation
import LedgerCore
import LedgerProcesses
import LedgerStore
import LedgerTesting
import Testing

/// Trust that does not rest on the database: key events count only when authorised, checkpoints only
/// with a key valid for them, and the log's growth is remembered outside the database.
@Suite(.blockingIO) struct TrustTests {

    /// Appends `request` the way someone holding only the database credentials can: straight through the
    /// store, as the application role.
    func appendDirectly(_ node: TestNode, _ request: AppendRequest) async throws -> LedgerEntry {
        let pool = TestDatabase.pool(node.conninfo, connections: 2)
        defer { Task { await pool.shutdown() } }
        return try await PostgresEventLog(pool: pool).append(request).entry
    }

    func write(_ node: TestNode, _ name: String, _ bytes: [UInt8]) throws -> String {
        let path = node.directory.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func keyEventsAppendedDirectlyThroughTheStoreAreIgnoredAndReported() async throws {
        let node = try TestNode()
        let rogue = Ed25519SigningKey(seed: [UInt8](repeating: 66, count: 32))!
        // A rogue key, well formed (even with a proof of possession), and an unsigned revocation of k1 that
        // would leave the node without a key (503 NO_ACTIVE_KEY everywhere).
        let activation = try await appendDirectly(node, AppendRequest(
            subject: "key:k9", type: "key.activated",
            body: NodeKeyHistory.activationBody(kid: "k9", key: rogue, validFrom: PostgresEventLog.wallClock(), nodeId: "evidence-ledger-node")))
        let revocation = try await appendDirectly(node, AppendRequest(
            subject: "key:k1", type: "key.revoked", body: ["kid": "k1", "revokedAt": "2026-01-01T00:00:00.000Z", "reason": "gone"]))
        usleep(2_500_000)  // two key refreshes
        let manifest = try node.manifest()
        #expect(manifest.activeKid == "k1" && manifest.keys.map(\.kid) == ["k1"] && !manifest.keys[0].isRevoked)
        let attested = try node.post("/api/attest", try freshBundle("after-rogue-keys"), key: node.apiKey)
        #expect(attested.status == 200 && attested.json?["kid"] == "k1", "\(attested.text)")
        #expect(try node.get("/metrics").text.contains("ledger_unauthorised_key_events 2"))
        let err = try String(contentsOfFile: node.directory.appendingPathComponent("serve.err").path, encoding: .utf8)
        #expect(err.contains("unauthorised key event ignored") && err.contains("entry \(activation.index): key.activated of k9"), "\(err)")

        // Offline, from the key events and the pin alone, the receipt verifies; with another pin it cannot.
        let history = try node.get("/v1/log/keys")
        #expect(history.status == 200 && (history.json?["ignored"]?.arrayValue?.count ?? 0) == 2, "\(history.text)")
        let historyFile = try write(node, "keys.json", history.body)
        let packageFile = try write(
            node, "package.json", try CanonicalJSON.encode(package(cer: try JSONParser.parse(try freshBundle("after-rogue-keys")), response: attested.json!)))
        let pin = try #require(try String(contentsOfFile: node.keysDirectory + "/trust", encoding: .utf8)
            .split(separator: "\n").first { $0.hasPrefix("pinned ") }.map { String($0.dropFirst(7)) })
        let offline = try node.cli(["verify", "--require-receipt", "--key-history", historyFile, "--pinned-key", pin, packageFile])
        #expect(offline.status == 0, "\(offline)")
        #expect(offline.stderr.contains("entry \(activation.index): key.activated of k9 is ignored"), "\(offline.stderr)")
        let otherPin = KeyFingerprint.of(rogue.publicKey)
        let wrongPin = try node.cli(["verify", "--require-receipt", "--key-history", historyFile, "--pinned-key", otherPin, packageFile])
        #expect(wrongPin.status == 1, "the rogue key pinned authorises only itself, not k1: \(wrongPin)")

        let listed = try node.cli(["keys", "list"] + node.keyArguments)
        #expect(listed.status == 0 && listed.stdout.contains("k1  active"), "\(listed)")
        #expect(listed.stdout.contains("UNAUTHORISED: entry \(activation.index): key.activated of k9 is ignored"), "\(listed.stdout)")
        #expect(listed.stdout.contains("UNAUTHORISED: entry \(revocation.index): key.revoked of k1 is ignored"), "\(listed.stdout)")

        let audit = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(audit.status == 1, "\(audit)")
        #expect(audit.stdout.contains("entry \(activation.index): key.activated of k9 is not authorised"), "\(audit.stdout)")
        #expect(audit.stdout.contains("entry \(revocation.index): key.revoked of k1 is not authorised"), "\(audit.stdout)")
        // An auditor without the pin cannot authorise anything, and is told so.
        let unpinned = try node.cli(["ledger", "verify", "--database-url", node.conninfo, "--keys-dir", node.directory.path])
        #expect(unpinned.status == 1 && unpinned.stdout.contains("no trust anchor is configured"), "\(unpinned)")
    }

    @Test func aCheckpointSignedByARevokedKeyFailsTheAuditUntilAValidOneProvesTheSameEntries() throws {
        let node = try TestNode(serveArguments: ["--checkpoint-interval", "3600"])
        let admin = [("X-Admin-Secret", node.adminToken)]
        #expect(try node.post("/api/attest", try freshBundle("revoked-1"), key: node.apiKey).status == 200)
        let first = try node.post("/v1/admin/log/checkpoint", [], headers: admin)
        let firstSize = try #require(first.json?["size"]?.numberValue.map { Int($0) })
        let intact = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(intact.status == 0 && intact.stdout.contains("INTACT"), "\(intact)")

        #expect(try node.cli(["keys", "rotate", "--overlap", "10"] + node.keyArguments).status == 0)
        let rotated = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(rotated.status == 0, "a retired key's checkpoints over entries before its retirement still count: \(rotated)")
        // Revoked (signed by the active k2): nothing k1 signed counts, and nothing later proves those entries.
        let revoke = try node.cli(["keys", "revoke", "k1"] + node.keyArguments)
        #expect(revoke.status == 0, "\(revoke)")
        let audit = try node.cli(["ledger", "verify", "--format", "json"] + node.keyArguments)
        #expect(audit.status == 1, "\(audit)")
        let problems = (try JSONParser.parse(Array(audit.stdout.utf8))["problems"]?.arrayValue ?? []).compactMap { $0["what"]?.stringValue }
        // (Every checkpoint before the rotation: the one just signed and the server's first.)
        #expect(problems.contains { $0.hasPrefix("checkpoint \(firstSize): ") }, "\(problems)")
        #expect(!problems.isEmpty && problems.allSatisfy { $0.hasSuffix(": it is signed only by k1, which is revoked, and no later checkpoint by a valid key proves its entries") }, "\(problems)")

        // A checkpoint by k2 over the same entries and more: the log is proven again; the old one is a warning.
        _ = try eventually("k2 to sign") { () -> Bool? in
            let r = try node.post("/v1/admin/log/checkpoint", [], headers: admin)
            return r.status == 200 ? true : nil
        }
        let proven = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(proven.status == 0 && proven.stdout.contains("WARNING: checkpoint \(firstSize): it is signed only by k1, which is revoked; checkpoint "), "\(proven)")
    }

    @Test func aRolledBackLogIsFoundWithATrustedCheckpointAndTheServerRefusesToStart() throws {
        let node = try TestNode(serveArguments: ["--checkpoint-interval", "1"])
        for i in 0..<6 { #expect(try node.post("/api/attest", try freshBundle("rollback-\(i)"), key: node.apiKey).status == 200) }
        let signed = try node.post("/v1/admin/log/checkpoint", [], headers: [("X-Admin-Secret", node.adminToken)])
        #expect(signed.status == 200)
        let auditorCopy = try write(node, "auditor.checkpoint", try node.get("/v1/log/checkpoint").body)
        let size = try node.ledgerSize()
        #expect(size == 7)
        node.stop()

        // Someone with the database's superuser removes the last three entries and everything that grew
        // with them, and rolls the head back: every table stays self-consistent.
        let keep = size - 3
        try TestDatabase.superuser(node.conninfo, """
            SET session_replication_role = replica;
            DELETE FROM ledger_entries WHERE idx >= \(keep);
            DELETE FROM ledger_claims WHERE entry_idx >= \(keep);
            DELETE FROM ledger_tree_nodes WHERE (idx + 1) * (1::bigint << level) > \(keep);
            DELETE FROM ledger_checkpoints WHERE tree_size > \(keep);
            UPDATE ledger_head SET size = \(keep);
            """)
        // Nothing inside the database shows it.
        let blind = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(blind.status == 0 && blind.stdout.contains("INTACT"), "\(blind)")
        // A checkpoint held elsewhere does.
        let audit = try node.cli(["ledger", "verify", "--trusted-checkpoint", auditorCopy] + node.keyArguments)
        #expect(audit.status == 1, "\(audit)")
        #expect(audit.stdout.contains("the log has \(keep) entries but trusted checkpoint \(auditorCopy) shows it had \(size)"), "\(audit.stdout)")
        let fromState = try node.cli(["ledger", "verify", "--trusted-checkpoint", node.stateDirectory + "/latest-checkpoint"] + node.keyArguments)
        #expect(fromState.status == 1 && fromState.stdout.contains("shows it had \(size)"), "\(fromState)")
        // The server remembers what it signed, and refuses.
        do {
            try node.start()
            Issue.record("the server started on a rolled-back log")
        } catch {
            #expect("\(error)".contains("the database's log has \(keep) entries, but this server signed a checkpoint of \(size) entries"), "\(error)")
        }
        // A forged trusted checkpoint (not signed by the node's keys) is reported as such.
        let forged = try SignedNote.sign(
            text: Checkpoint(origin: "evidence-ledger/evidence-ledger-node", size: 2, rootHash: [UInt8](repeating: 1, count: 32)).text,
            signers: [try NoteSigner(name: "evidence-ledger/evidence-ledger-node", key: Ed25519SigningKey(seed: [UInt8](repeating: 5, count: 32))!)])
        let forgedAudit = try node.cli(["ledger", "verify", "--trusted-checkpoint", try write(node, "forged", forged)] + node.keyArguments)
        #expect(forgedAudit.stdout.contains("has no signature by an authorised node key"), "\(forgedAudit.stdout)")
        #expect(forgedAudit.stdout.contains("(2 entries): its root is not the root of the log's first 2 entries"), "\(forgedAudit.stdout)")
    }

    @Test func aRootKeyAdoptsOldEventsReplacesALostKeyAndEveryServerDestroysARevokedKeysFile() async throws {
        let node = try TestNode()
        let rootFile = node.directory.appendingPathComponent("root.key").path
        let made = try node.cli(["keys", "root", "generate", "--out", rootFile])
        #expect(made.status == 0, "\(made)")
        let fingerprint = try #require(made.stdout.split(separator: " ").first { $0.hasPrefix("ed25519:") }.map(String.init))
        #expect(KeyFingerprint.problem(fingerprint) == nil)
        // Key events written before they were signed (as milestone 1 wrote them) are adopted by the root.
        let legacyKey = Ed25519SigningKey(seed: [UInt8](repeating: 8, count: 32))!
        let legacy = try await appendDirectly(node, AppendRequest(subject: "key:k0", type: "key.activated", body: [
            "kid": "k0", "alg": "Ed25519", "publicKey": .string(JSONString(Base64.encodeURL(legacyKey.publicKey))),
            "validFrom": "2026-01-01T00:00:00.000Z", "nodeId": "evidence-ledger-node",
        ]))
        _ = try await appendDirectly(node, AppendRequest(subject: "key:k0", type: "key.retired", body: ["kid": "k0", "validTo": "2026-02-01T00:00:00.000Z"]))
        let adopt = try node.cli(["keys", "adopt", "--authorize-with", rootFile, "--root-key", fingerprint] + node.keyArguments)
        #expect(adopt.status == 0 && adopt.stdout.hasPrefix("adopted entries \(legacy.index), \(legacy.index + 1)\n"), "\(adopt)")
        let again = try node.cli(["keys", "adopt", "--authorize-with", rootFile, "--root-key", fingerprint] + node.keyArguments)
        #expect(again.status == 0 && again.stdout == "nothing to adopt\n", "\(again)")
        let adoptedList = try node.cli(["keys", "list", "--root-key", fingerprint] + node.keyArguments)
        #expect(adoptedList.stdout.contains("k0  deprecated") && !adoptedList.stdout.contains("UNAUTHORISED"), "\(adoptedList)")

        // A second server with its own copy of k1 and the root pinned by configuration.
        let otherKeys = node.directory.appendingPathComponent("other-keys").path
        try FileManager.default.createDirectory(atPath: otherKeys, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for file in ["k1.key", "trust"] { try FileManager.default.copyItem(atPath: node.keysDirectory + "/" + file, toPath: otherKeys + "/" + file) }

        // k1's file is lost here: rotating needs the retiring key, or the root.
        try FileManager.default.moveItem(atPath: node.keysDirectory + "/k1.key", toPath: node.directory.appendingPathComponent("k1.lost").path)
        let refused = try node.cli(["keys", "rotate"] + node.keyArguments)
        #expect(refused.status == 1 && refused.stderr.contains("the private key of k1 is not in"), "\(refused)")
        let unpinnedRoot = try node.cli(["keys", "rotate", "--authorize-with", rootFile] + node.keyArguments)
        #expect(unpinnedRoot.status == 1 && unpinnedRoot.stderr.contains("is not pinned here"), "\(unpinnedRoot)")
        let rotated = try node.cli(["keys", "rotate", "--overlap", "600", "--authorize-with", rootFile, "--root-key", fingerprint] + node.keyArguments)
        #expect(rotated.status == 0 && rotated.stdout.contains("authorised by root \(fingerprint)"), "\(rotated)")
        try FileManager.default.copyItem(atPath: node.keysDirectory + "/k2.key", toPath: otherKeys + "/k2.key")

        let (other, otherPort) = try node.launch(["--keys-dir", otherKeys, "--root-key", fingerprint])
        defer {
            other.send(SIGTERM)
            _ = other.exitCode
        }
        let r = try RawHTTP.post(port: otherPort, "/api/attest", json: try freshBundle("root-rotated"), key: node.apiKey)
        #expect(r.status == 200 && r.json?["kid"] == "k2", "\(r.text)")
        // Revoked with the root; the other server destroys its copy of k1 on its next refresh.
        #expect(FileManager.default.fileExists(atPath: otherKeys + "/k1.key"))
        let revoked = try node.cli(["keys", "revoke", "k1", "--authorize-with", rootFile, "--root-key", fingerprint] + node.keyArguments)
        #expect(revoked.status == 0, "\(revoked)")
        _ = try eventually("the other server to destroy k1.key") { FileManager.default.fileExists(atPath: otherKeys + "/k1.key") ? nil : true }
        // With the root pinned every key event is authorised (checkpoints k1 signed are now refused: it is revoked).
        let audit = try node.cli(["ledger", "verify", "--root-key", fingerprint] + node.keyArguments)
        #expect(!audit.stdout.contains("not authorised") && audit.stdout.contains("3 authorised keys"), "\(audit)")
        let withoutRoot = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(withoutRoot.status == 1 && withoutRoot.stdout.contains("which is not pinned"), "\(withoutRoot)")
    }

    @Test func keyFilesMustNotBeLinksOrInADirectoryOthersMayWrite() throws {
        let node = try TestNode()
        node.stop()
        let key = node.keysDirectory + "/k1.key"
        let moved = node.directory.appendingPathComponent("k1.real").path
        try FileManager.default.moveItem(atPath: key, toPath: moved)
        try FileManager.default.createSymbolicLink(atPath: key, withDestinationPath: moved)
        #expect(throws: (any Error).self) { try node.start() }
        #expect(try String(contentsOfFile: node.directory.appendingPathComponent("serve.err").path, encoding: .utf8).contains("is a symbolic link"))
        try FileManager.default.removeItem(atPath: key)
        try FileManager.default.moveItem(atPath: moved, toPath: key)
        chmod(node.keysDirectory, 0o777)
        #expect(throws: (any Error).self) { try node.start() }
        #expect(try String(contentsOfFile: node.directory.appendingPathComponent("serve.err").path, encoding: .utf8).contains("can be written by other users"))
        chmod(node.keysDirectory, 0o700)
        try node.start()
        #expect(try node.get("/.well-known/nexart-node.json").status == 200)
    }
}
