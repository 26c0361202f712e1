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
        if b["bundleType"]?.stringValue != BundleType.aiExecution {
            schema("bundleType", "bundleType must be \"\(BundleType.aiExecution)\", got \(describe(b["bundleType"]))")
        }
        if b["version"]?.stringValue != BundleType.cerVersion {
            schema("version", "version must be \"\(BundleType.cerVersion)\", got \(describe(b["version"]))")
        }
        if b["createdAt"]?.nonEmptyString == nil {
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
        let snapshotFindings: [VerificationFinding]
        do {
            snapshotFindings = try SnapshotVerifier.verify(snapshot, protocolVersion: protocolVersion)
        } catch {
            var r = result(.canonicalizationError, findings + [VerificationFinding(.canonicalizationError, error.message)])
            r.protocolVersion = protocolVersion
            return r
        }
        findings += snapshotFindings

        let computed: String
        var matched: CertificateHashRule? = nil
        do {
            let candidates = try candidateHashes(bundle: b, snapshot: snapshot, protocolVersion: protocolVersion)
            computed = candidates[0].hash
            matched = candidates.first { $0.hash == claimed }?.rule
        } catch {
            var r = result(.canonicalizationError, findings + [VerificationFinding(.canonicalizationError, error.message)])
            r.protocolVersion = protocolVersion
            return r
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

    /// The certificate hashes a bundle may legitimately carry, primary rule first.
    static func candidateHashes(bundle: JSONObject, snapshot: JSONObject, protocolVersion: String) throws(CanonicalizationError)
        -> [(rule: CertificateHashRule, hash: String)]
    {
        let profile = CanonicalizationProfile.forProtocolVersion(protocolVersion) ?? .jcsV1
        var out: [(CertificateHashRule, String)] = []
        if profile == .jcsV1 {
            out.append((.aiWhitelist, try ProtocolHash.canonical(CertificateHash.whitelistPayload(bundle: bundle), profile: profile)))
        }
        var hashedSnapshot = JSONValue.object(snapshot)
        if protocolVersion == "1.2.0", let parameters = snapshot["parameters"], parameters.isNull {
            // SDK 1.2.0 tolerance: parameters null is hashed as {} (its canonical form was always {}).
            var normalized = snapshot
            normalized["parameters"] = .object(JSONObject())
            hashedSnapshot = .object(normalized)
            out.append((.aiSignals, try ProtocolHash.canonical(
                CertificateHash.aiPayload(bundle: bundle, snapshot: hashedSnapshot, includeSignals: true), profile: profile)))
            hashedSnapshot = .object(snapshot)
        }
        out.append((.aiSignals, try ProtocolHash.canonical(
            CertificateHash.aiPayload(bundle: bundle, snapshot: hashedSnapshot, includeSignals: true), profile: profile)))
        return out
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

    static func describe(_ value: JSONValue?) -> String {
        guard let value else { return "nothing (missing)" }
        if let s = value.stringValue { return "\"\(s.prefix(80))\"" }
        return value.typeName
    }
}
