/// CER packages: `{cer, receipt?, signature?, attestation?, verificationEnvelope?, verificationEnvelopeSignature?}`.
/// The inner `cer` is authoritative and never modified.
public enum CERPackage {
    /// True when the value has a non-null object `cer` (the SDK's `isCerPackage` shape check).
    public static func isPackage(_ value: JSONValue) -> Bool { value["cer"]?.objectValue != nil }

    /// The inner CER, or nil when the value is not a package.
    public static func cer(of value: JSONValue) -> JSONObject? { value["cer"]?.objectValue }

    /// Assembles a package (no re-hashing, no re-signing).
    public static func make(
        cer: JSONObject, receipt: JSONValue? = nil, signature: String? = nil, attestation: JSONValue? = nil,
        verificationEnvelope: JSONValue? = nil, verificationEnvelopeSignature: String? = nil, timestamp: JSONValue? = nil
    ) -> JSONObject {
        var o = JSONObject()
        o["cer"] = .object(cer)
        if let receipt { o["receipt"] = receipt }
        if let signature { o["signature"] = .string(JSONString(signature)) }
        if let attestation { o["attestation"] = attestation }
        if let verificationEnvelope { o["verificationEnvelope"] = verificationEnvelope }
        if let verificationEnvelopeSignature { o["verificationEnvelopeSignature"] = .string(JSONString(verificationEnvelopeSignature)) }
        if let timestamp { o["timestamp"] = timestamp }
        return o
    }
}
