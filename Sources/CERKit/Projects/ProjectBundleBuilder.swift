/// One step to place in a project bundle.
public struct ProjectStep: Sendable {
    public var cer: JSONObject
    public var stepId: String
    public var stepLabel: String
    public var parentStepIds: [String]?
    public init(cer: JSONObject, stepId: String, stepLabel: String, parentStepIds: [String]? = nil) {
        self.cer = cer
        self.stepId = stepId
        self.stepLabel = stepLabel
        self.parentStepIds = parentStepIds
    }
}

/// Assembles project bundles (the SDK's `createProjectBundle`); identifiers are passed in (no randomness here).
public enum ProjectBundleBuilder {
    /// A finished bundle with its registry, embedded CERs and `integrity.projectHash`; re-verified before return.
    public static func make(
        projectBundleId: String, projectTitle: String, startedAt: String, completedAt: String, steps: [ProjectStep],
        projectGoal: String? = nil, projectSummary: String? = nil, appName: String? = nil, frameworkName: String? = nil,
        tags: [String]? = nil, finalOutputSummary: String? = nil
    ) throws(CreationError) -> JSONObject {
        guard !steps.isEmpty else { throw CreationError(.schemaError, "a project bundle needs at least one step") }
        func s(_ v: String) -> JSONValue { .string(JSONString(v)) }
        var b = JSONObject()
        b["bundleType"] = s(BundleType.projectBundle)
        b["version"] = "0.1"
        b["protocolVersion"] = "1.2.0"
        b["projectBundleId"] = s(projectBundleId)
        b["projectTitle"] = s(projectTitle)
        if let projectGoal { b["projectGoal"] = s(projectGoal) }
        if let projectSummary { b["projectSummary"] = s(projectSummary) }
        b["startedAt"] = s(startedAt)
        b["completedAt"] = s(completedAt)
        b["totalSteps"] = .number(Double(steps.count))
        var registry: [JSONValue] = []
        var embedded = JSONObject()
        for (i, step) in steps.enumerated() {
            let snapshot = step.cer["snapshot"]
            var e = JSONObject()
            e["stepId"] = s(step.stepId)
            e["sequence"] = .number(Double(i))
            e["stepLabel"] = s(step.stepLabel)
            e["stepType"] = "decision"
            e["executionId"] = snapshot?["executionId"] ?? .null
            e["certificateHash"] = step.cer["certificateHash"] ?? .null
            e["recordedAt"] = step.cer["createdAt"] ?? .null
            var identity = JSONObject()
            identity["provider"] = snapshot?["provider"] ?? .null
            identity["model"] = snapshot?["model"] ?? .null
            if let mv = snapshot?["modelVersion"], !mv.isNull { identity["modelVersion"] = mv }
            e["modelIdentity"] = .object(identity)
            if let parents = step.parentStepIds { e["parentStepIds"] = .array(parents.map(s)) }
            registry.append(.object(e))
            embedded[step.stepId] = .object(step.cer)
        }
        b["stepRegistry"] = .array(registry)
        b["embeddedBundles"] = .object(embedded)
        if let finalOutputSummary { b["finalOutputSummary"] = s(finalOutputSummary) }
        if let appName { b["appName"] = s(appName) }
        if let frameworkName { b["frameworkName"] = s(frameworkName) }
        if let tags, !tags.isEmpty { b["tags"] = .array(tags.map(s)) }
        do {
            b["integrity"] = ["algorithm": "sha256-canonical-json", "projectHash": s(try ProjectBundle.computeProjectHash(b))]
        } catch {
            throw CreationError(.canonicalizationError, error.message)
        }
        let check = ProjectBundle.verify(.object(b))
        guard check.ok else { throw CreationError(check.code, "the project bundle does not verify: \(check.errors.first ?? check.code.rawValue)") }
        return b
    }
}
