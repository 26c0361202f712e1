public import CERKit
import Foundation
public import LedgerCore
public import LedgerStore

/// Who may see a record through the public resolver.
public enum Visibility: String, Sendable {
    case `private`
    case `public`
}

/// An attestation as the ledger holds it, with its entry.
public struct AttestationRecord: Sendable {
    /// The `cer.attested` entry (its body holds the signed receipt and envelope).
    public var entry: LedgerEntry
    /// False when this request found an earlier identical attestation (an idempotent replay).
    public var isNew: Bool
    /// The certified bundle, when the record has one.
    public var bundle: JSONValue?
    /// The account's usage after this request's charge, when it carried one.
    public var meter: MeterReading?
}

/// Attesting, certifying and stamping: verify, record one ledger event per attestation (the signed
/// receipt inside it, carrying the entry's ledger index), and answer in the live node's shape.
public struct AttestationService: Sendable {
    public static let attested = EventType.cerAttested
    public static let visibilityChanged = EventType.cerVisibilityChanged

    public let log: PostgresEventLog
    public let keys: KeyRing
    public let identity: NodeIdentity
    /// Per-record RFC 3161 timestamps, when configured.
    public let recordTimestamps: RecordTimestamps?
    public let clock: @Sendable () -> Int64

    public init(
        log: PostgresEventLog, keys: KeyRing, identity: NodeIdentity, recordTimestamps: RecordTimestamps? = nil,
        clock: @escaping @Sendable () -> Int64 = PostgresEventLog.wallClock
    ) {
        self.log = log
        self.keys = keys
        self.identity = identity
        self.recordTimestamps = recordTimestamps
        self.clock = clock
    }

    public static func subject(certificateHash: String) -> String { Subject.certificate(certificateHash) }

    // MARK: Attest

