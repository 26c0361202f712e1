import CERKit
import Testing
@testable import LedgerCore

/// An anchor's receipt from another node's `/api/stamp-hash`, in every shape NexArt's client reads
/// (PROTOCOL.md §5: the stamp at the top level or under attestation, stamp or data; signatureB64Url or
/// signature; attestorKeyId or kid).
@Suite struct AnchorReceiptTests {
    static let key = Ed25519SigningKey(seed: Array(repeating: 42, count: 32))!
    static let note = Array("example.org/log\n3\nAAAA\n\n— example.org/log AAAAAA==\n".utf8)
    static var hash: String { AnchorReceipt.anchoredHash(note: note) }
    static var manifest: NodeKeyManifest { AnchorReceipt.manifest(kid: "k1", publicKey: key.publicKey) }

    static func stamp(hash: String = hash, kidMember: String = "kid", signatureMember: String = "signature") throws -> JSONObject {
        let receipt: JSONValue = [
            "certificateHash": .string(JSONString(hash)), "timestamp": "2026-12-02T10:00:00.000Z", "nodeId": "other", "kid": "k1",
            "protocolVersion": "1.2.0",
        ]
        var o = JSONObject()
        o["receipt"] = receipt
        o[signatureMember] = .string(JSONString(try ReceiptSignature.sign(receipt, with: key)))
        o[kidMember] = "k1"
        o["attestationId"] = "a-1"
        return o
    }

    @Test func everyShapeVerifiesAndNamesItsKey() throws {
        #expect(Self.hash == "sha256:" + Hex.encode(ProtocolHash.sha256(Self.note)))
        let flat = JSONValue.object(try Self.stamp())
        let shapes: [JSONValue] = [
            flat, ["attestation": .object(try Self.stamp(kidMember: "attestorKeyId", signatureMember: "signatureB64Url"))],
            ["stamp": flat], ["data": flat],
        ]
        for shape in shapes {
            let verified = try AnchorReceipt.verify(reply: shape.compactBytes(), hash: Self.hash, manifest: Self.manifest)
            #expect(verified.kid == "k1" && verified.publicKey == Self.key.publicKey && verified.attestationId == "a-1")
        }
    }

    @Test func aReceiptOverAnotherHashOrByAnotherKeyIsRefused() throws {
        let other = try Self.stamp(hash: "sha256:" + String(repeating: "0", count: 64))
        #expect(throws: AnchorReceipt.Failure.self) {
            try AnchorReceipt.verify(reply: JSONValue.object(other).compactBytes(), hash: Self.hash, manifest: Self.manifest)
        }
        let stranger = AnchorReceipt.manifest(kid: "k1", publicKey: Ed25519SigningKey(seed: Array(repeating: 1, count: 32))!.publicKey)
        #expect(throws: AnchorReceipt.Failure.self) {
            try AnchorReceipt.verify(reply: JSONValue.object(try Self.stamp()).compactBytes(), hash: Self.hash, manifest: stranger)
        }
        // No fallback to another key of the manifest when the kid is unknown.
        let renamed = AnchorReceipt.manifest(kid: "k2", publicKey: Self.key.publicKey)
        #expect(throws: AnchorReceipt.Failure.self) {
            try AnchorReceipt.verify(reply: JSONValue.object(try Self.stamp()).compactBytes(), hash: Self.hash, manifest: renamed)
        }
        #expect(throws: AnchorReceipt.Failure.self) { try AnchorReceipt.verify(reply: Array("[]".utf8), hash: Self.hash, manifest: Self.manifest) }
    }
}
