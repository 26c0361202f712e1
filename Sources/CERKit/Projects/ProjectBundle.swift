/// One step's result inside a project-bundle verification.
public struct ProjectStepResult: Sendable, Equatable {
    public var stepId: String
    public var sequence: Int?
    public var executionId: String?
    public var certificateHash: String?
    public var code: CerVerifyCode
    public var errors: [String]
    public var ok: Bool { code == .ok }
}

/// The result of `verifyProjectBundle` (PROTOCOL.md §4.3).
public struct ProjectBundleResult: Sendable, Equatable {
    public var code: CerVerifyCode
    public var errors: [String]
    public var projectHash: String?
    public var computedProjectHash: String?
    public var projectHashValid: Bool?
    public var structuralValid: Bool
    public var totalSteps: Int?
    public var steps: [ProjectStepResult]
    public var ok: Bool { code == .ok }
    public var passedSteps: Int { steps.filter(\.ok).count }
    public var failedSteps: Int { steps.count - passedSteps }
}

/// Project bundles `cer.project.bundle.v1`: projectHash and the SDK's `verifyProjectBundle`.
public enum ProjectBundle {
    /// The projectHash preimage (§2.7): constants, the copied fields, and optional ones when present.
    public static func hashPayload(_ b: JSONObject) -> JSONValue {
        var q = JSONObject()
        q["bundleType"] = .string(JSONString(BundleType.projectBundle))
        q["version"] = "0.1"
        q["protocolVersion"] = "1.2.0"
        for field in ["projectBundleId", "projectTitle", "startedAt", "completedAt", "totalSteps", "stepRegistry"] {
            if let v = b[field] { q[field] = v }
        }
        for field in ["projectGoal", "projectSummary", "appName", "frameworkName"] {
            if let v = b[field] { q[field] = v }
        }
        if let tags = b["tags"], let a = tags.arrayValue, !a.isEmpty { q["tags"] = tags }
        return .object(q)
    }

    /// `sha256:` hash of the projectHash preimage.
    public static func computeProjectHash(_ b: JSONObject) throws(CanonicalizationError) -> String {
        try ProtocolHash.canonical(hashPayload(b), profile: .nexartV1)
    }

