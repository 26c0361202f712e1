/// The result of the SDK's `verifyCer`: `{ok, code, errors}` plus what the verifier computed.
public struct CerVerificationResult: Sendable, Equatable {
    /// The winning code (§3.2 priority).
    public var code: CerVerifyCode
    /// Every failed check, in the order found.
    public var findings: [VerificationFinding]
    /// The certificate hash recomputed under the primary rule, when it could be computed.
    public var computedCertificateHash: String?
    /// The rule whose preimage matched the claimed hash, when one did.
    public var matchedRule: CertificateHashRule?
    /// `snapshot.protocolVersion`, when it is a string.
    public var protocolVersion: String?

    /// True when the bundle verified.
    public var ok: Bool { code == .ok }
    /// The findings' messages.
    public var errors: [String] { findings.map(\.message) }
}

/// A mirror of the NexArt SDK's `verifyCer` for `cer.ai.execution.v1` bundles (PROTOCOL.md §3.2).
///
/// Code priority follows the SDK mirror confirmed by the real fixtures: `SCHEMA_ERROR` >
/// `INVALID_SHA256_FORMAT` > snapshot hash codes > `CERTIFICATE_HASH_MISMATCH`; a canonicalization
/// failure returns `CANONICALIZATION_ERROR` at once.
public enum CerVerifier {
    /// Verifies an AI CER bundle.
    public static func verify(_ bundle: JSONValue) -> CerVerificationResult {
        guard let b = bundle.objectValue else {
            return result(.schemaError, [VerificationFinding(.schemaError, "bundle must be a JSON object, got \(bundle.typeName)")])
        }
        var findings: [VerificationFinding] = []
        func schema(_ field: String, _ message: String) {
            findings.append(VerificationFinding(.schemaError, message, field: field))
        }
        if b["bundleType"]?.isString(BundleType.aiExecution) != true {
            schema("bundleType", "bundleType must be \"\(BundleType.aiExecution)\", got \(describe(b["bundleType"]))")
        }
        if b["version"]?.isString(BundleType.cerVersion) != true {
            schema("version", "version must be \"\(BundleType.cerVersion)\", got \(describe(b["version"]))")
        }
        if b["createdAt"]?.isNonEmptyString != true {
            schema("createdAt", "createdAt must be a non-empty string")
        }
        guard let snapshot = b["snapshot"]?.objectValue else {
            schema("snapshot", "snapshot must be an object, got \(describe(b["snapshot"]))")
            return result(.schemaError, findings)
        }
        let claimed = b["certificateHash"]?.stringValue
        if claimed == nil {
            schema("certificateHash", "certificateHash is missing")
        } else if !claimed!.hasPrefix(ProtocolHash.prefix) {
            findings.append(VerificationFinding(
                .invalidSha256Format, "certificateHash must start with \"sha256:\"", field: "certificateHash"))
        }
        let protocolVersion = snapshot["protocolVersion"]?.stringValue
        guard let protocolVersion, BundleType.knownProtocolVersions.contains(protocolVersion) else {
            schema(
                "snapshot.protocolVersion",
                "SCHEMA_VERSION_UNSUPPORTED: snapshot.protocolVersion \(describe(snapshot["protocolVersion"])) is not a supported protocol version (1.2.0, 1.3.0, 1.3.1)")
            var r = result(.schemaError, findings)
            r.protocolVersion = snapshot["protocolVersion"]?.stringValue
            return r
        }
        // Canonicalize the preimage once; the input/output hashes are slices of the same bytes.
        let profile = CanonicalizationProfile.forProtocolVersion(protocolVersion) ?? .jcsV1
        let primary = primaryPayload(bundle: b, snapshot: snapshot, protocolVersion: protocolVersion)
        let computed: String
        let snapshotFindings: [VerificationFinding]
        do {
            let encoded = try CanonicalJSON.encodeRecording(
                primary.payload, nestedKey: "snapshot", recordKeys: ["input", "output"], profile: profile)
            computed = ProtocolHash.hash(encoded.bytes)
            var precomputed: [String: String] = [:]
            for (key, range) in encoded.ranges where snapshot[key]?.jsonString == nil {
                precomputed[key] = ProtocolHash.hash(encoded.bytes[range])
            }
            snapshotFindings = try SnapshotVerifier.verify(snapshot, protocolVersion: protocolVersion, precomputedHashes: precomputed)
        } catch {
            var r = result(.canonicalizationError, findings + [VerificationFinding(.canonicalizationError, error.message)])
            r.protocolVersion = protocolVersion
            return r
        }
        findings += snapshotFindings
        var matched: CertificateHashRule? = computed == claimed ? primary.rule : nil
        if matched == nil {
            // The alternative preimages a record may legitimately have been sealed with.
            for (rule, payload) in alternativePayloads(bundle: b, snapshot: snapshot, protocolVersion: protocolVersion) {
                if let hash = try? ProtocolHash.canonical(.object(payload), profile: profile), hash == claimed {
                    matched = rule
                    break
                }
            }
        }
        if matched == nil, let claimed, claimed.hasPrefix(ProtocolHash.prefix) {
            findings.append(VerificationFinding(
                .certificateHashMismatch, "certificateHash mismatch: expected \(claimed), computed \(computed)",
                field: "certificateHash", expected: claimed, observed: computed))
        }
        var r = result(selectCode(findings), findings)
        r.computedCertificateHash = computed
        r.matchedRule = matched
        r.protocolVersion = protocolVersion
        return r
    }

