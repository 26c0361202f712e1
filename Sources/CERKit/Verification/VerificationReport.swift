/// A layer's outcome.
public enum LayerStatus: String, Sendable {
    case pass = "PASS"
    case fail = "FAIL"
    case skipped = "SKIPPED"
}

/// One verification layer: its status, the code when it failed, and a sentence.
public struct LayerCheck: Sendable, Equatable {
    public var status: LayerStatus
    public var code: CerVerifyCode?
    public var message: String

    public static func pass(_ message: String) -> LayerCheck { LayerCheck(status: .pass, code: nil, message: message) }
    public static func fail(_ code: CerVerifyCode, _ message: String) -> LayerCheck { LayerCheck(status: .fail, code: code, message: message) }
    public static func skipped(_ message: String) -> LayerCheck { LayerCheck(status: .skipped, code: nil, message: message) }
}

/// What kind of artifact was verified.
public enum ArtifactKind: String, Sendable {
    case aiCer = "ai-cer"
    case governedCer = "governed-cer"
    case cerPackage = "cer-package"
    case projectBundle = "project-bundle"
    case run = "run"
    case unknown = "unknown"
}

/// The overall verdict.
public enum ReportStatus: String, Sendable {
    case verified = "VERIFIED"
    case failed = "FAILED"
    /// The hash matched, but contextual data in the bundle is not covered by it.
    case degraded = "DEGRADED"
}

/// The protocol-level verification report (PROTOCOL.md §3.2), for one artifact.
public struct VerificationReport: Sendable, Equatable {
    public var kind: ArtifactKind
    public var status: ReportStatus
    /// The SDK-style code of the first failing layer (OK when verified).
    public var code: CerVerifyCode
    public var bundleIntegrity: LayerCheck
    public var nodeSignature: LayerCheck
    public var receiptConsistency: LayerCheck
    public var verificationEnvelope: LayerCheck
    /// RFC 3161 timestamp: the imprint against the certificate hash (informational); with TSA roots,
    /// the whole token (`ArtifactVerifier.verifyTimestamp`), and then decisive.
    public var timestamp: LayerCheck
    /// Run-chain continuity, for runs and project bundles.
    public var chain: LayerCheck
    /// Protocol reason codes (`BUNDLE_HASH_MISMATCH`, `NODE_SIGNATURE_INVALID`, …).
    public var reasonCodes: [String]
    public var bundleType: String?
    public var protocolVersion: String?
    public var certificateHash: String?
    public var computedCertificateHash: String?
    public var hashRule: CertificateHashRule?
    public var verificationScope: IntegrityResult.Scope?
    public var isRedactedReseal: Bool
    public var projectHash: String?
    public var computedProjectHash: String?
    public var findings: [VerificationFinding]
    public var warnings: [String]
    /// Per-step reports for project bundles and runs.
    public var steps: [VerificationReport]
    public var chainResult: RunChainResult?
    /// Label of the artifact (file name or step id), for output.
    public var label: String?

    /// True when every applicable layer passed.
    public var isVerified: Bool { status == .verified }

    init(kind: ArtifactKind) {
        self.kind = kind
        status = .verified
        code = .ok
        bundleIntegrity = .skipped("not checked")
        nodeSignature = .skipped("no signed receipt")
        receiptConsistency = .skipped("no signed receipt")
        verificationEnvelope = .skipped("no verification envelope")
        timestamp = .skipped("no RFC 3161 timestamp")
        chain = .skipped("no run chain")
        reasonCodes = []
        isRedactedReseal = false
        findings = []
        warnings = []
        steps = []
    }

    /// Sets status, code and reason codes from the layers (first failing layer decides the code).
    mutating func conclude(degraded: Bool = false) {
        // The timestamp is decisive only once fully verified against TSA roots (`verifyTimestamp`).
        let layers = [bundleIntegrity, nodeSignature, receiptConsistency, verificationEnvelope, chain]
            + (timestamp.code == .timestampInvalid ? [timestamp] : [])
        if let failing = layers.first(where: { $0.status == .fail }) {
            status = .failed
            code = failing.code ?? .unknownError
        } else if degraded {
            status = .degraded
            code = .contextNotProtected
        } else {
            status = .verified
            code = .ok
        }
        var reasons: [String] = []
        if bundleIntegrity.status == .fail {
            switch bundleIntegrity.code {
            case .schemaError? where findings.contains { $0.message.hasPrefix("SCHEMA_VERSION_UNSUPPORTED") }:
                reasons.append("SCHEMA_VERSION_UNSUPPORTED")
            case .schemaError?, .canonicalizationError?, .invalidSha256Format?, .unsupportedBundleType?, .unknownError?:
                reasons.append("BUNDLE_CORRUPTED")
            default: reasons.append("BUNDLE_HASH_MISMATCH")
            }
        }
        if nodeSignature.status == .fail {
            reasons.append(nodeSignature.code == .attestationMissing ? "NODE_SIGNATURE_MISSING" : "NODE_SIGNATURE_INVALID")
        }
        if receiptConsistency.status == .fail { reasons.append("RECEIPT_HASH_MISMATCH") }
        if verificationEnvelope.status == .fail { reasons.append("ENVELOPE_SIGNATURE_INVALID") }
        if chain.status == .fail { reasons.append(chain.code == .incompleteArtifact ? "INCOMPLETE_ARTIFACT" : "CHAIN_BREAK_DETECTED") }
        if timestamp.code == .timestampInvalid { reasons.append("TIMESTAMP_INVALID") }
        reasonCodes = reasons
    }
}
