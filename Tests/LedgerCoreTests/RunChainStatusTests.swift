import LedgerCore
import Testing

@Suite struct RunChainStatusTests {
    static func h(_ n: Int) -> String { "sha256:" + String(repeating: String(n % 10), count: 64) }
    static func step(_ i: Int64?, _ hash: Int, prev: Int?, workflow: String = "wf", at index: Int64 = 0) -> RunChainStatus.Step {
        RunChainStatus.Step(certificateHash: h(hash), stepIndex: i, prevStepHash: prev.map(h), workflowId: workflow, ledgerIndex: index)
    }

    @Test func aCompleteChainInAnyOrder() {
        let steps = [Self.step(2, 3, prev: 2, at: 10), Self.step(0, 1, prev: nil, at: 11), Self.step(1, 2, prev: 1, at: 12)]
        let s = RunChainStatus.evaluate(runId: "r", steps: steps)
        #expect(s.state == .complete && s.code == nil && s.problems.isEmpty)
        #expect(s.steps.map(\.stepIndex) == [0, 1, 2] && s.finalStepHash == Self.h(3))
    }

    @Test func aMissingStepMakesItIncomplete() {
        let s = RunChainStatus.evaluate(runId: "r", steps: [Self.step(0, 1, prev: nil), Self.step(2, 3, prev: 2)])
        #expect(s.state == .incomplete && s.code == "INCOMPLETE_ARTIFACT" && s.missingStepIndexes == [1] && s.finalStepHash == nil)
    }

    @Test func aWrongLinkBreaksItAtThatStep() {
        let s = RunChainStatus.evaluate(runId: "r", steps: [Self.step(0, 1, prev: nil), Self.step(1, 2, prev: 7), Self.step(2, 3, prev: 2)])
        #expect(s.state == .broken && s.code == "CHAIN_BREAK_DETECTED" && s.brokenAt == 1)
        #expect(s.expected == Self.h(1) && s.found == Self.h(7))
    }

    @Test func aFirstStepWithAPredecessorIsABreak() {
        let s = RunChainStatus.evaluate(runId: "r", steps: [Self.step(0, 1, prev: 5)])
        #expect(s.state == .broken && s.brokenAt == 0 && s.found == Self.h(5))
    }

    @Test func twoCertificatesClaimingOneStepIsABreak() {
        let s = RunChainStatus.evaluate(runId: "r", steps: [Self.step(0, 1, prev: nil), Self.step(1, 2, prev: 1), Self.step(1, 4, prev: 1, at: 9)])
        #expect(s.state == .broken && s.conflictingStepIndexes == [1] && s.brokenAt == 1)
    }

    @Test func anotherWorkflowIsABreak() {
        let s = RunChainStatus.evaluate(runId: "r", steps: [Self.step(0, 1, prev: nil), Self.step(1, 2, prev: 1, workflow: "other")])
        #expect(s.state == .broken && s.brokenAt == 1 && s.expected == "wf" && s.found == "other")
    }

    @Test func aStepWithoutAnIndexIsReportedAndTheRunIsIncomplete() {
        let s = RunChainStatus.evaluate(runId: "r", steps: [Self.step(0, 1, prev: nil), Self.step(nil, 2, prev: 1)])
        #expect(s.state == .incomplete && s.problems.contains { $0.contains("no stepIndex") })
    }
}
