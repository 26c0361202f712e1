public import CERKit
import Foundation
public import LedgerCore
public import LedgerProjections
public import LedgerStore

/// Record lifecycle as ledger events: owners archive, hide and restore their records and ask for their
/// erasure; administrators apply and release legal holds. Every decision is an entry, so the audit can
/// show that each change and each missing payload had authority (decision 0017).
public struct LifecycleService: Sendable {
    public let log: PostgresEventLog

    public init(log: PostgresEventLog) { self.log = log }

    public struct Change: Sendable {
        public var entry: LedgerEntry
        public var from: LifecycleState
        public var to: LifecycleState
        /// False when the record already was in the requested state (nothing appended).
        public var changed: Bool
    }

    /// The account's record of the certificate, folded from its subject.
    func record(certificateHash: String, account: String) async throws -> (AttestationService.AccountRecord, Int64) {
        guard ProtocolHash.isWellFormed(certificateHash) else {
            throw LedgerServerError(.invalidHashFormat, "certificateHash must be sha256: followed by 64 lowercase hex digits")
        }
        let entries = try await log.entries(subject: Subject.certificate(certificateHash)).entries
        guard let owned = AttestationService.fold(entries).first(where: { $0.entry.account == account }) else {
            throw LedgerServerError(.notFound, "No record found for this certificate hash")
        }
        return (owned, Int64(entries.count))
    }

    /// Archives, hides or restores the account's record. The same state again is no change; a transition
    /// the model does not allow is a 409 naming the current state.
    public func change(_ action: LifecycleAction, certificateHash: String, account: String, reason: String?, actor: String) async throws -> Change {
        guard action != .delete else {
            throw LedgerServerError(.invalidRequest, "a record is deleted by a deletion request (POST /v1/records/{hash}/deletion), which holds and the retention floor can defer")
        }
        for _ in 0..<5 {
            let (owned, version) = try await record(certificateHash: certificateHash, account: account)
            let current = owned.lifecycle
            guard let target = action.target(from: current) else {
                if action == .archive && current == .archived || action == .hide && current == .hidden {
                    return Change(entry: owned.entry, from: current, to: current, changed: false)
                }
                throw LedgerServerError(.conflict, LifecycleRefusal(current: current, action: action).description, extra: ["state": .string(JSONString(current.rawValue))])
            }
            var body = JSONObject()
            body["certificateHash"] = .string(JSONString(certificateHash))
            body["from"] = .string(JSONString(current.rawValue))
            body["to"] = .string(JSONString(target.rawValue))
            body["action"] = .string(JSONString(action.rawValue))
            body["reason"] = reason.map { .string(JSONString($0)) } ?? .null
            body["actor"] = .string(JSONString(actor))
            var request = AppendRequest(subject: Subject.certificate(certificateHash), type: EventType.cerLifecycleChanged, account: account, body: .object(body))
            request.expectedSubjectVersion = version
            do {
                try RequestDeadline.beginCommit()
                return Change(entry: try await log.append(request).entry, from: current, to: target, changed: true)
            } catch AppendRefusal.versionConflict {
                continue
            }
        }
        throw LedgerServerError(.conflict, "the record changed while its lifecycle was being set; retry")
    }

    /// Records a request to erase the account's record. A pending request is returned again; a deleted
    /// record is a 409. The retention worker answers it (completed, or deferred by a hold or the floor).
    public func requestDeletion(certificateHash: String, account: String, reason: String?, actor: String) async throws -> (entry: LedgerEntry, isNew: Bool) {
        for _ in 0..<5 {
            let (owned, version) = try await record(certificateHash: certificateHash, account: account)
            if owned.lifecycle == .deleted {
                throw LedgerServerError(.conflict, LifecycleRefusal(current: .deleted, action: .delete).description, extra: ["state": "deleted"])
            }
            if let pending = owned.record?.deletionRequested, let entry = try await log.entry(index: pending) { return (entry, false) }
            var body = JSONObject()
            body["certificateHash"] = .string(JSONString(certificateHash))
            body["reason"] = reason.map { .string(JSONString($0)) } ?? .null
            body["actor"] = .string(JSONString(actor))
            var request = AppendRequest(subject: Subject.certificate(certificateHash), type: EventType.deletionRequested, account: account, body: .object(body))
            request.expectedSubjectVersion = version
            do {
                try RequestDeadline.beginCommit()
                return (try await log.append(request).entry, true)
            } catch AppendRefusal.versionConflict {
                continue
            }
        }
        throw LedgerServerError(.conflict, "the record changed while its deletion was being requested; retry")
    }

    /// Records one deletion request covers at most (a run's or a project's, in one all-or-nothing group).
    public static let maxScopedRecords = 10_000