    /// The preimage of the version's primary rule: the whitelist projection for 1.3.x; for 1.2.0 the
    /// SDK rule, with `parameters: null` hashed as `{}` (the SDK's 1.2.0 tolerance).
    static func primaryPayload(bundle: JSONObject, snapshot: JSONObject, protocolVersion: String)
        -> (rule: CertificateHashRule, payload: JSONObject)
    {
        if CanonicalizationProfile.forProtocolVersion(protocolVersion) == .jcsV1 {
            return (.aiWhitelist, CertificateHash.whitelistPayload(bundle: bundle).objectValue!)
        }
        var hashed = snapshot
        if let parameters = snapshot["parameters"], parameters.isNull { hashed["parameters"] = .object(JSONObject()) }
        return (.aiSignals, CertificateHash.aiPayload(bundle: bundle, snapshot: .object(hashed), includeSignals: true).objectValue!)
    }

    /// Other preimages a valid record may carry: the SDK signals rule for 1.3.x (SDK-made bundles with
    /// advisory context fields), the verbatim `parameters: null` for 1.2.0.
    static func alternativePayloads(bundle: JSONObject, snapshot: JSONObject, protocolVersion: String)
        -> [(CertificateHashRule, JSONObject)]
    {
        let isJcs = CanonicalizationProfile.forProtocolVersion(protocolVersion) == .jcsV1
        if isJcs || snapshot["parameters"]?.isNull == true {
            return [(.aiSignals, CertificateHash.aiPayload(bundle: bundle, snapshot: .object(snapshot), includeSignals: true).objectValue!)]
        }
        return []
    }

    /// §3.2 code selection.
    static func selectCode(_ findings: [VerificationFinding]) -> CerVerifyCode {
        if findings.isEmpty { return .ok }
        let codes = Set(findings.map(\.code))
        if codes.contains(.schemaError) { return .schemaError }
        if codes.contains(.invalidSha256Format) { return .invalidSha256Format }
        let input = codes.contains(.inputHashMismatch)
        let output = codes.contains(.outputHashMismatch)
        if input && output { return .snapshotHashMismatch }
        if input { return .inputHashMismatch }
        if output { return .outputHashMismatch }
        if codes.contains(.certificateHashMismatch) { return .certificateHashMismatch }
        return findings[0].code
    }

    static func result(_ code: CerVerifyCode, _ findings: [VerificationFinding]) -> CerVerificationResult {
        CerVerificationResult(code: code, findings: findings, computedCertificateHash: nil, matchedRule: nil, protocolVersion: nil)
    }

    public static func describe(_ value: JSONValue?) -> String {
        guard let value else { return "nothing (missing)" }
        if let s = value.stringValue { return "\"\(s.prefix(80))\"" }
        return value.typeName
    }
}
