import LedgerTesting
import Testing
@testable import CERKit

/// Key manifests in every published format, fail-closed key selection, receipts and envelopes we sign.
@Suite struct KeyAndReceiptTests {
    static let seed0 = [UInt8](repeating: 7, count: 32)
    static let seed1 = Hex.decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")!

    static func key(_ kid: String, seed: [UInt8], status: String = "active", revoked: Bool = false, from: String? = nil, to: String? = nil) -> NodeKeyManifest.Key {
        NodeKeyManifest.Key(
            kid: kid, algorithm: "Ed25519", status: status, isRevoked: revoked, validFrom: from.flatMap(Timestamp.milliseconds),
            validTo: to.flatMap(Timestamp.milliseconds), publicKey: Ed25519SigningKey(seed: seed)!.publicKey, formatProblem: nil)
    }

    static func manifest(_ keys: [NodeKeyManifest.Key], nodeId: String = "node-test") throws -> NodeKeyManifest {
        // Round-trip through the published JSON so every encoding is exercised.
        let doc: JSONValue = ["nodeId": .string(JSONString(nodeId)), "activeKid": .string(JSONString(keys.last!.kid)), "keys": .array(keys.map { $0.manifestEntry() })]
        return try NodeKeyManifest(try JSONParser.parse(doc.compactText()))
    }

    @Test func everyPublishedEncodingDecodesToTheSameKey() throws {
        let entry = Self.key("k1", seed: Self.seed1).manifestEntry()
        #expect(entry["publicKeySpkiB64"]?.stringValue?.hasPrefix("MCowBQYDK2VwAyEA") == true)
        #expect(entry["publicKeyJwk"]?["x"] == entry["publicKey"])
        for only in ["publicKey", "publicKeyJwk", "publicKeySpkiB64"] {
            var o = entry.objectValue!.removing(Set(["publicKey", "publicKeyJwk", "publicKeySpkiB64"]).subtracting([only]))
            o["kid"] = "k1"
            let m = try NodeKeyManifest(["keys": [.object(o)]])
            #expect(m.keys[0].publicKey == Ed25519SigningKey(seed: Self.seed1)!.publicKey, "\(only)")
        }
        // Older docs put SPKI under publicKey.
        var legacy = JSONObject()
        legacy["kid"] = "k1"
        legacy["publicKey"] = entry["publicKeySpkiB64"]
        #expect(try NodeKeyManifest(["keys": [.object(legacy)]]).keys[0].publicKey != nil)
    }

    @Test func disagreeingEncodingsMakeTheKeyUnusable() throws {
        var o = Self.key("k1", seed: Self.seed1).manifestEntry().objectValue!
        o["publicKey"] = .string(JSONString(Base64.encodeURL(Ed25519SigningKey(seed: Self.seed0)!.publicKey)))
        let m = try NodeKeyManifest(["keys": [.object(o)]])
        guard case .rejected(let code, _) = m.select(kid: "k1", signedAt: nil) else { Issue.record("accepted"); return }
        #expect(code == .attestationKeyFormatUnsupported)
    }

    @Test func selectionFailsClosed() throws {
        let m = try Self.manifest([
            Self.key("old", seed: Self.seed0, status: "deprecated", from: "2025-01-01T00:00:00Z", to: "2025-12-31T23:59:59Z"),
            Self.key("bad", seed: Self.seed0, revoked: true),
            Self.key("k1", seed: Self.seed1, from: "2026-01-01T00:00:00Z"),
        ])
        func code(_ kid: String?, _ at: String?) -> CerVerifyCode? {
            if case .rejected(let c, _) = m.select(kid: kid, signedAt: at.flatMap(Timestamp.milliseconds)) { return c }
            return nil
        }
        #expect(code("k1", "2026-06-01T00:00:00Z") == nil)
        #expect(code("nope", "2026-06-01T00:00:00Z") == .attestationKeyNotFound)  // no fallback to activeKid
        #expect(code(nil, nil) == .attestationKeyNotFound)
        #expect(code("bad", nil) == .keyRevoked)
        #expect(code("old", "2025-06-01T00:00:00Z") == nil)  // deprecated keys still verify old receipts
        #expect(code("old", "2026-02-01T00:00:00Z") == .schemaKeyInvalid)
        #expect(code("k1", "2025-06-01T00:00:00Z") == .schemaKeyInvalid)
        #expect(code("k1", nil) == .schemaKeyInvalid)
    }