    /// A run of the account, or a project it registered.
    public enum RecordGroup: Sendable, Equatable {
        case run(String)
        case project(String)
        /// The records naming a data subject, by its keyed digest (`DataSubjects.digest`).
        case dataSubject(digest: String)

        var json: JSONValue {
            switch self {
            case .run(let id): return ["type": "run", "runId": .string(JSONString(id))]
            case .project(let hash): return ["type": "project", "projectHash": .string(JSONString(hash))]
            case .dataSubject(let digest): return ["type": "dataSubject", "digest": .string(JSONString(digest))]
            }
        }
    }

    public struct GroupDeletion: Sendable {
        /// The new `deletion.requested` entries, one per record.
        public var requested: [LedgerEntry]
        /// Records of the group already waiting for an answer, and already deleted.
        public var pending: Int
        public var deleted: Int
    }

    /// Requests the erasure of every record of the account in a run or one of its projects: one
    /// `deletion.requested` per record not deleted and not already pending, naming the group, appended
    /// together or not at all. The worker answers each as it answers a single record's.
    public func requestDeletion(of group: RecordGroup, account: String, reason: String?, actor: String, queries: LedgerQueries) async throws
        -> GroupDeletion
    {
        let limit = Self.maxScopedRecords + 1
        let records: [LedgerQueries.ScopedRecord]
        switch group {
        case .run(let runId):
            try Self.checkIdentifier(runId, "runId")
            records = try await queries.records(account: account, runId: runId, limit: limit)
            guard !records.isEmpty else { throw LedgerServerError(.notFound, "account \(account) has recorded no step of run \(runId)") }
        case .project(let hash):
            guard ProtocolHash.isWellFormed(hash) else {
                throw LedgerServerError(.invalidHashFormat, "projectHash must be sha256: followed by 64 lowercase hex digits")
            }
            let registrations = try await log.entries(subject: Subject.project(hash)).entries
            guard registrations.contains(where: { $0.type == EventType.projectRegistered && $0.account == account }) else {
                throw LedgerServerError(.notFound, "account \(account) has registered no project \(hash)")
            }
            records = try await queries.records(account: account, projectHash: hash, limit: limit)
        case .dataSubject(let digest):
            records = try await queries.records(account: account, dataSubject: digest, limit: limit)
            guard !records.isEmpty else { throw LedgerServerError(.notFound, "account \(account) has no record naming this data subject") }
        }
        guard records.count <= Self.maxScopedRecords else {
            throw LedgerServerError(.invalidRequest, "the group has more than \(Self.maxScopedRecords) records: request their erasure record by record")
        }
        let open = records.filter { $0.lifecycle != LifecycleState.deleted.rawValue && $0.deletionRequested == nil }
        let result = GroupDeletion(
            requested: [], pending: records.filter { $0.lifecycle != LifecycleState.deleted.rawValue && $0.deletionRequested != nil }.count,
            deleted: records.filter { $0.lifecycle == LifecycleState.deleted.rawValue }.count)
        guard !open.isEmpty else { return result }
        let requests = open.map { r in
            var body = JSONObject()
            body["certificateHash"] = .string(JSONString(r.certificateHash))
            body["reason"] = reason.map { .string(JSONString($0)) } ?? .null
            body["actor"] = .string(JSONString(actor))
            body["group"] = group.json
            // No version check: the fold takes a request only for a record that is not deleted and has none pending.
            return AppendRequest(subject: Subject.certificate(r.certificateHash), type: EventType.deletionRequested, account: account, body: .object(body))
        }
        try RequestDeadline.beginCommit()
        let outcomes = try await log.append(group: requests)
        var done = result
        done.requested = outcomes.map(\.entry)
        return done
    }

