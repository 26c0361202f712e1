import CERKit
import Foundation
import Testing
import LedgerTesting

@Suite(.blockingIO) struct KeyRotationTests {
    @Test func receiptsIssuedBeforeARotationStillVerifyAfterIt() throws {
        let node = try TestNode()
        let bundle = try freshBundle("before-rotation")
        let before = try node.post("/api/attest", bundle, key: node.apiKey)
        #expect(before.status == 200)
        #expect(before.json?["kid"] == "k1")

        let rotated = try node.cli(["keys", "rotate", "--overlap", "30"] + node.keyArguments)
        #expect(rotated.status == 0, "\(rotated.stderr)")
        #expect(FileManager.default.fileExists(atPath: node.keysDirectory + "/k1.key"), "kept until the overlap ends, to co-sign checkpoints")
        // The server re-reads the key events every second.
        var after: HTTPResult? = nil
        for i in 0..<40 {
            usleep(250_000)
            let r = try node.post("/api/attest", try freshBundle("after-rotation-\(i)"), key: node.apiKey)
            if r.json?["kid"] == "k2" {
                after = r
                break
            }
        }
        let newer = try #require(after, "the server never switched to k2")
        let manifest = try node.manifest()
        #expect(manifest.activeKid == "k2")
        #expect(manifest.keys.map(\.kid) == ["k1", "k2"])
        #expect(manifest.keys[0].status == "deprecated")
        let old = ArtifactVerifier.verify(
            package(cer: try JSONParser.parse(bundle), response: before.json!), options: VerificationOptions(keys: manifest, requireAttestation: true))
        #expect(old.isVerified, "\(old.json().compactText())")
        #expect(newer.json?["receipt"]?["attestorKeyId"] == "k2")

        // Revocation is different: nothing the key signed is trusted any more.
        #expect(try node.cli(["keys", "revoke", "k1"] + node.keyArguments).status == 0)
        var published = try node.manifest()
        for _ in 0..<40 where published.keys.first?.isRevoked != true {
            usleep(250_000)
            published = try node.manifest()
        }
        let revoked = ArtifactVerifier.verify(
            package(cer: try JSONParser.parse(bundle), response: before.json!), options: VerificationOptions(keys: published))
        #expect(revoked.nodeSignature.code == .keyRevoked)
        // Key lifecycle changes are ledger events.
        #expect(try node.scalar("SELECT string_agg(type, ',' ORDER BY idx) FROM ledger_entries WHERE subject LIKE 'key:%'")
            == "key.activated,key.retired,key.activated,key.revoked")
        #expect(try node.cli(["keys", "generate"] + node.keyArguments).status == 1, "a second active key is refused")
    }

    @Test func privateKeyFilesAreOwnerOnly() throws {
        let node = try TestNode()
        let attributes = try FileManager.default.attributesOfItem(atPath: node.keysDirectory + "/k1.key")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // A key file others can read is refused with a sentence.
        chmod(node.keysDirectory + "/k1.key", 0o644)
        node.stop()
        let r = try node.cli(["serve", "--port", "0"] + node.keyArguments)
        #expect(r.status != 0)
        #expect(r.stderr.contains("chmod 600") || r.stdout.contains("chmod 600"), "\(r.stderr)")
    }
}
