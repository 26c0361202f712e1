import CERKit

/// The person-readable form of a report: one line per layer, then the verdict.
enum TextReport {
    static func render(_ r: VerificationReport, indent: String = "") -> String {
        var lines: [String] = []
        var title = "\(indent)\(r.label ?? "artifact"): \(kindName(r.kind))"
        if let v = r.protocolVersion { title += ", protocol \(v)" }
        if r.isRedactedReseal { title += ", redacted reseal" }
        lines.append(title)
        let names = [
            "bundleIntegrity": "bundle integrity", "nodeSignature": "node signature", "receiptConsistency": "receipt consistency",
            "verificationEnvelope": "verification envelope", "timestamp": "timestamp", "chain": "run chain",
        ]
        for (name, layer) in r.namedLayers {
            let label = (names[name] ?? name).padding(21)
            let status = layer.status.rawValue.padding(8)
            let code = layer.code.map { "[\($0.rawValue)] " } ?? ""
            lines.append("\(indent)  \(label) \(status) \(code)\(layer.message)")
        }
        if let h = r.certificateHash ?? r.projectHash { lines.append("\(indent)  claimed hash          \(h)") }
        if let c = r.computedCertificateHash ?? r.computedProjectHash, c != (r.certificateHash ?? r.projectHash) {
            lines.append("\(indent)  computed hash         \(c)")
        }
        for f in r.findings.prefix(8) where r.status != .verified { lines.append("\(indent)  error: \(f.message)") }
        for w in r.warnings { lines.append("\(indent)  warning: \(w)") }
        var out = lines.joined(separator: "\n") + "\n"
        for step in r.steps {
            out += render(step, indent: indent + "    ")
        }
        out += "\(indent)\(verdict(r))\n"
        return out
    }

    static func verdict(_ r: VerificationReport) -> String {
        switch r.status {
        case .verified: return "VERIFIED (OK)"
        case .failed:
            let reasons = r.reasonCodes.isEmpty ? "" : " — " + r.reasonCodes.joined(separator: ", ")
            return "NOT VERIFIED: \(r.code.rawValue)\(reasons)"
        case .degraded: return "DEGRADED: CONTEXT_NOT_PROTECTED — the hash matches, but the bundle's context is not covered by it"
        }
    }

    static func kindName(_ kind: ArtifactKind) -> String {
        switch kind {
        case .aiCer: return "AI CER"
        case .governedCer: return "governed CER"
        case .cerPackage: return "CER package"
        case .projectBundle: return "project bundle"
        case .run: return "run"
        case .unknown: return "unrecognised artifact"
        }
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
