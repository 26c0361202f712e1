/// What the verifier may use beyond the artifact itself.
public struct VerificationOptions: Sendable {
    /// The node's key manifest; without it the signature and envelope layers are SKIPPED.
    public var keys: NodeKeyManifest?
    /// Treat a missing signed receipt as a failure (`ATTESTATION_MISSING`) instead of SKIPPED.
    public var requireAttestation: Bool

    public init(keys: NodeKeyManifest? = nil, requireAttestation: Bool = false) {
        self.keys = keys
        self.requireAttestation = requireAttestation
    }
}

/// Detects what an artifact is and verifies every layer that applies (offline, no I/O).
public enum ArtifactVerifier {
    /// The kind of artifact a parsed document is.
    public static func detect(_ value: JSONValue) -> ArtifactKind {
        if let a = value.arrayValue { return a.isEmpty ? .unknown : .run }
        guard let o = value.objectValue else { return .unknown }
        if let cer = o["cer"], cer.objectValue != nil { return .cerPackage }
        if o["bundles"]?.arrayValue != nil { return .run }
        switch o["bundleType"]?.stringValue {
        case BundleType.projectBundle?: return .projectBundle
        case BundleType.governedExecution?: return .governedCer
        case BundleType.aiExecution?: return .aiCer
        default: return o["snapshot"]?["type"]?.stringValue == BundleType.aiSnapshot ? .aiCer : .unknown
        }
    }

    /// Verifies one parsed document of any supported kind.
    public static func verify(_ value: JSONValue, options: VerificationOptions = .init(), label: String? = nil) -> VerificationReport {
        var report: VerificationReport
        switch detect(value) {
        case .cerPackage:
            let package = value.objectValue!
            report = verifyCER(artifact: package, cer: package["cer"]!.objectValue!, kind: .cerPackage, options: options)
        case .aiCer, .governedCer:
            let cer = value.objectValue!
            report = verifyCER(artifact: cer, cer: cer, kind: detect(value), options: options)
        case .projectBundle:
            report = verifyProject(value, options: options)
        case .run:
            if let bundles = value.arrayValue {
                report = verifyRun(bundles: bundles, summary: nil, options: options)
            } else {
                report = verifyRun(bundles: value["bundles"]!.arrayValue!, summary: value["summary"], options: options)
            }
        case .unknown:
            report = VerificationReport(kind: .unknown)
            let what = value.objectValue != nil ? "bundleType \(CerVerifier.describe(value["bundleType"]))" : "a JSON \(value.typeName)"
            report.bundleIntegrity = .fail(
                .unsupportedBundleType,
                "not a CER, CER package, project bundle or run: \(what) is not a supported artifact")
            report.findings = [VerificationFinding(.unsupportedBundleType, report.bundleIntegrity.message)]
            report.conclude()
        }
        report.label = label
        return report
    }

    // MARK: - CERs and packages

