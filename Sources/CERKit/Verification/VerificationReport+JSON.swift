extension VerificationReport {
    /// The report as JSON: `status`, `code`, `checks`, `reasonCodes`, hashes, findings and steps.
    /// `verifiedAt` is passed in (CERKit reads no clock).
    public func json(verifiedAt: String? = nil, verifier: String = "evidence-ledger") -> JSONValue {
        var o = JSONObject()
        func s(_ v: String?) -> JSONValue { v.map { .string(JSONString($0)) } ?? .null }
        if let label { o["artifact"] = s(label) }
        o["kind"] = s(kind.rawValue)
        o["status"] = s(status.rawValue)
        o["code"] = s(code.rawValue)
        var checks = JSONObject()
        checks["bundleIntegrity"] = s(bundleIntegrity.status.rawValue)
        checks["nodeSignature"] = s(nodeSignature.status.rawValue)
        checks["receiptConsistency"] = s(receiptConsistency.status.rawValue)
        checks["verificationEnvelope"] = s(verificationEnvelope.status.rawValue)
        checks["timestamp"] = s(timestamp.status.rawValue)
        if kind == .run || chain.status != .skipped || chainResult != nil { checks["chain"] = s(chain.status.rawValue) }
        o["checks"] = .object(checks)
        var layers = JSONObject()
        for (name, layer) in namedLayers {
            var l = JSONObject()
            l["status"] = s(layer.status.rawValue)
            if let code = layer.code { l["code"] = s(code.rawValue) }
            l["message"] = s(layer.message)
            layers[name] = .object(l)
        }
        o["layers"] = .object(layers)
        o["reasonCodes"] = .array(reasonCodes.map { .string(JSONString($0)) })
        if let bundleType { o["bundleType"] = s(bundleType) }
        if let protocolVersion { o["protocolVersion"] = s(protocolVersion) }
        if kind != .projectBundle && kind != .run {
            o["certificateHash"] = s(certificateHash)
            o["computedCertificateHash"] = s(computedCertificateHash)
            if let hashRule { o["hashRule"] = s(hashRule.rawValue) }
            if let verificationScope { o["verificationScope"] = s(verificationScope.rawValue) }
            o["redactedReseal"] = .bool(isRedactedReseal)
        }
        if kind == .projectBundle {
            o["projectHash"] = s(projectHash)
            o["computedProjectHash"] = s(computedProjectHash)
        }
        if let chainResult {
            var c = JSONObject()
            c["code"] = s(chainResult.code.rawValue)
            c["stepCount"] = .number(Double(chainResult.stepCount))
            if let runId = chainResult.runId { c["runId"] = s(runId) }
            c["finalStepHash"] = s(chainResult.finalStepHash)
            if let breakAt = chainResult.breakAt { c["breakAt"] = .number(Double(breakAt)) }
            if let e = chainResult.expected { c["expected"] = s(e) }
            if let f = chainResult.found { c["found"] = s(f) }
            if !chainResult.missingStepIndexes.isEmpty {
                c["missingStepIndexes"] = .array(chainResult.missingStepIndexes.map { .number(Double($0)) })
            }
            c["errors"] = .array(chainResult.errors.map { s($0) })
            o["chain"] = .object(c)
        }
        o["errors"] = .array(findings.map { s($0.message) })
        o["warnings"] = .array(warnings.map { s($0) })
        if !steps.isEmpty { o["steps"] = .array(steps.map { $0.json(verifier: verifier) }) }
        if let verifiedAt { o["verifiedAt"] = s(verifiedAt) }
        o["verifier"] = s(verifier)
        return .object(o)
    }

    /// The layers in output order, with their names.
    public var namedLayers: [(String, LayerCheck)] {
        var out = [
            ("bundleIntegrity", bundleIntegrity), ("nodeSignature", nodeSignature), ("receiptConsistency", receiptConsistency),
            ("verificationEnvelope", verificationEnvelope), ("timestamp", timestamp),
        ]
        if kind == .run || chain.status != .skipped || chainResult != nil { out.append(("chain", chain)) }
        return out
    }

    /// The AIEF §9.1 report: `{result, reason, checks{schemaSupported, integrityValid, protectedSetValid, chainValid}}`.
    public func aiefJSON() -> JSONValue {
        let integrityCode = bundleIntegrity.code
        let schemaSupported = ![CerVerifyCode.schemaError, .canonicalizationError, .unsupportedBundleType].contains(integrityCode ?? .ok)
            && !steps.contains { [CerVerifyCode.schemaError, .canonicalizationError].contains($0.bundleIntegrity.code ?? .ok) }
        let integrityValid = bundleIntegrity.status != .fail && status != .degraded
        let protectedSetValid = integrityValid && !findings.contains { $0.message.contains("protectedFieldMissing") }
        let chainValid = chain.status != .fail
        var o = JSONObject()
        o["result"] = status == .verified ? "PASS" : "FAIL"
        var reason: String? = status == .verified ? nil : code.aiefReason
        if findings.contains(where: { $0.message.contains("protectedFieldMissing") }) { reason = "protectedFieldMissing" }
        o["reason"] = reason.map { .string(JSONString($0)) } ?? .null
        o["checks"] = [
            "schemaSupported": .bool(schemaSupported), "integrityValid": .bool(integrityValid),
            "protectedSetValid": .bool(protectedSetValid), "chainValid": .bool(chainValid),
        ]
        if status != .verified {
            if let f = findings.first(where: { $0.field != nil || $0.expected != nil }) {
                if let field = f.field { o["field"] = .string(JSONString(field)) }
                if let e = f.expected { o["expected"] = .string(JSONString(e)) }
                if let x = f.observed { o["observed"] = .string(JSONString(x)) }
            }
            let notes = namedLayers.filter { $0.1.status == .fail }.map { "\($0.0): \($0.1.message)" } + warnings
            o["notes"] = .array(notes.map { .string(JSONString($0)) })
        }
        return .object(o)
    }
}
