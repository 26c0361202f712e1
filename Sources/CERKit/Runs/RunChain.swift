/// The result of checking that step bundles form one unbroken run (`verifyRunSummary`, PROTOCOL.md §4.1).
public struct RunChainResult: Sendable, Equatable {
    public var code: CerVerifyCode
    public var errors: [String]
    /// Index of the first broken link, when the chain breaks.
    public var breakAt: Int?
    /// The hash the broken link should have carried, and what it carried.
    public var expected: String?
    public var found: String?
    /// Step indexes absent from the run.
    public var missingStepIndexes: [Int]
    public var runId: String?
    public var stepCount: Int
    public var finalStepHash: String?
    public var ok: Bool { code == .ok }
}

/// A run summary as `RunBuilder.finalize()` returns it.
public struct RunSummary: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public var stepIndex: Int
        public var stepId: String?
        public var executionId: String?
        public var certificateHash: String
    }
    public var runId: String?
    public var workflowId: String?
    public var stepCount: Int
    public var steps: [Step]
    public var finalStepHash: String?

    /// The JSON form `{runId, workflowId?, stepCount, steps, finalStepHash}`.
    public var json: JSONValue {
        var o = JSONObject()
        if let runId { o["runId"] = .string(JSONString(runId)) }
        if let workflowId { o["workflowId"] = .string(JSONString(workflowId)) }
        o["stepCount"] = .number(Double(stepCount))
        o["steps"] = .array(steps.map { s in
            var e = JSONObject()
            e["stepIndex"] = .number(Double(s.stepIndex))
            if let id = s.stepId { e["stepId"] = .string(JSONString(id)) }
            if let id = s.executionId { e["executionId"] = .string(JSONString(id)) }
            e["certificateHash"] = .string(JSONString(s.certificateHash))
            return .object(e)
        })
        o["finalStepHash"] = finalStepHash.map { .string(JSONString($0)) } ?? .null
        return .object(o)
    }
}

/// Run-chain rules: step n's `snapshot.prevStepHash` is step n−1's certificateHash, `stepIndex` is the
/// 0-based position, and all steps share `runId` and `workflowId`.
public enum RunChain {
    /// Checks bundles given in step order, optionally against the run's summary (`summary` JSON).
    public static func verify(bundles: [JSONValue], summary: JSONValue? = nil) -> RunChainResult {
        var r = RunChainResult(
            code: .ok, errors: [], breakAt: nil, expected: nil, found: nil, missingStepIndexes: [],
            runId: bundles.first?["snapshot"]?["runId"]?.stringValue, stepCount: bundles.count,
            finalStepHash: bundles.last?["certificateHash"]?.stringValue)
        func breakChain(_ i: Int, _ message: String, expected: String? = nil, found: String? = nil) {
            guard r.breakAt == nil else { return }
            r.code = .chainBreakDetected
            r.breakAt = i
            r.expected = expected
            r.found = found
            r.errors.append(message)
        }
        if let summary {
            let count = summary["stepCount"]?.numberValue.map { Int($0) }
            if count != bundles.count {
                r.code = .incompleteArtifact
                r.errors.append("run summary declares \(count.map(String.init) ?? "no") steps but \(bundles.count) bundles were given")
                return r
            }
            let steps = summary["steps"]?.arrayValue ?? []
            for (i, bundle) in bundles.enumerated() {
                let claimed = i < steps.count ? (steps[i]["certificateHash"]?.stringValue ?? steps[i].stringValue) : nil
                let actual = bundle["certificateHash"]?.stringValue
                if claimed != actual {
                    breakChain(i, "summary step \(i) names \(claimed ?? "nothing") but bundle \(i) is \(actual ?? "unhashed")", expected: claimed, found: actual)
                }
            }
            if let final = summary["finalStepHash"]?.stringValue, final != bundles.last?["certificateHash"]?.stringValue {
                breakChain(bundles.count - 1, "finalStepHash \(final) is not the last step's certificateHash",
                           expected: final, found: bundles.last?["certificateHash"]?.stringValue)
            }
        }
        // Gaps: step indexes must be exactly 0..<n.
        let indexes = bundles.compactMap { $0["snapshot"]?["stepIndex"]?.numberValue.map { Int($0) } }
        if indexes.count == bundles.count, let maxIndex = indexes.max() {
            let present = Set(indexes)
            let missing = (0...maxIndex).filter { !present.contains($0) }
            if !missing.isEmpty, summary == nil {
                r.code = .incompleteArtifact
                r.missingStepIndexes = missing
                r.errors.append("steps \(missing.map(String.init).joined(separator: ", ")) of the run are missing")
                return r
            }
        }
        let runId = bundles.first?["snapshot"]?["runId"]
        let workflowId = bundles.first?["snapshot"]?["workflowId"]
        for (i, bundle) in bundles.enumerated() {
            let snapshot = bundle["snapshot"]
            if let stepIndex = snapshot?["stepIndex"], stepIndex != .number(Double(i)) {
                breakChain(i, "step \(i) carries stepIndex \(stepIndex.numberValue.map { String(Int($0)) } ?? stepIndex.typeName)")
            }
            if snapshot?["runId"] != runId { breakChain(i, "step \(i) belongs to another run (runId differs)") }
            if snapshot?["workflowId"] != workflowId { breakChain(i, "step \(i) belongs to another workflow (workflowId differs)") }
            let prev = snapshot?["prevStepHash"]
            if i == 0 {
                if let prev, !prev.isNull { breakChain(0, "the first step has a prevStepHash", found: prev.stringValue) }
            } else {
                let expected = bundles[i - 1]["certificateHash"]?.stringValue
                if prev?.stringValue != expected {
                    breakChain(i, "step \(i)'s prevStepHash is not step \(i - 1)'s certificateHash", expected: expected, found: prev?.stringValue)
                }
            }
        }
        return r
    }

    /// Orders bundles by `snapshot.stepIndex` when every bundle has one (stable otherwise).
    public static func ordered(_ bundles: [JSONValue]) -> [JSONValue] {
        guard bundles.allSatisfy({ $0["snapshot"]?["stepIndex"]?.numberValue != nil }) else { return bundles }
        return bundles.enumerated().sorted {
            let a = $0.element["snapshot"]!["stepIndex"]!.numberValue!, b = $1.element["snapshot"]!["stepIndex"]!.numberValue!
            return a != b ? a < b : $0.offset < $1.offset
        }.map(\.element)
    }
}
