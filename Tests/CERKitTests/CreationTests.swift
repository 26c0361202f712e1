import Testing
@testable import CERKit

/// Building records: rebuilt real fixtures must reproduce their hashes exactly (an independent source).
@Suite struct CreationTests {
    /// The CertifyParameters that describe an existing bundle's snapshot.
    static func parameters(from bundle: JSONValue) -> CertifyParameters {
        let s = bundle["snapshot"]!
        var p = CertifyParameters(
            executionId: s["executionId"]!.stringValue!, timestamp: s["timestamp"]!.stringValue!,
            createdAt: bundle["createdAt"]!.stringValue!, provider: s["provider"]!.stringValue!, model: s["model"]!.stringValue!,
            prompt: s["prompt"]?.stringValue, input: s["input"], output: s["output"], parameters: s["parameters"],
            protocolVersion: s["protocolVersion"]!.stringValue!)
        p.modelVersion = s["modelVersion"]?.stringValue
        p.sdkVersion = s["sdkVersion"]?.stringValue
        p.appId = s["appId"]?.stringValue
        p.workflowId = s["workflowId"]?.stringValue
        p.stepIndex = s["stepIndex"]?.numberValue.map { Int($0) }
        p.prevStepHash = s["prevStepHash"]?.stringValue
        return p
    }

    @Test func certifyDecisionReproducesARealBundleByteForByte() throws {
        let fixture = try Fixture.value("cer-exec_4f531c38051aa623.json")
        let rebuilt = try CERBuilder.certifyDecision(Self.parameters(from: fixture))
        #expect(rebuilt["certificateHash"] == fixture["certificateHash"])
        #expect(rebuilt["snapshot"] == fixture["snapshot"])
    }

    @Test func runBuilderReproducesTheProjectFixturesChainAndProjectHash() throws {
        let fixture = try Fixture.object("test-project-bundle.json")
        let originals = ProjectBundle.embeddedBundlesInOrder(fixture)
        var run = RunBuilder(runId: nil, workflowId: originals[0]["snapshot"]!["workflowId"]!.stringValue)
        for original in originals {
            var p = Self.parameters(from: original)
            p.prevStepHash = nil  // RunBuilder sets the chain fields itself
            p.stepIndex = nil
            let step = try run.step(p)
            #expect(step["certificateHash"] == original["certificateHash"])
        }
        let summary = run.finalize()
        #expect(summary.stepCount == 3)
        #expect(summary.finalStepHash == originals[2]["certificateHash"]?.stringValue)
        #expect(RunChain.verify(bundles: run.bundles.map { .object($0) }, summary: summary.json).ok)

        let registry = fixture["stepRegistry"]!.arrayValue!
        let steps = zip(registry, run.bundles).map { entry, cer in
            ProjectStep(cer: cer, stepId: entry["stepId"]!.stringValue!, stepLabel: entry["stepLabel"]!.stringValue!,
                        parentStepIds: entry["parentStepIds"]?.arrayValue?.compactMap(\.stringValue))
        }
        let project = try ProjectBundleBuilder.make(
            projectBundleId: fixture["projectBundleId"]!.stringValue!, projectTitle: fixture["projectTitle"]!.stringValue!,
            startedAt: fixture["startedAt"]!.stringValue!, completedAt: fixture["completedAt"]!.stringValue!, steps: steps,
            projectGoal: fixture["projectGoal"]?.stringValue, projectSummary: fixture["projectSummary"]?.stringValue,
            appName: fixture["appName"]?.stringValue, frameworkName: fixture["frameworkName"]?.stringValue,
            tags: fixture["tags"]?.arrayValue?.compactMap(\.stringValue), finalOutputSummary: fixture["finalOutputSummary"]?.stringValue)
        #expect(project["integrity"] == fixture["integrity"])
    }

    static let base = CertifyParameters(
        executionId: "exec-42", timestamp: "2026-05-01T12:00:00.000Z", createdAt: "2026-05-01T12:00:00.500Z", provider: "anthropic",
        model: "claude", prompt: "Classify.", input: ["text": "hello", "n": 3], output: ["label": "greeting", "p": 0.97],
        parameters: ["temperature": 0.2, "maxTokens": 64])

    @Test func signalsAreBoundIntoTheHash() throws {
        var p = Self.base
        p.signals = [["type": "approval", "source": "ci", "actor": "alice", "payload": ["pr": 42]]]
        let bundle = try CERBuilder.certifyDecision(p)
        #expect(bundle["context"]?["signals"]?[0]?["status"] == "ok")
        #expect(CerVerifier.verify(.object(bundle)).ok)
        let tampered = JSONValue.object(bundle).replacing(at: ["context", "signals", "0", "actor"], with: "mallory")
        #expect(CerVerifier.verify(tampered).code == .certificateHashMismatch)
        #expect(ArtifactVerifier.verify(tampered).status != .verified)
        let without = try CERBuilder.certifyDecision(Self.base)
        #expect(without["certificateHash"] != bundle["certificateHash"])
        #expect(without["context"] == nil)
        #expect(try CERBuilder.contextHash(bundle["context"]!["signals"]!.arrayValue!).hasPrefix("sha256:"))
    }

