/// The outcome of the bundle-integrity layer for one CER.
public struct IntegrityResult: Sendable, Equatable {
    /// How much of the bundle the matching hash covers.
    public enum Scope: String, Sendable {
        /// Everything the protocol hashes for this bundle type.
        case full
        /// Only `{bundleType, version, createdAt, snapshot}`; the bundle's context is not covered.
        case coreOnly = "core-only"
        /// A redacted reseal: raw prompt/input/output removed and the record re-hashed.
        case redactedReseal = "redacted-reseal"
    }

    public var code: CerVerifyCode
    public var findings: [VerificationFinding]
    public var warnings: [String]
    public var claimedCertificateHash: String?
    public var computedCertificateHash: String?
    public var matchedRule: CertificateHashRule?
    public var protocolVersion: String?
    public var scope: Scope
    public var isRedactedReseal: Bool

    /// True when the hash covers everything it should, or the gap is declared (reseal).
    public var isIntact: Bool { code == .ok }
    /// True when the hash matched but left contextual data uncovered (verifier-level degraded state).
    public var isDegraded: Bool { code == .contextNotProtected }
}

/// Integrity verification with the tolerances of NexArt's public verifier (PROTOCOL.md §2.3, §3.1a).
public enum IntegrityVerifier {
    /// Verifies any CER: AI (with legacy and reseal handling) or governed.
    public static func verify(_ cer: JSONValue) -> IntegrityResult {
        guard let b = cer.objectValue else {
            return failure(.schemaError, "bundle must be a JSON object, got \(cer.typeName)", claimed: nil)
        }
        let bundleType = b["bundleType"]?.stringValue
        if bundleType == BundleType.governedExecution { return verifyGoverned(b) }
        if bundleType == BundleType.aiExecution || b["snapshot"]?["type"]?.stringValue == BundleType.aiSnapshot {
            return verifyAI(b)
        }
        return failure(
            .unsupportedBundleType, "bundleType \(CerVerifier.describe(b["bundleType"])) is not a supported CER type",
            claimed: b["certificateHash"]?.stringValue)
    }

    static func failure(_ code: CerVerifyCode, _ message: String, claimed: String?) -> IntegrityResult {
        IntegrityResult(
            code: code, findings: [VerificationFinding(code, message)], warnings: [], claimedCertificateHash: claimed,
            computedCertificateHash: nil, matchedRule: nil, protocolVersion: nil, scope: .full, isRedactedReseal: false)
    }

    /// Markers of a redacted reseal, or a snapshot without raw input/output (which only a reseal can verify).
    public static func isRedactedReseal(_ b: JSONObject) -> Bool {
        let snapshot = b["snapshot"]?.objectValue
        if b["redacted_reseal"]?.boolValue == true || b["meta"]?["redacted_reseal"]?.boolValue == true { return true }
        if b["meta"]?["provenance"]?["kind"]?.stringValue == "redacted_reseal" { return true }
        if b["provenance"]?["kind"]?.stringValue == "redacted_reseal" { return true }
        if b["meta"]?["attestation"]?["mode"]?.stringValue == "redacted_reseal" { return true }
        guard let snapshot else { return false }
        return snapshot["input"] == nil || snapshot["output"] == nil
    }

    /// True when the bundle carries contextual data a core-only hash would leave uncovered.
    static func hasContextualData(_ b: JSONObject) -> Bool {
        if let context = b["context"]?.objectValue, !context.isEmpty {
            if let signals = context["signals"]?.arrayValue { if !signals.isEmpty { return true } } else { return true }
        }
        for signals in [b["signals"], b["snapshot"]?["signals"], b["meta"]?["signals"]] {
            if let a = signals?.arrayValue, !a.isEmpty { return true }
        }
        return false
    }

    static func verifyAI(_ b: JSONObject) -> IntegrityResult {
        let claimed = b["certificateHash"]?.stringValue
        let protocolVersion = b["snapshot"]?["protocolVersion"]?.stringValue
        if isRedactedReseal(b) { return verifyReseal(b, claimed: claimed, protocolVersion: protocolVersion) }

        let sdk = CerVerifier.verify(.object(b))
        var result = IntegrityResult(
            code: sdk.code, findings: sdk.findings, warnings: [], claimedCertificateHash: claimed,
            computedCertificateHash: sdk.computedCertificateHash, matchedRule: sdk.matchedRule,
            protocolVersion: sdk.protocolVersion, scope: .full, isRedactedReseal: false)
        if sdk.code == .certificateHashMismatch, let snapshot = b["snapshot"], let claimed {
            // Legacy tolerance: records sealed before context binding hash the four core fields only.
            let version = b["version"] ?? b["bundleVersion"] ?? .string("0.1")
            let profile = CanonicalizationProfile.forProtocolVersion(protocolVersion ?? "") ?? .nexartV1
            if let core = try? ProtocolHash.canonical(
                CertificateHash.aiPayload(bundle: b, snapshot: snapshot, includeSignals: false, version: version), profile: profile),
                core == claimed
            {
                result.matchedRule = .aiCore
                result.computedCertificateHash = core
                result.findings = []
                if hasContextualData(b) {
                    result.code = .contextNotProtected
                    result.scope = .coreOnly
                    result.findings = [VerificationFinding(
                        .contextNotProtected,
                        "the certificate hash matches only without the bundle's context: its signals are not protected by it",
                        field: "context")]
                } else {
                    result.code = .ok
                }
            }
        }
        return withMetaCheck(result, b)
    }

