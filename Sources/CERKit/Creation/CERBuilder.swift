/// Why a CER could not be built from the given fields.
public struct CreationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: CerVerifyCode
    public var message: String
    public var description: String { message }
    public init(_ code: CerVerifyCode, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// The raw fields of one AI call, as `certifyDecision` and `POST /v1/cer/ai/certify` take them.
public struct CertifyParameters: Sendable {
    public var executionId: String
    /// When the call ran (ISO-8601); CERKit has no clock, so callers pass it.
    public var timestamp: String
    /// When the record is sealed (ISO-8601).
    public var createdAt: String
    public var provider: String
    public var model: String
    public var modelVersion: String?
    public var prompt: String?
    /// Raw input, or nil when only `inputHash` is given (hash-bound omission).
    public var input: JSONValue?
    public var inputHash: String?
    public var output: JSONValue?
    public var outputHash: String?
    /// `{temperature, maxTokens, topP, seed}`.
    public var parameters: JSONValue?
    public var sdkVersion: String?
    public var appId: String?
    public var runId: String?
    public var stepId: String?
    public var stepIndex: Int?
    public var workflowId: String?
    public var conversationId: String?
    public var prevStepHash: String?
    public var toolCalls: [JSONValue]?
    /// Context signals, bound into the certificate hash when non-empty.
    public var signals: [JSONValue]?
    public var protocolVersion: String
    public var meta: JSONObject?
    public var declaration: JSONObject?

    public init(
        executionId: String, timestamp: String, createdAt: String, provider: String, model: String, prompt: String? = nil,
        input: JSONValue? = nil, output: JSONValue? = nil, parameters: JSONValue? = nil, protocolVersion: String = "1.2.0"
    ) {
        self.executionId = executionId
        self.timestamp = timestamp
        self.createdAt = createdAt
        self.provider = provider
        self.model = model
        self.prompt = prompt
        self.input = input
        self.output = output
        self.parameters = parameters
        self.protocolVersion = protocolVersion
    }
}

/// Building and sealing CERs (the SDK's `createSnapshot`, `sealCer`, `certifyDecision`).
public enum CERBuilder {
    /// The SDK version written into snapshots that do not name one.
    public static let defaultSDKVersion = "0.22.0"

    /// A snapshot with every field in the SDK's construction order and its input/output hashes.
    public static func createSnapshot(_ p: CertifyParameters) throws(CreationError) -> JSONObject {
        guard let profile = CanonicalizationProfile.forProtocolVersion(p.protocolVersion) else {
            throw CreationError(.schemaError, "protocolVersion \(p.protocolVersion) is not supported (1.2.0, 1.3.0, 1.3.1)")
        }
        for (name, value) in [("executionId", p.executionId), ("timestamp", p.timestamp), ("provider", p.provider), ("model", p.model)]
        where value.isEmpty {
            throw CreationError(.schemaError, "\(name) must be a non-empty string")
        }
        func s(_ v: String?) -> JSONValue { v.map { .string(JSONString($0)) } ?? .null }
        var snap = JSONObject()
        snap["type"] = .string(JSONString(BundleType.aiSnapshot))
        snap["protocolVersion"] = s(p.protocolVersion)
        snap["executionSurface"] = "ai"
        snap["executionId"] = s(p.executionId)
        snap["timestamp"] = s(p.timestamp)
        snap["provider"] = s(p.provider)
        snap["model"] = s(p.model)
        snap["modelVersion"] = s(p.modelVersion)
        if let prompt = p.prompt { snap["prompt"] = s(prompt) }
        try bind(value: p.input, hash: p.inputHash, name: "input", profile: profile, into: &snap)
        snap["parameters"] = try normalizedParameters(p.parameters)
        try bind(value: p.output, hash: p.outputHash, name: "output", profile: profile, into: &snap)
        snap["sdkVersion"] = s(p.sdkVersion ?? defaultSDKVersion)
        snap["appId"] = s(p.appId)
        // Chain fields are omitted, not null, when unset: real bundles omit them and the hash differs.
        if let v = p.runId { snap["runId"] = s(v) }
        if let v = p.stepId { snap["stepId"] = s(v) }
        if let v = p.stepIndex { snap["stepIndex"] = .number(Double(v)) }
        if let v = p.workflowId { snap["workflowId"] = s(v) }
        if let v = p.conversationId { snap["conversationId"] = s(v) }
        if let v = p.prevStepHash {
            guard ProtocolHash.isWellFormed(v) else { throw CreationError(.invalidSha256Format, "prevStepHash must be sha256:<64 hex>") }
            snap["prevStepHash"] = s(v)
        }
        if let tools = p.toolCalls { snap["toolCalls"] = .array(tools) }
        return snap
    }

    static func bind(value: JSONValue?, hash: String?, name: String, profile: CanonicalizationProfile, into snap: inout JSONObject)
        throws(CreationError)
    {
        switch (value, hash) {
        case (let v?, nil) where !v.isNull:
            snap[name] = v
            do { snap["\(name)Hash"] = .string(JSONString(try ProtocolHash.value(v, profile: profile))) } catch {
                throw CreationError(.canonicalizationError, "\(name): \(error.message)")
            }
        case (nil, let h?), (.null?, let h?):
            guard ProtocolHash.isWellFormed(h) else { throw CreationError(.invalidSha256Format, "\(name)Hash must be sha256:<64 lowercase hex>") }
            snap["\(name)Hash"] = .string(JSONString(h))
        case (.some, .some):
            throw CreationError(.schemaError, "give either \(name) or \(name)Hash, not both")
        default:
            throw CreationError(.schemaError, "\(name) (or \(name)Hash) is required")
        }
    }

    static func normalizedParameters(_ value: JSONValue?) throws(CreationError) -> JSONValue {
        guard let o = value?.objectValue else {
            throw CreationError(.schemaError, "parameters must be an object with temperature and maxTokens")
        }
        var out = JSONObject()
        for field in ["temperature", "maxTokens"] {
            guard let n = o[field]?.numberValue, n.isFinite else {
                throw CreationError(.schemaError, "parameters.\(field) must be a finite number")
            }
            out[field] = .number(n)
        }
        for field in ["topP", "seed"] {
            switch o[field] {
            case nil, .null?: out[field] = .null
            case .number(let n)? where n.isFinite: out[field] = .number(n)
            default: throw CreationError(.schemaError, "parameters.\(field) must be a finite number or null")
            }
        }
        return .object(out)
    }

    /// Seals a snapshot into a bundle: `certificateHash` over `{bundleType, version, createdAt, snapshot,
    /// context?}`. `meta` and `declaration` are carried but never hashed. The result is re-verified.
    public static func seal(
        snapshot: JSONObject, createdAt: String, signals: [JSONValue]? = nil, meta: JSONObject? = nil, declaration: JSONObject? = nil
    ) throws(CreationError) -> JSONObject {
        let version = snapshot["protocolVersion"]?.stringValue ?? "1.2.0"
        guard let profile = CanonicalizationProfile.forProtocolVersion(version) else {
            throw CreationError(.schemaError, "snapshot.protocolVersion \(version) is not supported")
        }
        var bundle = JSONObject()
        bundle["bundleType"] = .string(JSONString(BundleType.aiExecution))
        bundle["certificateHash"] = ""
        bundle["createdAt"] = .string(JSONString(createdAt))
        bundle["version"] = .string(JSONString(BundleType.cerVersion))
        bundle["snapshot"] = .object(snapshot)
        if let signals, !signals.isEmpty {
            bundle["context"] = ["signals": .array(try normalizedSignals(signals, defaultTimestamp: snapshot["timestamp"]?.stringValue ?? createdAt))]
        }
        if let meta { bundle["meta"] = .object(meta) }
        if let declaration { bundle["declaration"] = .object(declaration) }
        do {
            let payload = profile == .jcsV1
                ? CertificateHash.whitelistPayload(bundle: bundle)
                : CertificateHash.aiPayload(bundle: bundle, snapshot: .object(snapshot), includeSignals: true)
            bundle["certificateHash"] = .string(JSONString(try ProtocolHash.canonical(payload, profile: profile)))
        } catch {
            throw CreationError(.canonicalizationError, error.message)
        }
        // Never hand out a record that our own verifier (the SDK's rules) would reject.
        let check = IntegrityVerifier.verify(.object(bundle))
        guard check.isIntact else {
            throw CreationError(check.code, "the sealed record does not satisfy the protocol: \(check.findings.first?.message ?? check.code.rawValue)")
        }
        return bundle
    }

    /// `createSnapshot` + `seal` in one call.
    public static func certifyDecision(_ p: CertifyParameters) throws(CreationError) -> JSONObject {
        try seal(snapshot: try createSnapshot(p), createdAt: p.createdAt, signals: p.signals, meta: p.meta, declaration: p.declaration)
    }

    /// Signals with every field present (`@nexart/signals` defaults: step = position, actor "unknown",
    /// status "ok", payload {}); `type` and `source` are required.
    public static func normalizedSignals(_ signals: [JSONValue], defaultTimestamp: String) throws(CreationError) -> [JSONValue] {
        var steps = Set<Double>()
        var out: [JSONValue] = []
        for (i, signal) in signals.enumerated() {
            guard var o = signal.objectValue else { throw CreationError(.schemaError, "signals[\(i)] must be an object") }
            for field in ["type", "source"] where o[field]?.nonEmptyString == nil {
                throw CreationError(.schemaError, "signals[\(i)].\(field) must be a non-empty string")
            }
            if o["step"] == nil { o["step"] = .number(Double(i)) }
            guard let step = o["step"]?.numberValue, step.isFinite else { throw CreationError(.schemaError, "signals[\(i)].step must be a finite number") }
            guard steps.insert(step).inserted else { throw CreationError(.schemaError, "signals[\(i)].step \(step) is used twice") }
            if o["timestamp"] == nil { o["timestamp"] = .string(JSONString(defaultTimestamp)) }
            guard let ts = o["timestamp"]?.stringValue, Timestamp.milliseconds(ts) != nil else {
                throw CreationError(.schemaError, "signals[\(i)].timestamp must be an ISO-8601 timestamp")
            }
            if o["actor"] == nil { o["actor"] = "unknown" }
            if o["status"] == nil { o["status"] = "ok" }
            if o["payload"] == nil { o["payload"] = .object(JSONObject()) }
            guard o["payload"]?.objectValue != nil else { throw CreationError(.schemaError, "signals[\(i)].payload must be an object") }
            out.append(.object(o))
        }
        return out
    }

    /// `computeContextHash`: signals stably sorted by `step`, canonical JSON, SHA-256.
    public static func contextHash(_ signals: [JSONValue]) throws(CanonicalizationError) -> String {
        let sorted = signals.enumerated().sorted {
            let a = $0.element["step"]?.numberValue ?? 0, b = $1.element["step"]?.numberValue ?? 0
            return a != b ? a < b : $0.offset < $1.offset
        }.map(\.element)
        return try ProtocolHash.canonical(.array(sorted))
    }

    /// `makeToolEvent`: `{toolId, at, outputHash, inputHash?, evidenceRef?, error?}` with hashes by the input/output rule.
    public static func makeToolEvent(
        toolId: String, at: String, output: JSONValue, input: JSONValue? = nil, evidenceRef: String? = nil, error: String? = nil
    ) throws(CanonicalizationError) -> JSONValue {
        var o = JSONObject()
        o["toolId"] = .string(JSONString(toolId))
        o["at"] = .string(JSONString(at))
        o["outputHash"] = .string(JSONString(try ProtocolHash.value(output)))
        if let input { o["inputHash"] = .string(JSONString(try ProtocolHash.value(input))) }
        if let evidenceRef { o["evidenceRef"] = .string(JSONString(evidenceRef)) }
        if let error { o["error"] = .string(JSONString(error)) }
        return .object(o)
    }
}
