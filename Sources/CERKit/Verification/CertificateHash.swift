/// Which preimage a certificate hash was found to cover.
public enum CertificateHashRule: String, Sendable, Codable {
    /// AI CER, SDK rule: `{bundleType, version, createdAt, snapshot}` plus `context: {signals}` when
    /// `context.signals` is a non-empty array (protocol 1.2.0, and SDK-made 1.3.x bundles).
    case aiSignals = "ai-signals"
    /// AI CER, the four core fields only (pre-context bundles and redacted reseals).
    case aiCore = "ai-core"
    /// AI CER 1.3.x, the documented whitelist projection of the bundle as received.
    case aiWhitelist = "ai-whitelist"
    /// Governed CER: every top-level member except `certificateHash`.
    case governed = "governed"
}

/// The preimages of certificate hashes (PROTOCOL.md §2.3, §2.4).
public enum CertificateHash {
    /// Members of the 1.3.x whitelist projection, in documentation order.
    public static let whitelistFields = ["bundleType", "version", "createdAt", "snapshot", "context", "contextSummary", "policyEvaluation"]

    /// The non-empty `context.signals` array of a bundle, if any.
    public static func boundSignals(of bundle: JSONObject) -> [JSONValue]? {
        guard let signals = bundle["context"]?["signals"]?.arrayValue, !signals.isEmpty else { return nil }
        return signals
    }

    /// The AI CER preimage. `snapshot` is passed separately so callers can apply in-memory
    /// normalisations (1.2.0 `parameters: null`) without touching the bundle.
    public static func aiPayload(bundle: JSONObject, snapshot: JSONValue, includeSignals: Bool, version: JSONValue = .string("0.1"))
        -> JSONValue
    {
        var payload = JSONObject()
        payload["bundleType"] = .string(JSONString(BundleType.aiExecution))
        if let createdAt = bundle["createdAt"] { payload["createdAt"] = createdAt }
        payload["snapshot"] = snapshot
        payload["version"] = version
        if includeSignals, let signals = boundSignals(of: bundle) {
            payload["context"] = .object(JSONObject(uniqueMembers: [.init(key: "signals", value: .array(signals))]))
        }
        return .object(payload)
    }

    /// The 1.3.x whitelist projection: the listed members present in the bundle, verbatim.
    public static func whitelistPayload(bundle: JSONObject) -> JSONValue {
        .object(bundle.picking(whitelistFields))
    }

    /// The governed-CER preimage: every member except `certificateHash`.
    public static func governedPayload(bundle: JSONObject) -> JSONValue {
        .object(bundle.removing(["certificateHash"]))
    }
}