    static func verifyCER(artifact: JSONObject, cer: JSONObject, kind: ArtifactKind, options: VerificationOptions) -> VerificationReport {
        var report = VerificationReport(kind: kind)
        report.bundleType = cer["bundleType"]?.stringValue
        let integrity = IntegrityVerifier.verify(.object(cer))
        report.protocolVersion = integrity.protocolVersion
        report.certificateHash = integrity.claimedCertificateHash
        report.computedCertificateHash = integrity.computedCertificateHash
        report.hashRule = integrity.matchedRule
        report.verificationScope = integrity.matchedRule == nil ? nil : integrity.scope
        report.isRedactedReseal = integrity.isRedactedReseal
        report.findings = integrity.findings
        report.warnings = integrity.warnings
        if integrity.isIntact || integrity.isDegraded {
            var message = "certificateHash recomputes (\(integrity.matchedRule?.rawValue ?? "?") rule)"
            if integrity.isRedactedReseal { message += "; redacted reseal: raw prompt/input/output are not in the bundle" }
            if integrity.isDegraded { message += "; the bundle's context is NOT covered by the hash (CONTEXT_NOT_PROTECTED)" }
            report.bundleIntegrity = .pass(message)
        } else {
            report.bundleIntegrity = .fail(integrity.code, integrity.findings.first?.message ?? integrity.code.rawValue)
        }
        if kind == .cerPackage, artifact["cer"]?["meta"]?["attestation"]?["receipt"] != nil, artifact["receipt"] != nil {
            report.warnings.append("the package's cer carries its own meta.attestation; the package-level receipt is the one verified")
        }

        let receipt = ReceiptLocator.find(in: artifact) ?? (kind == .cerPackage ? ReceiptLocator.find(in: cer) : nil)
        let envelope = VerificationEnvelope.find(in: artifact, cer: cer)
        verifyReceipt(receipt, artifact: artifact, cer: cer, envelope: envelope, options: options, into: &report)
        verifyEnvelope(envelope, receipt: receipt, cer: cer, options: options, into: &report)
        report.timestamp = TimestampCheck.check(artifact: artifact, cer: cer, certificateHash: integrity.claimedCertificateHash)
        report.conclude(degraded: integrity.isDegraded)
        return report
    }

    static func verifyReceipt(
        _ receipt: SignedReceipt?, artifact: JSONObject, cer: JSONObject, envelope: VerificationEnvelope.Located?,
        options: VerificationOptions, into report: inout VerificationReport
    ) {
        guard let receipt else {
            let legacy = ReceiptLocator.hasLegacyStamp(in: artifact) || ReceiptLocator.hasLegacyStamp(in: cer)
            let message = legacy
                ? "legacy stamp without a signed receipt (STAMP_LEGACY): only the issuing node can confirm it"
                : "no signed receipt in the artifact"
            if options.requireAttestation {
                report.nodeSignature = .fail(.attestationMissing, message)
            } else {
                report.nodeSignature = .skipped(message)
            }
            report.receiptConsistency = .skipped(message)
            return
        }
        guard let keys = options.keys else {
            let message = "receipt found at \(receipt.location), but no key manifest was given: it cannot be authenticated"
            report.nodeSignature = options.requireAttestation ? .fail(.verificationMaterialUnavailable, message) : .skipped(message)
            report.receiptConsistency = .skipped(message)
            return
        }
        // Layer 2a: signature with a key chosen fail-closed by kid.
        let signedAt = receipt.receiptObject?["attestedAt"]?.stringValue.flatMap(Timestamp.milliseconds)
        switch keys.select(kid: receipt.effectiveKid, signedAt: signedAt) {
        case .rejected(let code, let message):
            report.nodeSignature = .fail(code, message)
        case .usable(let key):
            if let signature = receipt.signature, let sigBytes = ReceiptSignature.decodeSignature(signature),
                let bytes = try? receipt.signedBytes(), let publicKey = key.publicKey,
                Ed25519.isValidSignature(sigBytes, of: bytes, publicKey: publicKey)
            {
                report.nodeSignature = .pass("Ed25519 receipt signature verifies with key \"\(key.kid)\"")
            } else {
                let why = receipt.signature == nil ? "the receipt has no signature" : "the Ed25519 signature over the canonical receipt does not verify with key \"\(key.kid)\""
                report.nodeSignature = .fail(.attestationInvalidSignature, why)
            }
        }
        // Layer 2b: the receipt belongs to this bundle and agrees with every other copy of its fields.
        var problems: [String] = []
        let claimed = cer["certificateHash"]?.stringValue
        if let r = receipt.receiptObject {
            let receiptHash = r["certificateHash"]?.stringValue
            if receiptHash == nil {
                problems.append("the receipt names no certificateHash")
            } else if receiptHash != claimed {
                problems.append("receipt.certificateHash \(receiptHash!) is not the bundle's \(claimed ?? "(none)")")
            }
            if let a = r["attestorKeyId"]?.stringValue, let k = receipt.kid, a != k {
                problems.append("receipt.attestorKeyId \(a) differs from the kid \(k) beside it")
            }
            for (name, summary) in [("attestation", artifact["attestation"]), ("meta.attestation", cer["meta"]?["attestation"])] {
                guard let s = summary?.objectValue, s["receipt"] == nil || name == "meta.attestation" else { continue }
                if let h = s["certificateHash"]?.stringValue, h != claimed {
                    problems.append("\(name).certificateHash differs from the bundle's certificateHash")
                }
                if let id = s["attestationId"]?.stringValue, let rid = r["attestationId"]?.stringValue, id != rid {
                    problems.append("\(name).attestationId differs from the receipt's")
                }
            }
            if let env = envelope?.envelope, !(envelope?.isLegacyV1 ?? true) {
                let kid = receipt.effectiveKid
                if let ek = env["kid"]?.stringValue, ek != kid { problems.append("verificationEnvelope.kid \(ek) differs from the receipt's kid") }
                let ea = env["attestation"]?.objectValue
                if let ek = ea?["kid"]?.stringValue, ek != kid { problems.append("verificationEnvelope.attestation.kid differs from the receipt's kid") }
                for field in ["attestationId", "attestedAt", "nodeRuntimeHash"] {
                    if let e = ea?[field]?.stringValue, let rv = r[field]?.stringValue, e != rv {
                        problems.append("verificationEnvelope.attestation.\(field) differs from the receipt's")
                    }
                }
            }
            if let manifestNode = keys.nodeId, let receiptNode = r["nodeId"]?.stringValue, manifestNode != receiptNode {
                problems.append("receipt.nodeId \(receiptNode) is not the key manifest's nodeId \(manifestNode)")
            }
        } else {
            problems.append("the receipt is not a JSON object")
        }
        report.receiptConsistency = problems.isEmpty
            ? .pass("receipt names this bundle's certificateHash; kids and attestation ids agree")
            : .fail(.receiptMismatch, problems.joined(separator: "; "))
    }