    static func certified(_ id: String = "exec-1") throws -> JSONObject {
        try CERBuilder.certifyDecision(CertifyParameters(
            executionId: id, timestamp: "2026-03-01T10:00:00.000Z", createdAt: "2026-03-01T10:00:01.000Z", provider: "openai",
            model: "gpt-4o", prompt: "Be brief.", input: "What is 2+2?", output: "4", parameters: ["temperature": 0, "maxTokens": 16]))
    }

    static func attested(_ cer: JSONObject, kid: String, seed: [UInt8], at: String = "2026-03-01T10:00:02.000Z") throws -> JSONObject {
        let key = Ed25519SigningKey(seed: seed)!
        let receipt = AttestationReceipt(
            attestationId: "att-1", attestedAt: at, attestorKeyId: kid, certificateHash: cer["certificateHash"]!.stringValue!,
            nodeId: "node-test", nodeRuntimeHash: AttestationReceipt.nodeRuntimeHash(instanceId: "i", node: "evidence-ledger", sdkVersion: "0", version: "0"),
            protocolVersion: "1.2.0")
        let (r, sig) = try receipt.signed(with: key)
        var attestation = JSONObject()
        for f in ["attestationId", "attestedAt", "nodeRuntimeHash", "protocolVersion"] { attestation[f] = r[f] }
        attestation["kid"] = .string(JSONString(kid))
        let (envelope, envSig) = try VerificationEnvelope.make(cer: cer, attestation: attestation, kid: kid, key: key)
        return CERPackage.make(cer: cer, receipt: r, signature: sig, verificationEnvelope: .object(envelope), verificationEnvelopeSignature: envSig)
    }

    @Test func receiptsAndEnvelopesWeSignVerifyWithOnlyTheManifest() throws {
        let package = try Self.attested(try Self.certified(), kid: "k1", seed: Self.seed1)
        let keys = try Self.manifest([Self.key("k1", seed: Self.seed1)])
        let report = ArtifactVerifier.verify(.object(package), options: .init(keys: keys))
        #expect(report.status == .verified)
        #expect(report.nodeSignature.status == .pass && report.receiptConsistency.status == .pass && report.verificationEnvelope.status == .pass)
        #expect(package["signature"]?.stringValue?.count == 86)
    }

    @Test func receiptSignedBeforeRotationStillVerifiesAfterIt() throws {
        let old = try Self.attested(try Self.certified(), kid: "k0", seed: Self.seed0, at: "2026-03-01T10:00:02.000Z")
        let rotated = try Self.manifest([
            Self.key("k0", seed: Self.seed0, status: "deprecated", from: "2026-01-01T00:00:00Z", to: "2026-04-01T00:00:00Z"),
            Self.key("k1", seed: Self.seed1, from: "2026-04-01T00:00:00Z"),
        ])
        #expect(ArtifactVerifier.verify(.object(old), options: .init(keys: rotated)).status == .verified)
        let revoked = try Self.manifest([Self.key("k0", seed: Self.seed0, revoked: true), Self.key("k1", seed: Self.seed1)])
        #expect(ArtifactVerifier.verify(.object(old), options: .init(keys: revoked)).code == .keyRevoked)
    }

