/// The state of a run chain assembled from recorded steps, in any arrival order (PROTOCOL.md §4.1):
/// steps are ordered by `stepIndex`; step k's `prevStepHash` must be step k−1's certificate hash and
/// step 0 has none. Pure: the run projection feeds it the steps it holds.
public struct RunChainStatus: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public var certificateHash: String
        public var stepIndex: Int64?
        public var prevStepHash: String?
        public var workflowId: String?
        public var ledgerIndex: Int64

        public init(certificateHash: String, stepIndex: Int64?, prevStepHash: String?, workflowId: String?, ledgerIndex: Int64) {
            self.certificateHash = certificateHash
            self.stepIndex = stepIndex
            self.prevStepHash = prevStepHash
            self.workflowId = workflowId
            self.ledgerIndex = ledgerIndex
        }
    }

    public enum State: String, Sendable {
        case complete, broken, incomplete
    }

    public var runId: String
    /// Steps by step index, then by ledger index.
    public var steps: [Step]
    public var state: State
    /// `CHAIN_BREAK_DETECTED` or `INCOMPLETE_ARTIFACT` (nil when complete).
    public var code: String?
    /// The step index where the chain breaks, and the link it should have carried and carries.
    public var brokenAt: Int64?
    public var expected: String?
    public var found: String?
    /// Step indexes absent between 0 and the highest one recorded.
    public var missingStepIndexes: [Int64]
    /// Step indexes claimed by more than one certificate (e.g. a step of another run under this runId).
    public var conflictingStepIndexes: [Int64]
    /// Sentences naming every problem, in order.
    public var problems: [String]

    /// The last step's certificate hash, when the chain is complete.
    public var finalStepHash: String? { state == .complete ? steps.last?.certificateHash : nil }

    public static func evaluate(runId: String, steps unordered: [Step]) -> RunChainStatus {
        let steps = unordered.sorted { ($0.stepIndex ?? Int64.max, $0.ledgerIndex) < ($1.stepIndex ?? Int64.max, $1.ledgerIndex) }
        var s = RunChainStatus(
            runId: runId, steps: steps, state: .complete, code: nil, brokenAt: nil, expected: nil, found: nil, missingStepIndexes: [],
            conflictingStepIndexes: [], problems: [])
        func breakAt(_ k: Int64, expected: String?, found: String?, _ why: String) {
            s.problems.append(why)
            guard s.state != .broken else { return }
            s.state = .broken
            s.code = "CHAIN_BREAK_DETECTED"
            s.brokenAt = k
            s.expected = expected
            s.found = found
        }
        let indexed = steps.filter { $0.stepIndex != nil }
        for step in steps where step.stepIndex == nil {
            s.problems.append("step \(step.certificateHash) has no stepIndex")
        }
        var byIndex: [Int64: [Step]] = [:]
        for step in indexed { byIndex[step.stepIndex!, default: []].append(step) }
        let present = byIndex.keys.sorted()
        for k in present where byIndex[k]!.count > 1 {
            s.conflictingStepIndexes.append(k)
            let hashes = byIndex[k]!.map(\.certificateHash)
            breakAt(k, expected: nil, found: hashes.joined(separator: ", "), "step \(k) is claimed by \(hashes.count) certificates: \(hashes.joined(separator: ", "))")
        }
        if let workflow = indexed.first?.workflowId, let other = indexed.first(where: { $0.workflowId != workflow }) {
            breakAt(other.stepIndex!, expected: workflow, found: other.workflowId ?? "none", "step \(other.stepIndex!) has workflowId \(other.workflowId ?? "none"), not \(workflow)")
        }
        for k in present where byIndex[k]!.count == 1 {
            let step = byIndex[k]![0]
            if k == 0 {
                if let prev = step.prevStepHash { breakAt(0, expected: nil, found: prev, "step 0 links to \(prev), but the first step has no predecessor") }
                continue
            }
            guard let previous = byIndex[k - 1], previous.count == 1 else { continue }  // missing or conflicting: reported above
            if step.prevStepHash != previous[0].certificateHash {
                breakAt(k, expected: previous[0].certificateHash, found: step.prevStepHash,
                        "step \(k) links to \(step.prevStepHash ?? "nothing"), not to step \(k - 1) (\(previous[0].certificateHash))")
            }
        }
        if let last = present.last {
            let have = Set(present)
            s.missingStepIndexes = (0...last).filter { !have.contains($0) }
        }
        if !s.missingStepIndexes.isEmpty {
            s.problems.append("steps \(s.missingStepIndexes.map(String.init).joined(separator: ", ")) are missing")
            if s.state == .complete {
                s.state = .incomplete
                s.code = "INCOMPLETE_ARTIFACT"
            }
        }
        if steps.isEmpty || indexed.count < steps.count, s.state == .complete {
            s.state = .incomplete
            s.code = "INCOMPLETE_ARTIFACT"
        }
        return s
    }
}
