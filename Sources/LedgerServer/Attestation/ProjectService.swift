import CERKit
import Foundation
import LedgerCore
import LedgerProjections
import LedgerStore

/// Project bundles (`cer.project.bundle.v1`): registration as a `project.registered` event on
/// `project:<projectHash>` (idempotent on the hash), with the embedded steps' CERs recorded as
/// `cer.registered` events when the ledger does not know them yet.
public struct ProjectService: Sendable {
    public static let registered = "project.registered"
    public static let cerRegistered = "cer.registered"
    static let idempotencyKey = "registration"

    let log: PostgresEventLog
    let keys: KeyRing
    let identity: NodeIdentity
    let clock: @Sendable () -> Int64

    public init(log: PostgresEventLog, keys: KeyRing, identity: NodeIdentity, clock: @escaping @Sendable () -> Int64 = PostgresEventLog.wallClock) {
        self.log = log
        self.keys = keys
        self.identity = identity
        self.clock = clock
    }

    public static func subject(projectHash: String) -> String { "project:\(projectHash)" }

    public struct Registration: Sendable {
        public var entry: LedgerEntry
        public var isNew: Bool
    }

    /// Verifies the bundle (`verifyProjectBundle`) and records it, or returns the existing registration.
    public func register(bundle: JSONValue, payload: [UInt8], principal: Principal) async throws -> Registration {
        guard let b = bundle.objectValue, b["bundleType"]?.stringValue == "cer.project.bundle.v1" else {
            throw LedgerServerError(
                .invalidBundle, "the body must be a project bundle (bundleType cer.project.bundle.v1)", reasonCode: CerVerifyCode.schemaError.rawValue)
        }
        let result = ProjectBundle.verify(bundle)
        guard result.ok, let projectHash = result.projectHash else {
            throw LedgerServerError(
                .invalidBundle, "the project bundle does not verify: \(result.errors.first ?? result.code.rawValue)", reasonCode: result.code.rawValue,
                details: result.errors + result.steps.filter { !$0.ok }.map { "step \($0.stepId): \($0.code.rawValue) \($0.errors.joined(separator: "; "))" })
        }
        let subject = Self.subject(projectHash: projectHash)
        if let existing = try await log.entry(subject: subject, type: Self.registered, idempotencyKey: Self.idempotencyKey) {
            return Registration(entry: existing, isNew: false)
        }
        let signer = try keys.requireSigner()
        let registrationId = UUID().uuidString.lowercased()
        let registeredAt = Timestamp.iso8601(milliseconds: clock())
        var receipt: JSONObject = [
            "receiptVersion": "project.receipt.v1", "projectHash": .string(JSONString(projectHash)),
            "projectBundleId": b["projectBundleId"] ?? .null, "registrationId": .string(JSONString(registrationId)),
            "registeredAt": .string(JSONString(registeredAt)), "signedAt": .string(JSONString(registeredAt)),
            "nodeId": .string(JSONString(identity.nodeId)), "nodeRuntimeHash": .string(JSONString(identity.nodeRuntimeHash)),
            "kid": .string(JSONString(signer.kid)), "alg": "Ed25519",
        ]
        receipt = ProjectReceipt.sign(receipt, with: signer.key)
        let registry = b["stepRegistry"]?.arrayValue ?? []
        let steps: [JSONValue] = registry.map { s in
            [
                "stepId": s["stepId"] ?? .null, "sequence": s["sequence"] ?? .null, "executionId": s["executionId"] ?? .null,
                "certificateHash": s["certificateHash"] ?? .null,
            ]
        }
        var body: JSONObject = [
            "projectHash": .string(JSONString(projectHash)), "projectBundleId": b["projectBundleId"] ?? .null,
            "projectTitle": b["projectTitle"] ?? .null, "registrationId": .string(JSONString(registrationId)),
            "registeredAt": .string(JSONString(registeredAt)), "nodeRuntimeHash": .string(JSONString(identity.nodeRuntimeHash)),
            "kid": .string(JSONString(signer.kid)), "nodeReceipt": .object(receipt), "steps": .array(steps),
        ]
        body["totalSteps"] = .number(Double(registry.count))
        var group = [AppendRequest(
            subject: subject, type: Self.registered, account: principal.accountId, body: .object(body), payload: payload,
            idempotencyKey: Self.idempotencyKey)]
        // The embedded CERs the ledger has never seen are recorded too (bundle as payload, no receipt).
        let embedded = b["embeddedBundles"]?.objectValue
        for s in registry {
            guard let stepId = s["stepId"]?.stringValue, let hash = s["certificateHash"]?.stringValue, let cer = embedded?[stepId] else { continue }
            let cerSubject = AttestationService.subject(certificateHash: hash)
            if try await !log.entries(subject: cerSubject).entries.isEmpty { continue }
            var cerBody: JSONObject = [
                "source": "project", "certificateHash": .string(JSONString(hash)), "projectHash": .string(JSONString(projectHash)),
                "bundleType": cer["bundleType"] ?? .null, "executionId": cer["snapshot"]?["executionId"] ?? .null, "visibility": "private",
            ]
            if let run = AttestationService.runFields(cer) { cerBody["run"] = .object(run) }
            group.append(AppendRequest(
                subject: cerSubject, type: Self.cerRegistered, account: principal.accountId, body: .object(cerBody),
                payload: try CanonicalJSON.encode(cer, profile: .nexartV1), idempotencyKey: principal.accountId))
        }
        do {
            let results = try await log.append(group: group)
            if case .existing(let e) = results[0] { return Registration(entry: e, isNew: false) }
            return Registration(entry: results[0].entry, isNew: true)
        } catch let refusal as AppendRefusal {
            // A concurrent registration of the same bundle won: return it.
            if let existing = try await log.entry(subject: subject, type: Self.registered, idempotencyKey: Self.idempotencyKey) {
                return Registration(entry: existing, isNew: false)
            }
            throw LedgerServerError(.invalidBundle, refusal.description)
        }
    }

    /// The registration of a project hash, if any.
    public func registration(projectHash: String) async throws -> LedgerEntry? {
        try await log.entry(subject: Self.subject(projectHash: projectHash), type: Self.registered, idempotencyKey: Self.idempotencyKey)
    }

    /// The registration response: the request's echo, the signed receipt, and where it is in the ledger.
    func response(_ r: Registration) -> JSONValue {
        let b = r.entry.body
        let receipt = b["nodeReceipt"] ?? .null
        return [
            "ok": true, "projectHash": b["projectHash"] ?? .null, "projectBundleId": b["projectBundleId"] ?? .null,
            "registrationId": b["registrationId"] ?? .null, "registeredAt": b["registeredAt"] ?? .null,
            "nodeRuntimeHash": b["nodeRuntimeHash"] ?? .null,
            "receipt": ["alg": "Ed25519", "kid": b["kid"] ?? .null, "sig": receipt["signature"] ?? .null],
            "nodeReceipt": receipt, "replayed": .bool(!r.isNew),
            "ledger": [
                "index": .number(Double(r.entry.index)), "subject": .string(JSONString(r.entry.subject)),
                "leafHash": .string(JSONString(Hex.encode(r.entry.leafHash))),
                "inclusionProofUrl": .string(JSONString(identity.publicURL + "/v1/log/proof/inclusion?index=\(r.entry.index)")),
            ],
        ]
    }
}