    @Test func aReceiptForAnotherBundleIsCaught() throws {
        let a = try Self.attested(try Self.certified("exec-a"), kid: "k1", seed: Self.seed1)
        var swapped = try Self.attested(try Self.certified("exec-b"), kid: "k1", seed: Self.seed1)
        swapped["receipt"] = a["receipt"]
        swapped["signature"] = a["signature"]
        let report = ArtifactVerifier.verify(.object(swapped), options: .init(keys: try Self.manifest([Self.key("k1", seed: Self.seed1)])))
        #expect(report.nodeSignature.status == .pass)  // a genuine receipt …
        #expect(report.receiptConsistency.status == .fail)  // … for a different bundle
        #expect(report.status == .failed)
        #expect(report.reasonCodes.contains("RECEIPT_HASH_MISMATCH"))
    }

    @Test func fullBundleEnvelopeVariantVerifies() throws {
        let cer = try Self.certified()
        let key = Ed25519SigningKey(seed: Self.seed1)!
        var envelope = JSONObject()
        envelope["envelopeType"] = .string(JSONString(VerificationEnvelope.v2Type))
        envelope["scope"] = "full_bundle"
        envelope["signedFields"] = "*"
        envelope["kid"] = "k1"
        envelope["attestation"] = ["attestationId": "a", "attestedAt": "2026-03-01T10:00:02.000Z", "kid": "k1", "nodeRuntimeHash": "sha256:00", "protocolVersion": "1.2.0"]
        let located = VerificationEnvelope.Located(envelope: envelope, signature: nil, isLegacyV1: false, location: "top-level")
        let sig = Base64.encodeURL(key.sign(try VerificationEnvelope.signedBytes(located, cer: cer)))
        var withMeta = cer
        withMeta["meta"] = ["verificationEnvelope": .object(envelope), "verificationEnvelopeSignature": .string(JSONString(sig)),
                            "verificationEnvelopeType": .string(JSONString(VerificationEnvelope.v2Type))]
        let report = ArtifactVerifier.verify(.object(withMeta), options: .init(keys: try Self.manifest([Self.key("k1", seed: Self.seed1)])))
        #expect(report.verificationEnvelope.status == .pass, "\(report.verificationEnvelope.message)")
        #expect(report.status == .verified)
    }

    @Test func requireReceiptFailsUnattestedBundles() throws {
        let report = ArtifactVerifier.verify(.object(try Self.certified()), options: .init(requireAttestation: true))
        #expect(report.code == .attestationMissing)
        #expect(report.reasonCodes == ["NODE_SIGNATURE_MISSING"])
    }

    @Test func base64RoundTripsAndRejectsJunk() {
        var rng = SeededGenerator(seed: 5)
        for n in 0..<70 {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(Base64.decodeURL(Base64.encodeURL(bytes)) == bytes)
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
        #expect(Base64.decodeURL("a") == nil)
        #expect(Base64.decodeURL("ab+/") == nil)
        #expect(Base64.decode("QQ=") != nil)
        #expect(Base64.decode("QR==") == nil)  // non-zero leftover bits
    }

    @Test func timestampsParseLikeDateParse() {
        #expect(Timestamp.milliseconds("1970-01-01T00:00:00Z") == 0)
        #expect(Timestamp.milliseconds("2026-10-06T20:53:27.759Z") == 1_791_320_007_759)
        #expect(Timestamp.milliseconds("2026-10-04T21:38:02.335676+00:00") == Timestamp.milliseconds("2026-10-04T21:38:02.335Z"))
        #expect(Timestamp.milliseconds("2026-10-04T23:38:02+02:00") == Timestamp.milliseconds("2026-10-04T21:38:02Z"))
        #expect(Timestamp.milliseconds("2026-02-30T00:00:00Z") == nil)
        #expect(Timestamp.milliseconds("yesterday") == nil)
        #expect(Timestamp.iso8601(milliseconds: 1_791_320_007_759) == "2026-10-06T20:53:27.759Z")
    }
}
