import CERKit

/// `POST /v1/cer/verify` (PROTOCOL.md §5.3): NexArt's summary fields, plus our full report.
enum VerifyResponse {
    static func make(_ report: VerificationReport) -> JSONValue {
        func s(_ v: String?) -> JSONValue { v.map { .string(JSONString($0)) } ?? .null }
        func word(_ status: LayerStatus) -> String { status.rawValue.lowercased() }
        let integrityCodes = Set(report.findings.map(\.code))
        let structureFailed = integrityCodes.contains(.schemaError) || integrityCodes.contains(.unsupportedBundleType)
            || integrityCodes.contains(.invalidSha256Format)
        var checks = JSONObject()
        checks["structure"] = s(structureFailed ? "fail" : "pass")
        checks["certificateHash"] = s(structureFailed ? "skipped" : word(report.bundleIntegrity.status))
        checks["inputHash"] = s(integrityCodes.contains(.inputHashMismatch) ? "fail" : structureFailed ? "skipped" : "pass")
        checks["outputHash"] = s(integrityCodes.contains(.outputHashMismatch) ? "fail" : structureFailed ? "skipped" : "pass")
        checks["signature"] = s(word(report.nodeSignature.status))
        checks["envelope"] = s(word(report.verificationEnvelope.status))
        let classification: String
        switch report.status {
        case .verified: classification = "VERIFIED"
        case .degraded: classification = "LEGACY_VERIFIED"
        case .failed: classification = report.kind == .unknown ? "UNVERIFIABLE" : "FAILED"
        }
        var o = JSONObject()
        o["status"] = s(report.status == .failed ? "failed" : "verified")
        o["reasonCode"] = s(report.code.rawValue)
        o["checks"] = .object(checks)
        o["computedCertificateHash"] = s(report.computedCertificateHash)
        o["classification"] = s(classification)
        o["report"] = report.json()
        return .object(o)
    }
}