    /// Fails closed when `meta.attestation.protocolVersion` names a protocol version other than the snapshot's.
    static func withMetaCheck(_ r: IntegrityResult, _ b: JSONObject) -> IntegrityResult {
        guard let declared = b["meta"]?["attestation"]?["protocolVersion"]?.stringValue,
            BundleType.knownProtocolVersions.contains(declared), let snapshotVersion = r.protocolVersion,
            declared != snapshotVersion
        else { return r }
        var out = r
        let finding = VerificationFinding(
            .schemaError, "meta.attestation.protocolVersion \(declared) differs from snapshot.protocolVersion \(snapshotVersion)",
            field: "meta.attestation.protocolVersion", expected: snapshotVersion, observed: declared)
        out.findings.append(finding)
        if out.code == .ok || out.code == .contextNotProtected { out.code = .schemaError }
        return out
    }

    static func verifyReseal(_ b: JSONObject, claimed: String?, protocolVersion: String?) -> IntegrityResult {
        var result = IntegrityResult(
            code: .ok, findings: [], warnings: [], claimedCertificateHash: claimed, computedCertificateHash: nil,
            matchedRule: nil, protocolVersion: protocolVersion, scope: .redactedReseal, isRedactedReseal: true)
        guard let claimed, claimed.hasPrefix(ProtocolHash.prefix) else {
            result.code = claimed == nil ? .schemaError : .invalidSha256Format
            result.findings = [VerificationFinding(result.code, "certificateHash is missing or not a sha256: hash", field: "certificateHash")]
            return result
        }
        guard let snapshot = b["snapshot"], snapshot.objectValue != nil else {
            result.code = .schemaError
            result.findings = [VerificationFinding(.schemaError, "snapshot must be an object", field: "snapshot")]
            return result
        }
        guard let protocolVersion, let profile = CanonicalizationProfile.forProtocolVersion(protocolVersion) else {
            result.code = .schemaError
            result.findings = [VerificationFinding(
                .schemaError, "SCHEMA_VERSION_UNSUPPORTED: snapshot.protocolVersion \(CerVerifier.describe(b["snapshot"]?["protocolVersion"])) is not supported",
                field: "snapshot.protocolVersion")]
            return result
        }
        let version = b["version"] ?? b["bundleVersion"] ?? .string("0.1")
        do {
            // Strategy A: the four core fields (how the dashboard reseals); B: with context.signals.
            let core = try ProtocolHash.canonical(
                CertificateHash.aiPayload(bundle: b, snapshot: snapshot, includeSignals: false, version: version), profile: profile)
            result.computedCertificateHash = core
            if core == claimed {
                result.matchedRule = .aiCore
                if CertificateHash.boundSignals(of: b) != nil || hasContextualData(b) {
                    result.warnings.append(
                        "redacted reseal: the certificate hash covers {bundleType, createdAt, snapshot, version} only; the bundle's context.signals are NOT covered by it")
                }
                return withMetaCheck(result, b)
            }
            let withSignals = try ProtocolHash.canonical(
                CertificateHash.aiPayload(bundle: b, snapshot: snapshot, includeSignals: true, version: version), profile: profile)
            if withSignals == claimed {
                result.matchedRule = .aiSignals
                return withMetaCheck(result, b)
            }
        } catch {
            result.code = .canonicalizationError
            result.findings = [VerificationFinding(.canonicalizationError, error.message)]
            return result
        }
        result.code = .certificateHashMismatch
        result.findings = [VerificationFinding(
            .certificateHashMismatch,
            "certificateHash mismatch: expected \(claimed), computed \(result.computedCertificateHash ?? "?") (redacted reseal, core fields)",
            field: "certificateHash", expected: claimed, observed: result.computedCertificateHash)]
        return result
    }

    static func verifyGoverned(_ b: JSONObject) -> IntegrityResult {
        let claimed = b["certificateHash"]?.stringValue
        var result = IntegrityResult(
            code: .ok, findings: [], warnings: [], claimedCertificateHash: claimed, computedCertificateHash: nil,
            matchedRule: nil, protocolVersion: nil, scope: .full, isRedactedReseal: false)
        for field in ["version", "createdAt"] where b[field]?.nonEmptyString == nil {
            result.findings.append(VerificationFinding(.schemaError, "\(field) must be a non-empty string", field: field))
        }
        if let protected = b["protectedSet"]?["protectedFields"]?.arrayValue {
            for name in protected.compactMap(\.stringValue) where b[name] == nil {
                result.findings.append(VerificationFinding(
                    .schemaError, "protected field \(name) is missing (protectedFieldMissing)", field: name))
            }
        }
        if let scheme = b["protectedSet"]?["stabilitySchemeId"]?.stringValue, scheme != "jcs-v1" {
            result.findings.append(VerificationFinding(
                .schemaError, "SCHEMA_VERSION_UNSUPPORTED: stabilitySchemeId \(scheme) is not supported", field: "protectedSet.stabilitySchemeId"))
        }
        guard let claimed, ProtocolHash.isWellFormed(claimed) else {
            result.findings.append(VerificationFinding(
                .invalidSha256Format, "certificateHash must match sha256:<64 lowercase hex>", field: "certificateHash"))
            result.code = CerVerifier.selectCode(result.findings)
            return result
        }
        do {
            let computed = try ProtocolHash.canonical(CertificateHash.governedPayload(bundle: b), profile: .jcsV1)
            result.computedCertificateHash = computed
            if computed == claimed {
                result.matchedRule = .governed
            } else {
                result.findings.append(VerificationFinding(
                    .certificateHashMismatch, "certificateHash mismatch: expected \(claimed), computed \(computed)",
                    field: "certificateHash", expected: claimed, observed: computed))
            }
        } catch {
            result.code = .canonicalizationError
            result.findings.append(VerificationFinding(.canonicalizationError, error.message))
            return result
        }
        result.code = CerVerifier.selectCode(result.findings)
        return result
    }
}
