public import CERKit
import Foundation
public import LedgerCore
import LedgerProjections
public import LedgerStore

/// Project bundles (`cer.project.bundle.v1`): registration as a `project.registered` event on
/// `project:<projectHash>` (idempotent on the hash), with the embedded steps' CERs recorded as
/// `cer.registered` events when the ledger does not know them yet.
public struct ProjectService: Sendable {
    public static let registered = EventType.projectRegistered
    public static let cerRegistered = EventType.cerRegistered
    public static let visibilityChanged = EventType.projectVisibilityChanged
    static let idempotencyKey = "registration"

    let log: PostgresEventLog
    let keys: KeyRing
    let identity: NodeIdentity
    let clock: @Sendable () -> Int64
    /// Most steps a registered project bundle may have.
    let maxSteps: Int

    public init(
        log: PostgresEventLog, keys: KeyRing, identity: NodeIdentity, maxSteps: Int = 1000,
        clock: @escaping @Sendable () -> Int64 = PostgresEventLog.wallClock
    ) {
        self.log = log
        self.keys = keys
        self.identity = identity
        self.maxSteps = maxSteps
        self.clock = clock
    }

    public static func subject(projectHash: String) -> String { Subject.project(projectHash) }

    public struct Registration: Sendable {
        public var entry: LedgerEntry
        public var isNew: Bool
        public var meter: MeterReading? = nil
    }

    /// The first field of a project bundle that breaks its intake rule (ids, title, each step's ids and
    /// embedded CER), so nothing a `jsonb` column or an index cannot hold reaches the log.
    static func intakeViolation(_ b: JSONObject) -> IntakeRules.Violation? {
        if let v = IntakeRules.check(b["projectBundleId"], field: "projectBundleId", rule: .identifier) { return v }
        if let v = IntakeRules.check(b["projectTitle"], field: "projectTitle", rule: .label) { return v }
        for (i, s) in (b["stepRegistry"]?.arrayValue ?? []).enumerated() {
            if let v = IntakeRules.check(s["stepId"], field: "stepRegistry[\(i)].stepId", rule: .identifier) { return v }
            if let v = IntakeRules.check(s["executionId"], field: "stepRegistry[\(i)].executionId", rule: .identifier) { return v }
        }
        for member in b["embeddedBundles"]?.objectValue?.members ?? [] {
            if var v = IntakeRules.checkAttestable(member.value) {
                v.field = "embeddedBundles[\(member.key.string)].\(v.field)"
                return v
            }
        }
        return nil
    }