    static func verifyEnvelope(
        _ located: VerificationEnvelope.Located?, receipt: SignedReceipt?, cer: JSONObject, options: VerificationOptions,
        into report: inout VerificationReport
    ) {
        guard let located else { return }
        guard let keys = options.keys else {
            report.verificationEnvelope = .skipped("verification envelope found, but no key manifest was given")
            return
        }
        let algorithm = located.envelope["algorithm"]?.stringValue ?? "Ed25519"
        guard algorithm == "Ed25519" else {
            // Fail closed: an unsigned algorithm field must not be a way to switch this layer off.
            report.verificationEnvelope = .fail(
                .attestationKeyFormatUnsupported, "verification envelope algorithm \(algorithm) is not supported (Ed25519 only)")
            return
        }
        let kid = located.envelope["kid"]?.stringValue ?? located.envelope["attestation"]?["kid"]?.stringValue ?? receipt?.effectiveKid
        let signedAt = located.envelope["attestation"]?["attestedAt"]?.stringValue.flatMap(Timestamp.milliseconds)
        switch keys.select(kid: kid, signedAt: signedAt) {
        case .rejected(let code, let message):
            report.verificationEnvelope = .fail(code, message)
        case .usable(let key):
            guard let signature = located.signature, let sigBytes = ReceiptSignature.decodeSignature(signature) else {
                report.verificationEnvelope = .fail(.envelopeInvalidSignature, "the verification envelope has no readable signature")
                return
            }
            guard let bytes = try? VerificationEnvelope.signedBytes(located, cer: cer) else {
                report.verificationEnvelope = .fail(.canonicalizationError, "the envelope's signed fields have no canonical form")
                return
            }
            if let publicKey = key.publicKey, Ed25519.isValidSignature(sigBytes, of: bytes, publicKey: publicKey) {
                let scope = located.isLegacyV1 ? "v1" : (located.envelope["scope"]?.stringValue ?? "whitelist")
                report.verificationEnvelope = .pass("envelope signature (\(scope)) verifies with key \"\(key.kid)\"")
            } else {
                report.verificationEnvelope = .fail(.envelopeInvalidSignature, "the verification envelope's signature does not verify with key \"\(key.kid)\"")
            }
        }
    }

