/// The verification envelope (Layer 3, PROTOCOL.md §5.7).
public enum VerificationEnvelope {
    /// `envelopeType` of version 2 envelopes.
    public static let v2Type = "nexart.verification.envelope.v2"
    /// The attestation fields a v2 envelope signs.
    public static let attestationFields = ["attestationId", "attestedAt", "kid", "nodeRuntimeHash", "protocolVersion"]
    /// Meta members that carry an embedded envelope and are removed before the full-bundle form is signed.
    static let metaEnvelopeFields: Set<String> = [
        "verificationEnvelope", "verificationEnvelopeType", "verificationEnvelopeSignature", "verificationEnvelopeVerification",
    ]

    /// An envelope found in an artifact, with its signature.
    public struct Located: Sendable, Equatable {
        public var envelope: JSONObject
        public var signature: String?
        /// True for the legacy v1 summary object.
        public var isLegacyV1: Bool
        public var location: String
    }

    /// The envelope at the artifact's top level (responses, packages) or under `meta`.
    public static func find(in artifact: JSONObject, cer: JSONObject) -> Located? {
        if let e = artifact["verificationEnvelope"]?.objectValue {
            return Located(
                envelope: e, signature: artifact["verificationEnvelopeSignature"]?.stringValue,
                isLegacyV1: e["envelopeType"]?.stringValue != v2Type, location: "top-level")
        }
        if let meta = cer["meta"]?.objectValue, let e = meta["verificationEnvelope"]?.objectValue {
            let isV2 = e["envelopeType"]?.stringValue == v2Type || meta["verificationEnvelopeType"]?.stringValue == v2Type
            return Located(
                envelope: e, signature: meta["verificationEnvelopeSignature"]?.stringValue, isLegacyV1: !isV2,
                location: "meta")
        }
        return nil
    }

    /// The exact bytes the envelope's signature covers.
    public static func signedBytes(_ located: Located, cer: JSONObject) throws(CanonicalizationError) -> [UInt8] {
        let envelope = located.envelope
        if located.isLegacyV1 { return try CanonicalJSON.encode(.object(envelope), profile: .nexartV1) }
        let attestation = envelope["attestation"]?.objectValue ?? JSONObject()
        let signedFields = envelope["signedFields"]
        let isFullBundle = envelope["scope"]?.stringValue == "full_bundle" || signedFields?.stringValue == "*"
        var payload = JSONObject()
        if isFullBundle {
            payload["attestation"] = .object(attestation.picking(attestationFields))
            payload["bundle"] = .object(strippingEmbeddedEnvelope(cer))
            payload["envelopeType"] = .string(JSONString(v2Type))
        } else {
            let aFields = signedFields?["attestation"]?.arrayValue?.compactMap(\.stringValue) ?? attestationFields
            let bFields = signedFields?["bundle"]?.arrayValue?.compactMap(\.stringValue) ?? []
            payload["attestation"] = .object(attestation.picking(aFields))
            payload["bundle"] = .object(cer.picking(bFields))
        }
        return try CanonicalJSON.encode(.object(payload), profile: .nexartV1)
    }

    static func strippingEmbeddedEnvelope(_ cer: JSONObject) -> JSONObject {
        guard let meta = cer["meta"]?.objectValue else { return cer }
        var out = cer
        let stripped = meta.removing(metaEnvelopeFields)
        out["meta"] = stripped.isEmpty ? nil : .object(stripped)
        return out
    }

    /// The bundle fields a whitelist envelope signs for `cer`: for AI CERs the hashed fields present,
    /// for other types every member except `certificateHash` and `meta`.
    public static func whitelistBundleFields(for cer: JSONObject) -> [String] {
        if cer["bundleType"]?.stringValue == BundleType.aiExecution {
            return ["bundleType", "version", "createdAt", "snapshot", "context", "contextSummary", "policyEvaluation"]
                .filter { cer[$0] != nil }
        }
        return cer.keys.filter { $0 != "certificateHash" && $0 != "meta" }
    }

    /// A signed whitelist envelope (v2, scope `whitelist`), as the live node returns it.
    public static func make(
        cer: JSONObject, attestation: JSONObject, kid: String, specVersion: String = "v0.16.1", key: Ed25519SigningKey
    ) throws(CanonicalizationError) -> (envelope: JSONObject, signature: String) {
        var envelope = JSONObject()
        envelope["algorithm"] = "Ed25519"
        envelope["attestation"] = .object(attestation.picking(attestationFields))
        envelope["canonicalization"] = "jcs"
        envelope["envelopeType"] = .string(JSONString(v2Type))
        envelope["kid"] = .string(JSONString(kid))
        envelope["scope"] = "whitelist"
        envelope["signedFields"] = [
            "attestation": .array(attestationFields.map { .string(JSONString($0)) }),
            "bundle": .array(whitelistBundleFields(for: cer).map { .string(JSONString($0)) }),
        ]
        envelope["specVersion"] = .string(JSONString(specVersion))
        let located = Located(envelope: envelope, signature: nil, isLegacyV1: false, location: "top-level")
        let bytes = try signedBytes(located, cer: cer)
        return (envelope, Base64.encodeURL(key.sign(bytes)))
    }
}