    /// Verifies a sealed CER and records its attestation for `principal`. An identical bundle already
    /// attested by the same account returns the original record; a different bundle under an
    /// executionId the account has used is refused (409 `EXECUTION_MUTATION_DETECTED`).
    public func attest(
        bundle: JSONValue, payload: [UInt8], principal: Principal, charge: Charge? = nil, visibility: Visibility, source: String = "attest",
        claims: [Claim] = [], dataSubjects: [String] = []
    ) async throws -> AttestationRecord {
        guard let cer = bundle.objectValue else { throw LedgerServerError(.invalidBundle, "the request body must be a CER bundle (a JSON object)") }
        let kind = ArtifactVerifier.detect(bundle)
        switch kind {
        case .aiCer, .governedCer: break
        case .cerPackage:
            throw LedgerServerError(
                .invalidBundle, "this is a CER package; submit its `cer` member", reasonCode: CerVerifyCode.unsupportedBundleType.rawValue)
        default:
            throw LedgerServerError(
                .invalidBundle, "bundleType \(CerVerifier.describe(cer["bundleType"])) cannot be attested here (cer.ai.execution.v1 or cer.governed.execution.v1)",
                reasonCode: CerVerifyCode.unsupportedBundleType.rawValue)
        }
        if kind == .aiCer, let version = cer["snapshot"]?["protocolVersion"], !version.isNull {
            guard let text = version.stringValue, CanonicalizationProfile.forProtocolVersion(text) != nil else {
                throw LedgerServerError(
                    .unsupportedProtocolVersion,
                    "snapshot.protocolVersion \(CerVerifier.describe(version)) is not a supported protocol version (1.2.0, 1.3.0, 1.3.1)",
                    reasonCode: CerVerifyCode.schemaError.rawValue)
            }
        }
        if let violation = IntakeRules.checkAttestable(bundle) { throw LedgerServerError.field(violation) }
        // The integrity layer is all a bundle can prove by itself; a full report is only built to explain a refusal.
        let integrity = IntegrityVerifier.verify(bundle)
        guard integrity.isIntact || integrity.isDegraded else {
            let report = ArtifactVerifier.verify(bundle)
            throw LedgerServerError(
                .invalidBundle, report.bundleIntegrity.message, reasonCode: report.code.rawValue,
                details: report.findings.map(\.message))
        }
        guard let certificateHash = cer["certificateHash"]?.stringValue else {
            throw LedgerServerError(.invalidBundle, "certificateHash is missing", reasonCode: CerVerifyCode.schemaError.rawValue)
        }
        let executionId = kind == .aiCer ? cer["snapshot"]?["executionId"]?.stringValue : cer["evidence"]?["bundle"]?["bundleId"]?.stringValue
        let protocolVersion = cer["snapshot"]?["protocolVersion"]?.stringValue ?? cer["version"]?.stringValue ?? NodeIdentity.defaultProtocolVersion
        let checks: [String] = kind == .aiCer ? ["snapshot_hashes", "certificate_hash"] : ["governed_execution"]

        let signer = try keys.requireSigner()
        let attestationId = UUID().uuidString.lowercased()
        let attestedAt = Timestamp.iso8601(milliseconds: clock())
        let summary: JSONObject = [
            "attestationId": .string(JSONString(attestationId)), "attestedAt": .string(JSONString(attestedAt)),
            "kid": .string(JSONString(signer.kid)), "nodeRuntimeHash": .string(JSONString(identity.nodeRuntimeHash)),
            "protocolVersion": .string(JSONString(protocolVersion)),
        ]
        let envelope: (envelope: JSONObject, signature: String)
        do {
            envelope = try VerificationEnvelope.make(cer: cer, attestation: summary, kid: signer.kid, key: signer.key)
        } catch {
            throw LedgerServerError(.invalidBundle, "the bundle has no canonical form: \(error.message)", reasonCode: CerVerifyCode.canonicalizationError.rawValue)
        }
        var body = JSONObject()
        body["source"] = .string(JSONString(source))
        body["certificateHash"] = .string(JSONString(certificateHash))
        body["bundleType"] = cer["bundleType"] ?? .null
        body["protocolVersion"] = .string(JSONString(protocolVersion))
        body["executionId"] = executionId.map { .string(JSONString($0)) } ?? .null
        body["visibility"] = .string(JSONString(visibility.rawValue))
        body["checks"] = .array(checks.map { .string(JSONString($0)) })
        if kind == .aiCer, let run = Self.runFields(bundle) { body["run"] = .object(run) }
        // The application and execution surface, which retention policies may be scoped to (bounded, as identifiers).
        for (member, value) in [("appId", cer["snapshot"]?["appId"]), ("executionSurface", cer["snapshot"]?["executionSurface"])] {
            if kind == .aiCer, let text = value?.stringValue, !text.isEmpty, text.utf8.count <= 256,
                text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F })
            {
                body[member] = .string(JSONString(text))
            }
        }
        // The data subjects the record is about, as keyed digests (never the references themselves).
        if !dataSubjects.isEmpty { body["dataSubjects"] = .array(dataSubjects.map { .string(JSONString($0)) }) }
        body["verificationEnvelope"] = .object(envelope.envelope)
        body["verificationEnvelopeSignature"] = .string(JSONString(envelope.signature))
        // A replay (the account attested this certificate already) asks no authority: the caller must not be
        // able to buy the node a token per request.
        var stamp: TimestampClient.Stamp? = nil
        if let recordTimestamps,
            try await log.entry(subject: Self.subject(certificateHash: certificateHash), type: Self.attested, idempotencyKey: principal.accountId) == nil
        {
            stamp = await recordTimestamps.stamp(certificateHash: certificateHash, account: principal.accountId)
        }
        var request = receiptRequest(
            subject: Self.subject(certificateHash: certificateHash), account: principal.accountId, idempotencyKey: principal.accountId,
            body: body, payload: payload, signer: signer, attestationId: attestationId, attestedAt: attestedAt,
            certificateHash: certificateHash, protocolVersion: protocolVersion, timestamp: stamp)
        request.charge = charge
        if let executionId {
            request.claim = Claim(scope: "execution:\(principal.accountId)", key: executionId, value: certificateHash)
        }
        request.claims += claims
        do {
            try RequestDeadline.beginCommit()
            let group = [request] + (stamp.map { [RecordTimestamps.entry(certificateHash: certificateHash, account: principal.accountId, stamp: $0)] } ?? [])
            let (results, meter) = try await log.appendMetered(group: group)
            if case .existing = results[0] {
                return AttestationRecord(entry: results[0].entry, isNew: false, bundle: bundle, meter: meter)
            }
            return AttestationRecord(entry: results[0].entry, isNew: true, bundle: bundle, meter: meter)
        } catch let refusal as AppendRefusal where refusal.isAdmission {
            throw refusal
        } catch AppendRefusal.claimConflict(let scope, _, let earlier) where scope.hasPrefix("execution:") {
            var extra = JSONObject()
            extra["executionId"] = executionId.map { .string(JSONString($0)) } ?? .null
            extra["existingCertificateHash"] = .string(JSONString(earlier))
            throw LedgerServerError(
                .executionMutationDetected,
                "executionId \(executionId ?? "") was already attested with different content (certificate \(earlier)); a record cannot be changed",
                reasonCode: Self.mutationReason, extra: extra)
        } catch let refusal as AppendRefusal where refusal.isIdempotencyConflict {
            throw refusal
        } catch let refusal as AppendRefusal {
            throw LedgerServerError(.invalidBundle, refusal.description)
        }
    }

    static let mutationReason = "EXECUTION_MUTATION_DETECTED"

    /// The run-chain fields of an AI CER's snapshot (`runId`, `workflowId`, `stepIndex`, `prevStepHash`),
    /// recorded in the entry so the run projection can be rebuilt even after the bundle is deleted.
    static func runFields(_ cer: JSONValue) -> JSONObject? {
        guard let snapshot = cer["snapshot"]?.objectValue, let runId = snapshot["runId"]?.stringValue, !runId.isEmpty else { return nil }
        var run: JSONObject = ["runId": .string(JSONString(runId))]
        if let w = snapshot["workflowId"]?.stringValue { run["workflowId"] = .string(JSONString(w)) }
        if let i = snapshot["stepIndex"]?.numberValue, i >= 0, i.rounded() == i, i < 9e15 { run["stepIndex"] = .number(i) }
        if let p = snapshot["prevStepHash"]?.stringValue { run["prevStepHash"] = .string(JSONString(p)) }
        return run
    }

    /// The append request whose body is completed inside the batch with a receipt that carries the
    /// entry's ledger index, signed there.
    func receiptRequest(
        subject: String, account: String, idempotencyKey: String, body: JSONObject, payload: [UInt8]?, signer: KeyRing.Signer,
        attestationId: String, attestedAt: String, certificateHash: String, protocolVersion: String, timestamp: TimestampClient.Stamp? = nil
    ) -> AppendRequest {
        let nodeId = identity.nodeId
        let runtime = identity.nodeRuntimeHash
        var body = body
        if let timestamp { body["timestamp"] = RecordTimestamps.responseMember(timestamp) }
        let provider = timestamp.map(RecordTimestamps.provider) ?? NodeIdentity.nodeName
        let finalizer = BodyFinalizer { [body] index, _ in
            var receipt = AttestationReceipt(
                attestationId: attestationId, attestedAt: attestedAt, attestorKeyId: signer.kid, certificateHash: certificateHash,
                nodeId: nodeId, nodeRuntimeHash: runtime, protocolVersion: protocolVersion, timestampProvider: provider,
                timestampStatus: "ok", timestampType: timestamp == nil ? "node-issued" : "rfc3161"
            ).json.objectValue!
            receipt["ledgerIndex"] = .number(Double(index))
            let signature = try ReceiptSignature.sign(.object(receipt), with: signer.key)
            var full = body
            full["attestationId"] = .string(JSONString(attestationId))
            full["attestedAt"] = .string(JSONString(attestedAt))
            full["kid"] = .string(JSONString(signer.kid))
            full["nodeRuntimeHash"] = .string(JSONString(runtime))
            full["receipt"] = .object(receipt)
            full["signature"] = .string(JSONString(signature))
            return .object(full)
        }
        return AppendRequest(
            subject: subject, type: Self.attested, account: account, body: .object(body), payload: payload, idempotencyKey: idempotencyKey,
            finalizer: finalizer)
    }

    // MARK: Stamp a hash

    /// Signs a receipt for a bare certificate hash (no bundle, no envelope).
    public func stampHash(
        certificateHash: String, protocolVersion: String?, principal: Principal, charge: Charge? = nil, claims: [Claim] = []
    ) async throws -> AttestationRecord {
        guard ProtocolHash.isWellFormed(certificateHash) else {
            throw LedgerServerError(
                .invalidHashFormat, "certificateHash must be sha256: followed by 64 lowercase hex digits",
                reasonCode: CerVerifyCode.invalidSha256Format.rawValue)
        }
        let version = protocolVersion ?? NodeIdentity.defaultProtocolVersion
        let signer = try keys.requireSigner()
        var body = JSONObject()
        body["source"] = "stamp-hash"
        body["certificateHash"] = .string(JSONString(certificateHash))
        body["protocolVersion"] = .string(JSONString(version))
        body["visibility"] = "private"
        var request = receiptRequest(
            subject: Self.subject(certificateHash: certificateHash), account: principal.accountId,
            idempotencyKey: "hash-only:\(principal.accountId)", body: body, payload: nil, signer: signer,
            attestationId: UUID().uuidString.lowercased(), attestedAt: Timestamp.iso8601(milliseconds: clock()),
            certificateHash: certificateHash, protocolVersion: version)
        request.charge = charge
        request.claims = claims
        do {
            try RequestDeadline.beginCommit()
            let (results, meter) = try await log.appendMetered(group: [request])
            if case .existing = results[0] { return AttestationRecord(entry: results[0].entry, isNew: false, bundle: nil, meter: meter) }
            return AttestationRecord(entry: results[0].entry, isNew: true, bundle: nil, meter: meter)
        } catch let refusal as AppendRefusal where refusal.isAdmission {
            throw refusal
        } catch let refusal as AppendRefusal where refusal.isIdempotencyConflict {
            throw refusal
        } catch let refusal as AppendRefusal {
            throw LedgerServerError(.invalidRequest, refusal.description)
        }
    }

    // MARK: Visibility and lookups

    /// The outcome of a visibility request: the entry that records the visibility now in force, and
    /// whether this request appended it (a request that changes nothing appends nothing).
    public struct VisibilityChange: Sendable {
        public var entry: LedgerEntry
        public var changed: Bool
    }

    /// Makes an account's record of a certificate public or private (a ledger event), unless it already is.
    /// The append expects the subject's version it read, so two concurrent identical requests append once.
    public func setVisibility(_ visibility: Visibility, certificateHash: String, principal: Principal) async throws -> VisibilityChange {
        for _ in 0..<5 {
            let entries = try await log.entries(subject: Self.subject(certificateHash: certificateHash)).entries
            guard let owned = Self.fold(entries).first(where: { $0.entry.account == principal.accountId }) else {
                throw LedgerServerError(.notFound, "No record found for this certificate hash")
            }
            if owned.visibility == visibility {
                let last = entries.last { $0.account == principal.accountId && ($0.type == Self.visibilityChanged || $0.index == owned.entry.index) }
                return VisibilityChange(entry: last ?? owned.entry, changed: false)
            }
            var request = AppendRequest(
                subject: Self.subject(certificateHash: certificateHash), type: Self.visibilityChanged, account: principal.accountId,
                body: ["visibility": .string(JSONString(visibility.rawValue))])
            request.expectedSubjectVersion = Int64(entries.count)
            do {
                try RequestDeadline.beginCommit()
                return VisibilityChange(entry: try await log.append(request).entry, changed: true)
            } catch AppendRefusal.versionConflict {
                continue  // another event on this certificate came first: decide again
            }
        }
        throw LedgerServerError(.conflict, "the record changed while its visibility was being set; retry")
    }

    /// One account's view of a certificate: its attestation and current visibility.
    public struct AccountRecord: Sendable {
        public var entry: LedgerEntry
        public var visibility: Visibility
        /// The folded record (lifecycle state, purge, pending deletion).
        public var record: CertificateRecord? = nil
        public var lifecycle: LifecycleState { record?.lifecycle ?? .active }
        /// Public and publicly resolvable: not hidden, nor deleted while hidden.
        public var isPublic: Bool { visibility == .public && (record?.isPubliclyResolvable ?? true) }
    }

    /// Every account's record of a certificate: its attestation (the bundle-bearing one when an account
    /// has both a bundle attestation and a hash stamp), or its registration through a project bundle
    /// when it has no attestation, with each account's current visibility, in ledger order.
    public func records(certificateHash: String) async throws -> [AccountRecord] {
        guard ProtocolHash.isWellFormed(certificateHash) else { return [] }
        let entries = try await log.entries(subject: Self.subject(certificateHash: certificateHash)).entries
        return Self.fold(entries)
    }

    /// The record the public resolver answers with when several accounts hold the same certificate hash
    /// (decision 0012): among public signed attestations, one that carries its bundle, the earliest
    /// first; a hash-only stamp only when no public record carries a bundle. Hidden records are left out. So a stamp of the bare hash,
    /// or a later bundle whose uncovered members differ, never stands in for the first bundle-bearing record.
    static func publicRecord(_ records: [AccountRecord]) -> AccountRecord? {
        // A hidden record is not publicly resolvable; a deleted one still is, by its hashes, without its bundle.
        let candidates = records.filter { $0.isPublic && $0.entry.type == attested }
        return candidates.filter { $0.entry.payloadDigest != nil }.min { $0.entry.index < $1.entry.index }
            ?? candidates.min { $0.entry.index < $1.entry.index }
    }

    /// Each account's record, folded by `CertificateRecord` (the reducer the read model uses too).
    static func fold(_ entries: [LedgerEntry]) -> [AccountRecord] {
        var folded: [String: CertificateRecord] = [:]
        var accounts: [String] = []
        var byIndex: [Int64: LedgerEntry] = [:]
        for e in entries {
            guard let account = e.account else { continue }
            byIndex[e.index] = e
            let before = folded[account]
            folded[account] = CertificateRecord.fold(before, CertificateRecord.Event(
                index: e.index, type: e.type, hasPayload: e.payloadDigest != nil, visibility: e.body["visibility"]?.stringValue,
                lifecycle: e.body["to"]?.stringValue, application: e.body["appId"]?.stringValue, surface: e.body["executionSurface"]?.stringValue))
            if before == nil, folded[account] != nil { accounts.append(account) }
        }
        return accounts.compactMap { account in
            guard let r = folded[account], let entry = byIndex[r.recordIndex] else { return nil }
            return AccountRecord(entry: entry, visibility: Visibility(rawValue: r.visibility) ?? .private, record: r)
        }
    }

    /// The stored bundle of an attestation, or nil (hash-only, or its payload was deleted).
    public func bundle(of entry: LedgerEntry) async throws -> JSONValue? {
        guard let digest = entry.payloadDigest, let bytes = try await log.payload(digest: digest) else { return nil }
        return try? JSONParser.parse(bytes)
    }
}

extension AppendRefusal {
    /// True for refusals of a charge (quota, revoked key), which the HTTP layer answers itself.
    var isAdmission: Bool {
        if case .notAdmitted = self { return true }
        return false
    }

    /// True for a conflict on an `Idempotency-Key` claim, which the HTTP layer resolves (replay or 409).
    var isIdempotencyConflict: Bool {
        if case .claimConflict(let scope, _, _) = self { return scope.hasPrefix("idempotency:") }
        return false
    }
}
