/// Seals the steps of a multi-step run, chaining each step to the previous one (the SDK's `RunBuilder`).
public struct RunBuilder: Sendable {
    public let runId: String?
    public let workflowId: String?
    public private(set) var bundles: [JSONObject] = []
    public private(set) var stepIds: [String?] = []

    public init(runId: String?, workflowId: String? = nil) {
        self.runId = runId
        self.workflowId = workflowId
    }

    /// Seals the next step: sets `runId`, `workflowId`, `stepIndex` and `prevStepHash` (omitted on step 0).
    @discardableResult
    public mutating func step(_ parameters: CertifyParameters) throws(CreationError) -> JSONObject {
        var p = parameters
        p.runId = runId
        p.workflowId = workflowId
        p.stepIndex = bundles.count
        p.prevStepHash = bundles.last?["certificateHash"]?.stringValue
        let bundle = try CERBuilder.certifyDecision(p)
        bundles.append(bundle)
        stepIds.append(p.stepId)
        return bundle
    }

    /// `{runId, stepCount, steps, finalStepHash}`.
    public func finalize() -> RunSummary {
        let steps = bundles.enumerated().map { i, b in
            RunSummary.Step(
                stepIndex: i, stepId: stepIds[i], executionId: b["snapshot"]?["executionId"]?.stringValue,
                certificateHash: b["certificateHash"]?.stringValue ?? "")
        }
        return RunSummary(runId: runId, workflowId: workflowId, stepCount: bundles.count, steps: steps, finalStepHash: steps.last?.certificateHash)
    }
}