    // MARK: - Project bundles and runs

    static func verifyProject(_ value: JSONValue, options: VerificationOptions) -> VerificationReport {
        var report = VerificationReport(kind: .projectBundle)
        report.bundleType = BundleType.projectBundle
        let result = ProjectBundle.verify(value)
        report.projectHash = result.projectHash
        report.computedProjectHash = result.computedProjectHash
        report.findings = result.errors.map { VerificationFinding(result.code == .ok ? .unknownError : result.code, $0) }
        report.bundleIntegrity = result.ok
            ? .pass("projectHash recomputes; \(result.passedSteps) of \(result.steps.count) steps verify")
            : .fail(result.code, result.errors.first ?? result.code.rawValue)
        let b = value.objectValue!
        let embedded = b["embeddedBundles"]?.objectValue
        for step in result.steps {
            if let cer = embedded?[step.stepId] {
                var stepReport = verify(cer, options: options, label: step.stepId)
                if !step.ok, stepReport.bundleIntegrity.status == .pass {
                    stepReport.bundleIntegrity = .fail(step.code, step.errors.first ?? step.code.rawValue)
                    stepReport.conclude()
                }
                report.steps.append(stepReport)
            }
        }
        let ordered = ProjectBundle.embeddedBundlesInOrder(b)
        if ordered.contains(where: { $0["snapshot"]?["runId"] != nil || $0["snapshot"]?["prevStepHash"] != nil || $0["snapshot"]?["stepIndex"] != nil }) {
            let chain = RunChain.verify(bundles: ordered)
            report.chainResult = chain
            // verifyProjectBundle does not check prevStepHash continuity; we report it, but it does not decide.
            report.chain = chain.ok
                ? .pass("the \(ordered.count) embedded steps form an unbroken prevStepHash chain")
                : .skipped("embedded steps do not form one chain: \(chain.errors.first ?? "")")
            if !chain.ok { report.warnings.append("embedded steps do not form one run chain: \(chain.errors.joined(separator: "; "))") }
        }
        if let failingStep = report.steps.first(where: { $0.status == .failed }), result.ok {
            report.nodeSignature = .fail(failingStep.code, "step \(failingStep.label ?? "?"): \(failingStep.nodeSignature.message)")
        }
        report.conclude()
        return report
    }

    /// Verifies bundles as one run: each step, then the chain (optionally against a run summary).
    public static func verifyRun(bundles: [JSONValue], summary: JSONValue?, options: VerificationOptions) -> VerificationReport {
        var report = VerificationReport(kind: .run)
        let ordered = summary == nil ? RunChain.ordered(bundles) : bundles
        report.steps = ordered.enumerated().map { i, b in verify(b, options: options, label: "step \(i)") }
        let failing = report.steps.filter { $0.status == .failed }
        report.bundleIntegrity = failing.isEmpty
            ? .pass("all \(ordered.count) steps verify")
            : .fail(failing[0].code, "\(failing.count) of \(ordered.count) steps fail; first: \(failing[0].label ?? "?") \(failing[0].code.rawValue)")
        let chain = RunChain.verify(bundles: ordered, summary: summary)
        report.chainResult = chain
        report.chain = chain.ok
            ? .pass("\(ordered.count) steps form an unbroken chain ending at \(chain.finalStepHash ?? "?")")
            : .fail(chain.code, chain.errors.first ?? chain.code.rawValue)
        report.findings = chain.errors.map { VerificationFinding(chain.code, $0, expected: chain.expected, observed: chain.found) }
        report.conclude()
        // For a run, a broken or incomplete chain is the headline even when a step also fails.
        if !chain.ok { report.code = chain.code }
        return report
    }
}
