/// The SDK's `verifySnapshot` rules for `ai.execution.v1` snapshots (PROTOCOL.md §3.1, SDK README
/// "Legacy Compatibility"): strict for 1.3.x, the documented tolerances for 1.2.0 only.
public enum SnapshotVerifier {
    /// The findings for `snapshot` under `protocolVersion` (which must be known). Throws only when a
    /// hashed value has no canonical form.
    public static func verify(_ snapshot: JSONObject, protocolVersion: String) throws(CanonicalizationError)
        -> [VerificationFinding]
    {
        try verify(snapshot, protocolVersion: protocolVersion, precomputedHashes: [:])
    }

    /// As `verify`, reusing already computed hashes of the non-string `input`/`output` values.
    static func verify(_ snapshot: JSONObject, protocolVersion: String, precomputedHashes: [String: String])
        throws(CanonicalizationError) -> [VerificationFinding]
    {
        let profile = CanonicalizationProfile.forProtocolVersion(protocolVersion) ?? .jcsV1
        let isLegacy = protocolVersion == "1.2.0"
        var findings: [VerificationFinding] = []
        func schema(_ field: String, _ message: String) {
            findings.append(VerificationFinding(.schemaError, message, field: "snapshot.\(field)"))
        }

        if !isLegacy {
            if snapshot["type"]?.isString(BundleType.aiSnapshot) != true {
                schema("type", "snapshot.type must be \"\(BundleType.aiSnapshot)\"")
            }
            if snapshot["executionSurface"]?.isString("ai") != true {
                schema("executionSurface", "snapshot.executionSurface must be \"ai\"")
            }
        }
        for field in ["executionId", "timestamp", "provider", "model"] where snapshot[field]?.isNonEmptyString != true {
            schema(field, "snapshot.\(field) must be a non-empty string")
        }
        if isLegacy {
            if let prompt = snapshot["prompt"], prompt.jsonString == nil {
                schema("prompt", "snapshot.prompt must be a string when present")
            }
        } else if snapshot["prompt"]?.isNonEmptyString != true {
            schema("prompt", "snapshot.prompt must be a non-empty string")
        }
        for field in ["input", "output"] {
            if snapshot[field] == nil || snapshot[field]!.isNull {
                schema(field, "snapshot.\(field) must be present and not null")
            }
        }
        verifyParameters(snapshot["parameters"], isLegacy: isLegacy, into: &findings)

        for (valueField, hashField) in [("input", "inputHash"), ("output", "outputHash")] {
            guard let claimedString = snapshot[hashField]?.jsonString, claimedString.hasPrefix(ProtocolHash.prefix) else {
                findings.append(VerificationFinding(
                    .invalidSha256Format, "snapshot.\(hashField) must be a string starting with \"sha256:\"",
                    field: "snapshot.\(hashField)"))
                continue
            }
            guard let value = snapshot[valueField], !value.isNull else { continue }
            let computed: String
            if let known = precomputedHashes[valueField] { computed = known } else { computed = try ProtocolHash.value(value, profile: profile) }
            if !claimedString.equals(computed) {
                let claimed = claimedString.string
                let code: CerVerifyCode = valueField == "input" ? .inputHashMismatch : .outputHashMismatch
                findings.append(VerificationFinding(
                    code, "\(hashField) mismatch: expected \(claimed), computed \(computed)",
                    field: "snapshot.\(hashField)", expected: claimed, observed: computed))
            }
        }
        return findings
    }

    static func verifyParameters(_ parameters: JSONValue?, isLegacy: Bool, into findings: inout [VerificationFinding]) {
        func schema(_ message: String, _ field: String = "snapshot.parameters") {
            findings.append(VerificationFinding(.schemaError, message, field: field))
        }
        guard let parameters else {
            schema("snapshot.parameters is missing")
            return
        }
        if isLegacy {
            if parameters.isNull { return }
            if let o = parameters.objectValue, o.isEmpty { return }
        }
        guard let p = parameters.objectValue else {
            schema("snapshot.parameters must be an object")
            return
        }
        for field in ["temperature", "maxTokens"] {
            guard let n = p[field]?.numberValue, n.isFinite else {
                schema("snapshot.parameters.\(field) must be a finite number", "snapshot.parameters.\(field)")
                continue
            }
        }
        for field in ["topP", "seed"] {
            switch p[field] {
            case .none where isLegacy: continue
            case .some(.null): continue
            case .some(.number(let n)) where n.isFinite: continue
            default: schema("snapshot.parameters.\(field) must be a finite number or null", "snapshot.parameters.\(field)")
            }
        }
    }
}
