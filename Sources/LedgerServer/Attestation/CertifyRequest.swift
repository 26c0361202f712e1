import CERKit
import Foundation

/// `POST /v1/cer/ai/certify` and `/v1/cer/ai/create`: raw call fields in, a sealed CER out.
/// Unknown top-level fields are dropped, as NexArt's node does; wrong types are refused by name.
enum CertifyRequest {
    static func parse(_ body: JSONObject, now: String) throws -> JSONObject {
        guard let provider = try body.string("provider"), !provider.isEmpty else { throw LedgerServerError(.invalidRequest, "provider is required") }
        guard let model = try body.string("model"), !model.isEmpty else { throw LedgerServerError(.invalidRequest, "model is required") }
        for side in ["input", "output"] {
            let raw = body[side].map { !$0.isNull } ?? false
            let hashed = body["\(side)Hash"].map { !$0.isNull } ?? false
            if raw && hashed { throw LedgerServerError(.invalidRequest, "send either \(side) or \(side)Hash, not both") }
            if !raw && !hashed { throw LedgerServerError(.invalidRequest, "\(side) or \(side)Hash is required") }
        }
        let version = try body.string("protocolVersion") ?? NodeIdentity.defaultProtocolVersion
        guard CanonicalizationProfile.forProtocolVersion(version) != nil else {
            throw LedgerServerError(
                .unsupportedProtocolVersion, "protocolVersion \(version.prefix(40)) is not supported (1.2.0, 1.3.0, 1.3.1)",
                reasonCode: CerVerifyCode.schemaError.rawValue)
        }
        var p = CertifyParameters(
            executionId: try body.string("executionId") ?? UUID().uuidString.lowercased(),
            timestamp: try body.string("timestamp") ?? now, createdAt: try body.string("createdAt") ?? now,
            provider: provider, model: model, prompt: try body.string("prompt"),
            input: body["input"].flatMap { $0.isNull ? nil : $0 }, output: body["output"].flatMap { $0.isNull ? nil : $0 },
            parameters: body["parameters"].flatMap { $0.isNull ? nil : $0 }, protocolVersion: version)
        p.inputHash = try body.string("inputHash")
        p.outputHash = try body.string("outputHash")
        p.modelVersion = try body.string("modelVersion")
        p.sdkVersion = try body.string("sdkVersion")
        p.appId = try body.string("appId")
        p.runId = try body.string("runId")
        p.stepId = try body.string("stepId")
        p.workflowId = try body.string("workflowId")
        p.conversationId = try body.string("conversationId")
        p.prevStepHash = try body.string("prevStepHash")
        if let step = try body.integer("stepIndex") {
            guard step >= 0 else { throw LedgerServerError(.invalidRequest, "stepIndex must not be negative") }
            p.stepIndex = Int(step)
        }
        if let tools = body["toolCalls"], !tools.isNull {
            guard let list = tools.arrayValue else { throw LedgerServerError(.invalidRequest, "toolCalls must be an array") }
            p.toolCalls = list
        }
        if let metadata = body["metadata"], !metadata.isNull {
            guard let o = metadata.objectValue else { throw LedgerServerError(.invalidRequest, "metadata must be an object") }
            p.meta = o
        }
        if let context = body["context"], !context.isNull {
            guard let signals = context["signals"]?.arrayValue else {
                throw LedgerServerError(.invalidRequest, "context must be an object with a signals array")
            }
            p.signals = signals
        }
        if let parameters = p.parameters, parameters.objectValue == nil {
            throw LedgerServerError(.invalidRequest, "parameters must be an object")
        }
        do {
            return try CERBuilder.certifyDecision(p)
        } catch {
            throw LedgerServerError(.protocolSchemaUnsatisfied, error.message, reasonCode: error.code.rawValue)
        }
    }
}