    /// Verifies a project bundle with the SDK's rules and code priority.
    public static func verify(_ value: JSONValue) -> ProjectBundleResult {
        var result = ProjectBundleResult(
            code: .ok, errors: [], projectHash: nil, computedProjectHash: nil, projectHashValid: nil, structuralValid: true,
            totalSteps: nil, steps: [])
        guard let b = value.objectValue, b["bundleType"]?.stringValue == BundleType.projectBundle else {
            result.code = .schemaError
            result.structuralValid = false
            result.errors = ["bundleType must be \"\(BundleType.projectBundle)\""]
            return result
        }
        var projectErrors: [String] = []
        if b["version"]?.stringValue != "0.1" { projectErrors.append("version must be \"0.1\"") }
        if b["protocolVersion"]?.stringValue != "1.2.0" { projectErrors.append("protocolVersion must be \"1.2.0\"") }
        for field in ["projectBundleId", "projectTitle", "startedAt", "completedAt"] where b[field]?.nonEmptyString == nil {
            projectErrors.append("\(field) must be a non-empty string")
        }
        let integrity = b["integrity"]?.objectValue
        let claimedHash = integrity?["projectHash"]?.stringValue
        result.projectHash = claimedHash
        let integrityWellFormed = claimedHash?.hasPrefix(ProtocolHash.prefix) == true
            && integrity?["algorithm"]?.stringValue == "sha256-canonical-json"
        if !integrityWellFormed {
            projectErrors.append("integrity must hold algorithm \"sha256-canonical-json\" and a sha256: projectHash")
        }
        guard let registry = b["stepRegistry"]?.arrayValue, !registry.isEmpty else {
            result.code = .schemaError
            result.structuralValid = false
            result.errors = projectErrors + ["stepRegistry must be a non-empty array"]
            return result
        }
        guard let embedded = b["embeddedBundles"]?.objectValue else {
            result.code = .schemaError
            result.structuralValid = false
            result.errors = projectErrors + ["embeddedBundles must be an object"]
            return result
        }
        result.totalSteps = b["totalSteps"]?.numberValue.map { Int($0) }
        if b["totalSteps"]?.numberValue != Double(registry.count) {
            projectErrors.append("totalSteps must equal the number of stepRegistry entries (\(registry.count))")
        }
        var stepIds = Set<String>()
        var executionIds = Set<String>()
        var sequences = Set<Int>()
        for (i, entry) in registry.enumerated() {
            guard let step = entry.objectValue, let stepId = step["stepId"]?.stringValue else {
                projectErrors.append("stepRegistry[\(i)].stepId must be a string")
                continue
            }
            if !stepIds.insert(stepId).inserted { projectErrors.append("stepRegistry[\(i)].stepId \(stepId) is duplicated") }
            if let e = step["executionId"]?.nonEmptyString {
                if !executionIds.insert(e).inserted { projectErrors.append("stepRegistry[\(i)].executionId \(e) is duplicated") }
            } else {
                projectErrors.append("stepRegistry[\(i)].executionId must be a non-empty string")
            }
            if let s = step["sequence"]?.numberValue, s >= 0, s == s.rounded(), s < 1e15 {
                if !sequences.insert(Int(s)).inserted { projectErrors.append("stepRegistry[\(i)].sequence \(Int(s)) is duplicated") }
            } else {
                projectErrors.append("stepRegistry[\(i)].sequence must be a non-negative integer")
            }
        }
        for (i, entry) in registry.enumerated() {
            for parent in entry["parentStepIds"]?.arrayValue ?? [] where !stepIds.contains(parent.stringValue ?? "\u{0}") {
                projectErrors.append("stepRegistry[\(i)].parentStepIds names an unknown step \(parent.stringValue ?? parent.typeName)")
            }
        }

        for entry in registry {
            guard let step = entry.objectValue, let stepId = step["stepId"]?.stringValue else { continue }
            var r = ProjectStepResult(
                stepId: stepId, sequence: step["sequence"]?.numberValue.map { Int($0) },
                executionId: step["executionId"]?.stringValue, certificateHash: step["certificateHash"]?.stringValue,
                code: .ok, errors: [])
            if let cer = embedded[stepId] {
                if cer["snapshot"]?["executionId"]?.stringValue != r.executionId {
                    r.code = .stepRegistryMismatch
                    r.errors.append("embedded bundle's snapshot.executionId does not match the registry's executionId")
                } else if cer["certificateHash"]?.stringValue != r.certificateHash {
                    r.code = .certificateHashMismatch
                    r.errors.append("embedded bundle's certificateHash does not match the registry's certificateHash")
                } else {
                    let v = CerVerifier.verify(cer)
                    r.code = v.code
                    r.errors = v.errors
                }
            } else {
                r.code = .stepRegistryMismatch
                r.errors.append("no embedded bundle for step \(stepId)")
            }
            result.steps.append(r)
        }

        var projectHashMismatch = false
        if integrityWellFormed, let claimedHash {
            do {
                let computed = try computeProjectHash(b)
                result.computedProjectHash = computed
                result.projectHashValid = computed == claimedHash
                if computed != claimedHash {
                    projectHashMismatch = true
                    projectErrors.append("integrity.projectHash mismatch: expected \(claimedHash), got \(computed)")
                }
            } catch {
                projectErrors.append(error.message)
                result.projectHashValid = false
            }
        }
        result.errors = projectErrors + result.steps.flatMap { s in s.errors.map { "step \(s.stepId): \($0)" } }
        let nonHashProjectErrors = projectErrors.count - (projectHashMismatch ? 1 : 0)
        if projectHashMismatch {
            result.code = .projectHashMismatch
        } else if result.steps.contains(where: { $0.code == .stepRegistryMismatch }) {
            result.code = .stepRegistryMismatch
        } else if result.steps.contains(where: { $0.code == .certificateHashMismatch }) {
            result.code = .certificateHashMismatch
        } else if nonHashProjectErrors > 0 {
            result.code = .schemaError
        } else if let failing = result.steps.first(where: { !$0.ok }) {
            result.code = failing.code
        }
        return result
    }

    /// The embedded CERs in registry `sequence` order.
    public static func embeddedBundlesInOrder(_ b: JSONObject) -> [JSONValue] {
        guard let registry = b["stepRegistry"]?.arrayValue, let embedded = b["embeddedBundles"]?.objectValue else { return [] }
        return registry
            .sorted { ($0["sequence"]?.numberValue ?? 0) < ($1["sequence"]?.numberValue ?? 0) }
            .compactMap { entry in entry["stepId"]?.stringValue.flatMap { embedded[$0] } }
    }
}
