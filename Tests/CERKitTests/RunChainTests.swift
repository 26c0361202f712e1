import Testing
@testable import CERKit

/// verifyRunSummary semantics: complete runs, missing steps, tampered links, foreign steps, reordering.
@Suite struct RunChainTests {
    static func run(_ runId: String = "run-1", steps: Int = 4, prompt: String = "step") throws -> (RunBuilder, [JSONValue]) {
        var builder = RunBuilder(runId: runId, workflowId: "wf")
        for i in 0..<steps {
            try builder.step(CertifyParameters(
                executionId: "\(runId)-\(i)", timestamp: "2026-05-01T12:00:0\(i).000Z", createdAt: "2026-05-01T12:00:0\(i).500Z",
                provider: "p", model: "m", prompt: "\(prompt) \(i)", input: .string(JSONString("in \(i)")), output: .string(JSONString("out \(i)")),
                parameters: ["temperature": 0, "maxTokens": 10]))
        }
        return (builder, builder.bundles.map { .object($0) })
    }

    @Test func completeRunVerifies() throws {
        let (builder, bundles) = try Self.run()
        let result = RunChain.verify(bundles: bundles, summary: builder.finalize().json)
        #expect(result.ok)
        #expect(result.finalStepHash == bundles.last?["certificateHash"]?.stringValue)
        #expect(bundles[0]["snapshot"]?["prevStepHash"] == nil)
        #expect(ArtifactVerifier.verifyRun(bundles: bundles, summary: nil, options: .init()).status == .verified)
    }

    @Test func missingMiddleStepIsIncomplete() throws {
        let (builder, bundles) = try Self.run()
        var gapped = bundles
        gapped.remove(at: 1)
        let result = RunChain.verify(bundles: gapped)
        #expect(result.code == .incompleteArtifact)
        #expect(result.missingStepIndexes == [1])
        #expect(RunChain.verify(bundles: gapped, summary: builder.finalize().json).code == .incompleteArtifact)
        let report = ArtifactVerifier.verifyRun(bundles: gapped, summary: nil, options: .init())
        #expect(report.code == .incompleteArtifact)
        #expect(report.aiefJSON()["reason"] == "incompleteArtifact")
    }

    @Test func tamperedPrevStepHashBreaksTheChainAtThatStep() throws {
        let (_, bundles) = try Self.run()
        var tampered = bundles
        tampered[2] = tampered[2].replacing(at: ["snapshot", "prevStepHash"], with: .string(JSONString("sha256:" + String(repeating: "0", count: 64))))
        let result = RunChain.verify(bundles: tampered)
        #expect(result.code == .chainBreakDetected)
        #expect(result.breakAt == 2)
        #expect(result.expected == bundles[1]["certificateHash"]?.stringValue)
        let report = ArtifactVerifier.verifyRun(bundles: tampered, summary: nil, options: .init())
        #expect(report.code == .chainBreakDetected)
        #expect(report.steps[2].status == .failed)  // the step's own hash also breaks
        #expect(report.aiefJSON()["checks"]?["chainValid"] == false)
    }

    @Test func stepFromAnotherRunWithTheSameRunIdIsCaught() throws {
        let (_, bundles) = try Self.run()
        let (_, impostor) = try Self.run(prompt: "other")  // same runId, different content
        var mixed = bundles
        mixed[2] = impostor[2]
        let result = RunChain.verify(bundles: mixed)
        #expect(result.code == .chainBreakDetected)
        #expect(result.breakAt == 2)
        #expect(ArtifactVerifier.verifyRun(bundles: mixed, summary: nil, options: .init()).status == .failed)
    }

    @Test func reverseOrderIsPlacedByStepIndexButBreaksAgainstASummary() throws {
        let (builder, bundles) = try Self.run()
        let reversed = Array(bundles.reversed())
        #expect(ArtifactVerifier.verifyRun(bundles: reversed, summary: nil, options: .init()).status == .verified)
        #expect(RunChain.verify(bundles: reversed).code == .chainBreakDetected)
        let against = RunChain.verify(bundles: reversed, summary: builder.finalize().json)
        #expect(against.code == .chainBreakDetected)
        #expect(against.breakAt == 0)
    }

    @Test func summaryWithWrongStepCountIsIncomplete() throws {
        let (builder, bundles) = try Self.run()
        #expect(RunChain.verify(bundles: Array(bundles.dropLast()), summary: builder.finalize().json).code == .incompleteArtifact)
    }

    @Test func aiefMappingFollowsTheSDKTable() {
        #expect(CerVerifyCode.certificateHashMismatch.aiefReason == "integrityProofMismatch")
        #expect(CerVerifyCode.schemaError.aiefReason == "unsupportedSchema")
        #expect(CerVerifyCode.invalidSha256Format.aiefReason == "malformedArtifact")
        #expect(CerVerifyCode.attestationInvalidSignature.aiefReason == "signatureInvalid")
        #expect(CerVerifyCode.attestationKeyNotFound.aiefReason == "verificationMaterialUnavailable")
        #expect(CerVerifyCode.chainBreakDetected.aiefReason == "chainBreakDetected")
        #expect(CerVerifyCode.ok.aiefReason == nil)
    }
}