    static func checkIdentifier(_ value: String, _ name: String) throws {
        guard !value.isEmpty, value.utf8.count <= 256, value.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw LedgerServerError(.invalidField, "\(name) is 1 to 256 bytes of printable characters")
        }
    }

    // MARK: Legal holds

    /// Every hold entry, in log order; with `account`, only that account's (hold entries name the held
    /// account, and the account index finds them without reading anyone else's).
    public func holdEntries(account: String? = nil) async throws -> [LedgerEntry] {
        try await log.pool.withConnection { c in
            if let account {
                return try EntryRows.decode(c.query("""
                    SELECT \(sql: EntryRows.columns) FROM ledger_entries
                    WHERE account = \(account) AND type IN ('legal_hold.applied', 'legal_hold.released') ORDER BY idx
                    """))
            }
            return try EntryRows.decode(c.query("""
                SELECT \(sql: EntryRows.columns) FROM ledger_entries WHERE type IN ('legal_hold.applied', 'legal_hold.released') ORDER BY idx
                """))
        }
    }

    /// The holds in force (of one account, or of all).
    public func holds(account: String? = nil) async throws -> HoldBook {
        var book = HoldBook()
        for e in try await holdEntries(account: account) { book.apply(e) }
        return book
    }

    /// Applies a hold (an id is made when none is given). The same id while in force is a 409.
    public func applyHold(
        holdId: String?, caseId: String, scope: LegalHold.Scope, account: String, certificateHash: String?, target: String? = nil, reason: String?,
        actor: String
    ) async throws -> LedgerEntry {
        let id = holdId ?? UUID().uuidString.lowercased()
        guard id.utf8.count <= 128, !id.isEmpty, id.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || $0.properties.numericType != nil || "-_.".unicodeScalars.contains($0) })
        else { throw LedgerServerError(.invalidField, "holdId is 1 to 128 letters, digits, '-', '_' or '.'") }
        guard !caseId.isEmpty, caseId.utf8.count <= 256 else { throw LedgerServerError(.invalidField, "caseId is 1 to 256 bytes") }
        switch scope {
        case .record:
            guard let certificateHash, ProtocolHash.isWellFormed(certificateHash) else {
                throw LedgerServerError(.invalidHashFormat, "a record hold names its certificateHash (sha256: and 64 lowercase hex digits)")
            }
        case .run:
            guard let target else { throw LedgerServerError(.invalidRequest, "a run hold names its runId") }
            try Self.checkIdentifier(target, "runId")
        case .project:
            guard let target, ProtocolHash.isWellFormed(target) else {
                throw LedgerServerError(.invalidHashFormat, "a project hold names its projectHash (sha256: and 64 lowercase hex digits)")
            }
        case .account:
            break
        }
        let entries = try await log.entries(subject: Subject.hold(id)).entries
        var book = HoldBook()
        for e in entries { book.apply(e) }
        if book.active[id] != nil { throw LedgerServerError(.conflict, "hold \(id) is already in force") }
        var body = JSONObject()
        body["holdId"] = .string(JSONString(id))
        body["caseId"] = .string(JSONString(caseId))
        body["scope"] = .string(JSONString(scope.rawValue))
        body["account"] = .string(JSONString(account))
        body["certificateHash"] = scope == .record ? .string(JSONString(certificateHash!)) : .null
        if let member = LegalHold.targetMember(scope), scope != .record { body[member] = .string(JSONString(target!)) }
        body["reason"] = reason.map { .string(JSONString($0)) } ?? .null
        body["actor"] = .string(JSONString(actor))
        // The held account's entry: /v1/log/entries shows it to that account and the operator only.
        var request = AppendRequest(subject: Subject.hold(id), type: EventType.legalHoldApplied, account: account, body: .object(body))
        request.expectedSubjectVersion = Int64(entries.count)
        do {
            return try await log.append(request).entry
        } catch AppendRefusal.versionConflict {
            throw LedgerServerError(.conflict, "hold \(id) changed while it was being applied; retry")
        }
    }

    /// Releases a hold in force (404 when there is none of that id).
    public func releaseHold(holdId: String, reason: String?, actor: String) async throws -> LedgerEntry {
        let entries = try await log.entries(subject: Subject.hold(holdId)).entries
        var book = HoldBook()
        for e in entries { book.apply(e) }
        guard let hold = book.active[holdId] else { throw LedgerServerError(.notFound, "no hold \(holdId.prefix(128)) is in force") }
        var body = JSONObject()
        body["holdId"] = .string(JSONString(holdId))
        body["caseId"] = .string(JSONString(hold.caseId))
        body["reason"] = reason.map { .string(JSONString($0)) } ?? .null
        body["actor"] = .string(JSONString(actor))
        var request = AppendRequest(subject: Subject.hold(holdId), type: EventType.legalHoldReleased, account: hold.account, body: .object(body))
        request.expectedSubjectVersion = Int64(entries.count)
        do {
            return try await log.append(request).entry
        } catch AppendRefusal.versionConflict {
            throw LedgerServerError(.conflict, "hold \(holdId) changed while it was being released; retry")
        }
    }

    // MARK: Retention policies

    public func policies() async throws -> PolicyBook {
        let entries = try await log.pool.withConnection { c in
            try EntryRows.decode(c.query("SELECT \(sql: EntryRows.columns) FROM ledger_entries WHERE type = 'retention.policy_set' ORDER BY idx"))
        }
        var book = PolicyBook()
        for e in entries { book.apply(e) }
        return book
    }

    /// What expires when, per policy in force: how many records of its scope are past its window (the
    /// worker's to act on, those already acted on included unless deleted) and when the next of the others
    /// expires (epoch ms). Counted over the whole scope, narrower policies' records included: an upper bound.
    public func expiring(now: Int64) async throws -> [(policy: RetentionPolicy, expired: Int64, nextExpiry: Int64?)] {
        var out: [(policy: RetentionPolicy, expired: Int64, nextExpiry: Int64?)] = []
        for policy in try await policies().all {
            guard let window = policy.windowDays else {
                out.append((policy, 0, nil))
                continue
            }
            let span = Int64(window) * 86_400_000, cutoff = now - span
            let scope = policy.scopeName, target = policy.project ?? policy.application ?? policy.surface ?? ""
            let row = try await log.pool.withConnection { c in
                let row = try c.query("""
                    SELECT count(*) FILTER (WHERE e.recorded_at < to_timestamp(\(cutoff)::bigint / 1000.0)),
                           (extract(epoch from min(e.recorded_at) FILTER (WHERE e.recorded_at >= to_timestamp(\(cutoff)::bigint / 1000.0))) * 1000)::bigint
                    FROM proj_certificate_records r JOIN ledger_entries e ON e.idx = r.first_idx
                    WHERE r.account = \(policy.account) AND r.lifecycle <> 'deleted'
                      AND CASE \(scope)::text
                            WHEN 'project' THEN EXISTS (SELECT 1 FROM proj_certificate_links l JOIN ledger_entries p ON p.idx = l.idx AND p.account = r.account
                                 WHERE l.certificate_hash = r.certificate_hash AND l.kind = 'project' AND l.ref = \(target))
                            WHEN 'application' THEN r.app_id = \(target)
                            WHEN 'surface' THEN r.execution_surface = \(target)
                            ELSE true END
                    """).single("the expiry")
                return (try row.int64(0), try row.optionalInt64(1))
            }
            out.append((policy, row.0, row.1.map { $0 + span }))
        }
        return out
    }

    /// Sets the policy of an account or one of its projects. A locked policy is only extended; shortening a
    /// governance policy needs a reason. Setting the policy in force again appends nothing.
    public func setPolicy(_ policy: RetentionPolicy, reason: String?, actor: String) async throws -> (entry: LedgerEntry?, policy: RetentionPolicy) {
        if let project = policy.project {
            guard ProtocolHash.isWellFormed(project) else {
                throw LedgerServerError(.invalidHashFormat, "a project policy names its projectHash (sha256: and 64 lowercase hex digits)")
            }
            let registrations = try await log.entries(subject: Subject.project(project)).entries
            guard registrations.contains(where: { $0.type == EventType.projectRegistered && $0.account == policy.account }) else {
                throw LedgerServerError(.notFound, "account \(policy.account.prefix(128)) has registered no project \(project)")
            }
        }
        guard !policy.account.isEmpty, policy.account.utf8.count <= 128 else { throw LedgerServerError(.invalidField, "account is 1 to 128 bytes") }
        guard [policy.project, policy.application, policy.surface].compactMap({ $0 }).count <= 1 else {
            throw LedgerServerError(.invalidRequest, "a policy has one scope: name at most one of project, application and surface")
        }
        if let application = policy.application { try Self.checkIdentifier(application, "application") }
        if let surface = policy.surface { try Self.checkIdentifier(surface, "surface") }
        if let w = policy.windowDays, !(1...36_500).contains(w) { throw LedgerServerError(.invalidField, "windowDays is from 1 to 36500") }
        let entries = try await log.entries(subject: policy.subject).entries
        var book = PolicyBook()
        for e in entries { book.apply(e) }
        let current = book.bySubject[policy.subject]
        if let current, current.policyClass == policy.policyClass, current.windowDays == policy.windowDays, current.action == policy.action,
            current.mode == policy.mode
        {
            return (nil, current)
        }
        if let refusal = RetentionPolicy.refusal(replacing: current, with: policy, reason: reason) {
            throw LedgerServerError(.conflict, refusal)
        }
        var body = JSONObject()
        body["account"] = .string(JSONString(policy.account))
        body["project"] = policy.project.map { .string(JSONString($0)) } ?? .null
        if let application = policy.application { body["application"] = .string(JSONString(application)) }
        if let surface = policy.surface { body["surface"] = .string(JSONString(surface)) }
        body["class"] = .string(JSONString(policy.policyClass.rawValue))
        body["windowDays"] = policy.windowDays.map { .number(Double($0)) } ?? .null
        body["action"] = .string(JSONString(policy.action.rawValue))
        body["mode"] = .string(JSONString(policy.mode.rawValue))
        body["reason"] = reason.map { .string(JSONString($0)) } ?? .null
        body["actor"] = .string(JSONString(actor))
        body["replaces"] = current.map { .number(Double($0.index)) } ?? .null
        var request = AppendRequest(subject: policy.subject, type: EventType.retentionPolicySet, account: policy.account, body: .object(body))
        request.expectedSubjectVersion = Int64(entries.count)
        do {
            let entry = try await log.append(request).entry
            var set = policy
            set.index = entry.index
            return (entry, set)
        } catch AppendRefusal.versionConflict {
            throw LedgerServerError(.conflict, "the policy changed while it was being set; retry")
        }
    }
}