    /// Verifies the bundle (`verifyProjectBundle`) and records it, or returns the existing registration.
    /// The project and the step CERs it records are private to `principal` unless `visibility` is public;
    /// `charge` is admitted with the append (a replay is not charged).
    public func register(
        bundle: JSONValue, payload: [UInt8], principal: Principal, visibility: Visibility = .private, charge: Charge? = nil,
        claims: [Claim] = []
    ) async throws -> Registration {
        guard let b = bundle.objectValue, b["bundleType"]?.stringValue == "cer.project.bundle.v1" else {
            throw LedgerServerError(
                .invalidBundle, "the body must be a project bundle (bundleType cer.project.bundle.v1)", reasonCode: CerVerifyCode.schemaError.rawValue)
        }
        let stepCount = b["stepRegistry"]?.arrayValue?.count ?? 0
        if stepCount > maxSteps {
            throw LedgerServerError(
                .payloadTooLarge, "the project bundle has \(stepCount) steps; at most \(maxSteps) are accepted", details: ["TOO_MANY_STEPS"])
        }
        if let violation = Self.intakeViolation(b) { throw LedgerServerError.field(violation) }
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
            "visibility": .string(JSONString(visibility.rawValue)),
        ]
        body["totalSteps"] = .number(Double(registry.count))
        var group = [AppendRequest(
            subject: subject, type: Self.registered, account: principal.accountId, body: .object(body), payload: payload,
            idempotencyKey: Self.idempotencyKey, charge: charge)]
        group[0].claims = claims
        // The embedded CERs the ledger has never seen are recorded too (bundle as payload, no receipt).
        let embedded = b["embeddedBundles"]?.objectValue
        for s in registry {
            guard let stepId = s["stepId"]?.stringValue, let hash = s["certificateHash"]?.stringValue, let cer = embedded?[stepId] else { continue }
            let cerSubject = AttestationService.subject(certificateHash: hash)
            if try await !log.entries(subject: cerSubject).entries.isEmpty { continue }
            var cerBody: JSONObject = [
                "source": "project", "certificateHash": .string(JSONString(hash)), "projectHash": .string(JSONString(projectHash)),
                "bundleType": cer["bundleType"] ?? .null, "executionId": cer["snapshot"]?["executionId"] ?? .null,
                "visibility": .string(JSONString(visibility.rawValue)),
            ]
            if let run = AttestationService.runFields(cer) { cerBody["run"] = .object(run) }
            group.append(AppendRequest(
                subject: cerSubject, type: Self.cerRegistered, account: principal.accountId, body: .object(cerBody),
                payload: try CanonicalJSON.encode(cer, profile: .nexartV1), idempotencyKey: principal.accountId))
        }
        do {
            try RequestDeadline.beginCommit()
            let (results, meter) = try await log.appendMetered(group: group)
            if case .existing(let e) = results[0] { return Registration(entry: e, isNew: false) }
            return Registration(entry: results[0].entry, isNew: true, meter: meter)
        } catch let refusal as AppendRefusal where refusal.isAdmission {
            throw refusal
        } catch let refusal as AppendRefusal where refusal.isIdempotencyConflict {
            throw refusal
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

    /// A project's registration with the visibility in force (the owner's latest change, else the
    /// registration's own), or nil when the hash was never registered.
    public func project(projectHash: String) async throws -> (entry: LedgerEntry, visibility: Visibility)? {
        Self.project(try await log.entries(subject: Self.subject(projectHash: projectHash)).entries)
    }

    /// The registration and visibility in force, folded from a project subject's entries.
    static func project(_ entries: [LedgerEntry]) -> (entry: LedgerEntry, visibility: Visibility)? {
        guard let registered = entries.first(where: { $0.type == Self.registered }) else { return nil }
        var visibility = Visibility(rawValue: registered.body["visibility"]?.stringValue ?? "") ?? .private
        for e in entries where e.type == Self.visibilityChanged && e.account == registered.account {
            visibility = Visibility(rawValue: e.body["visibility"]?.stringValue ?? "") ?? visibility
        }
        return (registered, visibility)
    }

    /// Publishes or withdraws a project (the registering account only); a request that changes nothing
    /// appends nothing.
    public func setVisibility(_ visibility: Visibility, projectHash: String, principal: Principal) async throws -> (entry: LedgerEntry, changed: Bool) {
        for _ in 0..<5 {
            let subject = Self.subject(projectHash: projectHash)
            let entries = try await log.entries(subject: subject).entries
            guard let current = Self.project(entries), current.entry.account == principal.accountId else {
                throw LedgerServerError(.notFound, "No project bundle of this account is registered with this projectHash")
            }
            if current.visibility == visibility { return (entries.last { $0.account == principal.accountId } ?? current.entry, false) }
            var request = AppendRequest(
                subject: subject, type: Self.visibilityChanged, account: principal.accountId,
                body: ["visibility": .string(JSONString(visibility.rawValue))])
            request.expectedSubjectVersion = Int64(entries.count)
            do {
                try RequestDeadline.beginCommit()
                return (try await log.append(request).entry, true)
            } catch AppendRefusal.versionConflict {
                continue
            }
        }
        throw LedgerServerError(.conflict, "the project changed while its visibility was being set; retry")
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