    @Test func protocol130BundlesVerifyUnderTheWhitelistRule() throws {
        var p = Self.base
        p.protocolVersion = "1.3.0"
        p.signals = [["type": "t", "source": "s"]]
        let bundle = try CERBuilder.certifyDecision(p)
        let result = CerVerifier.verify(.object(bundle))
        #expect(result.ok)
        #expect(result.matchedRule == .aiWhitelist)
        // An SDK-style bundle with advisory context fields outside the hash still verifies (signals rule).
        var sdkStyle = bundle
        sdkStyle["context"] = ["signals": bundle["context"]!["signals"]!, "hasContext": true, "signalCount": 1]
        sdkStyle["contextSummary"] = ["count": 1]
        let sdkResult = CerVerifier.verify(.object(sdkStyle))
        #expect(sdkResult.ok)
        #expect(sdkResult.matchedRule == .aiSignals)
    }

    @Test func unknownProtocolVersionsFailClosed() throws {
        var p = Self.base
        p.protocolVersion = "1.4.0"
        #expect(throws: CreationError.self) { try CERBuilder.certifyDecision(p) }
        let bundle = JSONValue.object(try CERBuilder.certifyDecision(Self.base)).replacing(at: ["snapshot", "protocolVersion"], with: "1.4.0")
        let report = ArtifactVerifier.verify(bundle)
        #expect(report.code == .schemaError)
        #expect(report.reasonCodes == ["SCHEMA_VERSION_UNSUPPORTED"])
    }

    @Test func hashOnlySubmissionsSealAndVerifyAsCommitments() throws {
        var p = Self.base
        p.input = nil
        p.inputHash = "sha256:" + String(repeating: "ab", count: 32)
        let bundle = try CERBuilder.certifyDecision(p)
        #expect(bundle["snapshot"]?["input"] == nil)
        #expect(ArtifactVerifier.verify(.object(bundle)).status == .verified)
        p.input = "both"
        #expect(throws: CreationError.self) { try CERBuilder.certifyDecision(p) }
    }

    @Test func invalidFieldsAreRefusedWithASentence() {
        var p = Self.base
        p.parameters = ["temperature": 0.2]
        let error = #expect(throws: CreationError.self) { try CERBuilder.certifyDecision(p) }
        #expect(error?.message == "parameters.maxTokens must be a finite number")
        p = Self.base
        p.provider = ""
        #expect(throws: CreationError.self) { try CERBuilder.certifyDecision(p) }
        p = Self.base
        p.signals = [["type": "x"]]
        #expect(throws: CreationError.self) { try CERBuilder.certifyDecision(p) }
    }

    @Test func redactBeforeSealKeepsTheBundleVerifiable() throws {
        let snapshot = try CERBuilder.createSnapshot(Self.base)
        let redacted = try Redaction.redactBeforeSeal(snapshot, paths: ["input", "output"])
        #expect(redacted["input"]?["_redacted"] == true)
        #expect(redacted["input"]?["hash"]?.stringValue == (try ProtocolHash.value(snapshot["input"]!)))
        let bundle = try CERBuilder.seal(snapshot: redacted, createdAt: Self.base.createdAt)
        #expect(CerVerifier.verify(.object(bundle)).ok)
        #expect(throws: CreationError.self) { try Redaction.redactBeforeSeal(snapshot, paths: ["prompt"]) }
    }

    @Test func verifiableRedactedExportIsANewVerifiableRecord() throws {
        let original = try CERBuilder.certifyDecision(Self.base)
        let (copy, originalHash) = try Redaction.exportVerifiableRedacted(original, paths: ["output"], redactedAt: "2026-06-01T00:00:00Z")
        #expect(originalHash == original["certificateHash"]?.stringValue)
        #expect(copy["certificateHash"] != original["certificateHash"])
        #expect(copy["meta"]?["provenance"]?["originalCertificateHash"]?.stringValue == originalHash)
        #expect(ArtifactVerifier.verify(.object(copy)).status == .verified)
        #expect(copy["snapshot"]?["input"] == original["snapshot"]?["input"])
    }

    @Test func toolCallsAreHashedAndBound() throws {
        let event = try CERBuilder.makeToolEvent(toolId: "search", at: "2026-05-01T12:00:00Z", output: "result", input: ["q": "x"])
        #expect(event["outputHash"]?.stringValue == (try ProtocolHash.value("result")))
        var p = Self.base
        p.toolCalls = [event]
        let bundle = try CERBuilder.certifyDecision(p)
        let tampered = JSONValue.object(bundle).replacing(at: ["snapshot", "toolCalls", "0", "outputHash"], with: .string(JSONString(try ProtocolHash.value("forged"))))
        #expect(CerVerifier.verify(tampered).code == .certificateHashMismatch)
    }

    @Test func packagesWrapWithoutChangingTheCer() throws {
        let cer = try CERBuilder.certifyDecision(Self.base)
        let package = CERPackage.make(cer: cer)
        #expect(CERPackage.isPackage(.object(package)))
        #expect(CERPackage.cer(of: .object(package)) == cer)
        #expect(ArtifactVerifier.verify(.object(package)).kind == .cerPackage)
    }
}
