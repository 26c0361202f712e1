import CERKit

/// `POST /v1/cer/verify` (PROTOCOL.md §5.3): NexArt's summary fields, plus our full report.
enum VerifyResponse {
    /// The most bytes a verification response may have for a request body of `requestBytes`: 64 KiB
    /// plus four times the request (docs/http-api.md), so no request buys a response out of proportion.
    static func budget(requestBytes: Int) -> Int { 64 * 1024 + 4 * requestBytes }

    /// The response within `budget` bytes: when the full report of a run is larger, each step is
    /// reported as `{artifact, status, code}`, and steps that still do not fit are counted in
    /// `report.stepsOmitted`.
    static func make(_ report: VerificationReport, budget: Int) -> JSONValue {
        let full = make(report)
        if report.steps.isEmpty || full.compactBytes().count <= budget { return full }
        var summary = report
        summary.steps = []
        guard var o = make(summary).objectValue, var r = o["report"]?.objectValue else { return full }
        var used = JSONValue.object(o).compactBytes().count + 64
        var steps: [JSONValue] = []
        for step in report.steps {
            let line: JSONValue = [
                "artifact": step.label.map { .string(JSONString($0)) } ?? .null, "status": .string(JSONString(step.status.rawValue)),
                "code": .string(JSONString(step.code.rawValue)),
            ]
            let size = line.compactBytes().count + 1
            if used + size > budget { break }
            used += size
            steps.append(line)
        }
        r["steps"] = .array(steps)
        r["stepsSummarized"] = true
        r["stepsOmitted"] = .number(Double(report.steps.count - steps.count))
        o["report"] = .object(r)
        return .object(o)
    }

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
