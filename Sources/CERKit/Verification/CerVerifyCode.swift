/// The SDK's stable verification codes (`CerVerifyCode`), plus verifier-level extras.
public enum CerVerifyCode: String, Sendable, CaseIterable, Codable {
    case ok = "OK"
    case schemaError = "SCHEMA_ERROR"
    case invalidSha256Format = "INVALID_SHA256_FORMAT"
    case inputHashMismatch = "INPUT_HASH_MISMATCH"
    case outputHashMismatch = "OUTPUT_HASH_MISMATCH"
    case snapshotHashMismatch = "SNAPSHOT_HASH_MISMATCH"
    case certificateHashMismatch = "CERTIFICATE_HASH_MISMATCH"
    case canonicalizationError = "CANONICALIZATION_ERROR"
    case projectHashMismatch = "PROJECT_HASH_MISMATCH"
    case stepRegistryMismatch = "STEP_REGISTRY_MISMATCH"
    case unknownError = "UNKNOWN_ERROR"
    case attestationMissing = "ATTESTATION_MISSING"
    case attestationKeyNotFound = "ATTESTATION_KEY_NOT_FOUND"
    case attestationInvalidSignature = "ATTESTATION_INVALID_SIGNATURE"
    case attestationKeyFormatUnsupported = "ATTESTATION_KEY_FORMAT_UNSUPPORTED"
    case keyRevoked = "KEY_REVOKED"
    case schemaKeyInvalid = "SCHEMA_KEY_INVALID"
    case nodeReceiptMissing = "NODE_RECEIPT_MISSING"
    case chainBreakDetected = "CHAIN_BREAK_DETECTED"
    case incompleteArtifact = "INCOMPLETE_ARTIFACT"
    case verificationMaterialUnavailable = "VERIFICATION_MATERIAL_UNAVAILABLE"
    case toolEvidenceMissing = "TOOL_EVIDENCE_MISSING"
    case toolOutputHashMismatch = "TOOL_OUTPUT_HASH_MISMATCH"
    /// Verifier-level: the hash matches only without the bundle's context (legacy or reseal).
    case contextNotProtected = "CONTEXT_NOT_PROTECTED"
    /// Verifier-level: the artifact is not a bundle type this verifier knows.
    case unsupportedBundleType = "UNSUPPORTED_BUNDLE_TYPE"
    /// Verifier-level: the receipt does not belong to the bundle (hash, kid or id disagree).
    case receiptMismatch = "RECEIPT_MISMATCH"
    /// Verifier-level: the verification envelope's signature does not verify.
    case envelopeInvalidSignature = "ENVELOPE_INVALID_SIGNATURE"
    /// Verifier-level: the RFC 3161 token does not verify against the given TSA roots.
    case timestampInvalid = "TIMESTAMP_INVALID"

    /// The AIEF §9.2 reason string for this code (`nil` for OK).
    public var aiefReason: String? {
        switch self {
        case .ok: return nil
        case .certificateHashMismatch, .inputHashMismatch, .outputHashMismatch, .snapshotHashMismatch,
            .toolOutputHashMismatch, .projectHashMismatch, .stepRegistryMismatch, .contextNotProtected,
            .receiptMismatch:
            return "integrityProofMismatch"
        case .schemaError, .unsupportedBundleType: return "unsupportedSchema"
        case .canonicalizationError, .invalidSha256Format, .unknownError: return "malformedArtifact"
        case .incompleteArtifact, .toolEvidenceMissing: return "incompleteArtifact"
        case .chainBreakDetected: return "chainBreakDetected"
        case .verificationMaterialUnavailable, .attestationMissing, .attestationKeyNotFound,
            .attestationKeyFormatUnsupported, .nodeReceiptMissing:
            return "verificationMaterialUnavailable"
        case .attestationInvalidSignature, .keyRevoked, .schemaKeyInvalid, .envelopeInvalidSignature, .timestampInvalid:
            return "signatureInvalid"
        }
    }
}

/// One failed check: the code it maps to and a sentence naming the field and the values.
public struct VerificationFinding: Sendable, Equatable {
    public var code: CerVerifyCode
    public var message: String
    /// The JSON path of the field concerned, when there is one.
    public var field: String?
    public var expected: String?
    public var observed: String?

    public init(_ code: CerVerifyCode, _ message: String, field: String? = nil, expected: String? = nil, observed: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.expected = expected
        self.observed = observed
    }
}
