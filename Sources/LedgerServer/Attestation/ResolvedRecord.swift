import CERKit
import LedgerCore

/// `GET /v1/resolve/cer/{hash}`: a public record with everything needed to check it by hand: the exact
/// canonical strings that were hashed and signed, the receipt, and the key that signed it.
enum ResolvedRecord {
    static func make(entry: LedgerEntry, bundle: JSONValue?, identity: NodeIdentity, manifest: NodeKeyManifest) -> JSONValue {
        let b = entry.body
        let hash = b["certificateHash"]?.stringValue ?? ""
        func s(_ v: String?) -> JSONValue { v.map { .string(JSONString($0)) } ?? .null }
        let kid = b["kid"]?.stringValue
        let key = manifest.keys.first(where: { $0.kid == kid })
        var o = JSONObject()
        o["artifactType"] = "cer"
        o["schemaVersion"] = "1.0"
        o["protocol_version"] = b["protocolVersion"] ?? .null
        o["bundle_type"] = b["bundleType"] ?? .null
        o["identity"] = [
            "certificateHash": s(hash), "executionId": b["executionId"] ?? .null, "attestationId": b["attestationId"] ?? .null,
            "nodeId": s(identity.nodeId),
        ]
        o["proof"] = [
            "receipt": b["receipt"] ?? .null, "signature": b["signature"] ?? .null, "kid": b["kid"] ?? .null,
            "ledgerIndex": .number(Double(entry.index)), "leafHash": s(Hex.encode(entry.leafHash)),
        ]
        var verification = JSONObject()
        verification["algorithm"] = "Ed25519"
        verification["verificationEnvelope"] = b["verificationEnvelope"] ?? .null
        verification["verificationEnvelopeSignature"] = b["verificationEnvelopeSignature"] ?? .null
        o["verification"] = .object(verification)
        o["bundle"] = bundle ?? .null
        var canonical = JSONObject()
        if let cer = bundle?.objectValue {
            canonical["certificate"] = certificateBlock(cer, claimed: hash)
            if let envelope = b["verificationEnvelope"]?.objectValue, let payload = envelopePayload(envelope, cer: cer) {
                canonical["envelope"] = [
                    "payload": s(payload), "kid": b["kid"] ?? .null, "signer": s(identity.nodeId),
                    "publicKeyJwk": key.flatMap { $0.manifestEntry()["publicKeyJwk"] } ?? .null,
                ]
            }
        }
        o["canonical"] = .object(canonical)
        o["timestamp"] = [
            "attestedAt": b["attestedAt"] ?? .null, "recordedAt": s(Timestamp.iso8601(milliseconds: entry.recordedAt)),
            "type": .string(JSONString(b["timestamp"]?["type"]?.stringValue ?? "node-issued")),
        ]
        if let stamp = b["timestamp"]?.objectValue { o["trustedTimestamps"] = [.object(stamp)] }
        o["links"] = [
            "self": s(identity.resolveURL(certificateHash: hash)), "keyManifest": s(identity.publicURL + "/.well-known/nexart-node.json"),
            "verify": s(identity.publicURL + "/v1/cer/verify"),
        ]
        return .object(o)
    }

    /// The exact canonical string the certificate hash covers, found by the rule that matched.
    static func certificateBlock(_ cer: JSONObject, claimed: String) -> JSONValue {
        let integrity = IntegrityVerifier.verify(.object(cer))
        let profile: CanonicalizationProfile = integrity.matchedRule == .governed
            ? .jcsV1 : integrity.protocolVersion.flatMap(CanonicalizationProfile.forProtocolVersion) ?? .nexartV1
        let preimage: JSONValue?
        switch integrity.matchedRule {
        case .aiSignals?: preimage = CertificateHash.aiPayload(bundle: cer, snapshot: cer["snapshot"] ?? .null, includeSignals: true)
        case .aiCore?: preimage = CertificateHash.aiPayload(bundle: cer, snapshot: cer["snapshot"] ?? .null, includeSignals: false)
        case .aiWhitelist?: preimage = CertificateHash.whitelistPayload(bundle: cer)
        case .governed?: preimage = CertificateHash.governedPayload(bundle: cer)
        case nil: preimage = nil
        }
        guard let preimage, let bytes = try? CanonicalJSON.encode(preimage, profile: profile) else {
            return ["payload": .null, "hashAlgorithm": "sha256", "matchesCertificateHash": false]
        }
        let matches = ProtocolHash.hash(bytes) == claimed
        return [
            "payload": .string(JSONString(String(decoding: bytes, as: UTF8.self))), "hashAlgorithm": "sha256",
            "canonicalization": profile == .jcsV1 ? "jcs" : "nexart-v1", "matchesCertificateHash": .bool(matches),
        ]
    }

    /// The exact string the whitelist envelope signature covers (PROTOCOL.md §5.7).
    static func envelopePayload(_ envelope: JSONObject, cer: JSONObject) -> String? {
        guard let fields = envelope["signedFields"]?.objectValue,
            let attestationFields = fields["attestation"]?.arrayValue?.compactMap(\.stringValue),
            let bundleFields = fields["bundle"]?.arrayValue?.compactMap(\.stringValue),
            let attestation = envelope["attestation"]?.objectValue
        else { return nil }
        let signed: JSONValue = ["attestation": .object(attestation.picking(attestationFields)), "bundle": .object(cer.picking(bundleFields))]
        return (try? CanonicalJSON.encode(signed, profile: .jcsV1)).map { String(decoding: $0, as: UTF8.self) }
    }
}
