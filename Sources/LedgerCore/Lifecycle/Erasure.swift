import CERKit

/// A named legal hold (a case id) on one record, a run, a project or everything of an account. While any
/// hold applies, nothing under it is erased (archiving stays allowed); a hold has no end date, only a release.
public struct LegalHold: Sendable, Equatable {
    public enum Scope: String, Sendable, Equatable, CaseIterable {
        case record, run, project, account
    }
    public var holdId: String
    public var caseId: String
    public var scope: Scope
    public var account: String
    /// The held record's certificate hash (scope `record`).
    public var certificateHash: String?
    /// The held run's id (scope `run`) or project's hash (scope `project`).
    public var target: String?
    /// The `legal_hold.applied` entry.
    public var appliedIndex: Int64

    public init(
        holdId: String, caseId: String, scope: Scope, account: String, certificateHash: String?, target: String? = nil, appliedIndex: Int64
    ) {
        self.holdId = holdId
        self.caseId = caseId
        self.scope = scope
        self.account = account
        self.certificateHash = certificateHash
        self.target = target
        self.appliedIndex = appliedIndex
    }

    /// The body member that names a hold's target, by scope (nil for an account hold).
    public static func targetMember(_ scope: Scope) -> String? {
        switch scope {
        case .record: return "certificateHash"
        case .run: return "runId"
        case .project: return "projectHash"
        case .account: return nil
        }
    }

    /// Whether the hold covers the record: its account's, and the record itself, one of its runs or
    /// projects, or the whole account.
    public func covers(_ record: RecordScope) -> Bool {
        guard record.account == account else { return false }
        switch scope {
        case .account: return true
        case .record: return certificateHash == record.certificateHash
        case .run: return target.map(record.runs.contains) ?? false
        case .project: return target.map(record.projects.contains) ?? false
        }
    }

    public func covers(account: String, certificateHash: String) -> Bool {
        covers(RecordScope(account: account, certificateHash: certificateHash))
    }
}

/// The holds in force, folded from `legal_hold.applied` / `legal_hold.released` entries in log order.
public struct HoldBook: Sendable, Equatable {
    public private(set) var active: [String: LegalHold] = [:]

    public init() {}

    /// Folds one entry (other types are ignored). An application of a hold id already in force, or a
    /// release of one that is not, changes nothing.
    public mutating func apply(_ entry: LedgerEntry) {
        guard let id = entry.body["holdId"]?.stringValue else { return }
        switch entry.type {
        case EventType.legalHoldApplied:
            guard active[id] == nil, let account = entry.body["account"]?.stringValue,
                let scope = entry.body["scope"]?.stringValue.flatMap(LegalHold.Scope.init(rawValue:))
            else { return }
            let hash = entry.body["certificateHash"]?.stringValue
            let target = LegalHold.targetMember(scope).flatMap { entry.body[$0]?.stringValue }
            if LegalHold.targetMember(scope) != nil, target == nil { return }
            active[id] = LegalHold(
                holdId: id, caseId: entry.body["caseId"]?.stringValue ?? "", scope: scope, account: account, certificateHash: hash,
                target: scope == .record ? nil : target, appliedIndex: entry.index)
        case EventType.legalHoldReleased:
            active[id] = nil
        default:
            break
        }
    }

    /// The holds in force over an account's record, oldest first.
    public func holding(_ record: RecordScope) -> [LegalHold] {
        active.values.filter { $0.covers(record) }.sorted { $0.appliedIndex < $1.appliedIndex }
    }

    public func holding(account: String, certificateHash: String) -> [LegalHold] {
        holding(RecordScope(account: account, certificateHash: certificateHash))
    }
}

/// Whether a record's payload may be erased now, and if not, why and until when.
public enum ErasureDecision: Sendable, Equatable {
    case erase
    /// Not yet: a hold (until released) or the minimum floor (until `until`, epoch ms).
    case deferred(reason: String, until: Int64?)
    /// Refused: a locked retention policy keeps the record until `until` (epoch ms; nil: for ever). The
    /// request is answered and closed; the owner may ask again once the policy has expired.
    case denied(reason: String, until: Int64?)

    /// The system-wide minimum retention floor, 90 days unless configured otherwise.
    public static let defaultFloorDays = 90

    /// A locked policy in force over the record first (it refuses, as S3 Object Lock's compliance mode
    /// refuses a delete), then holds (they have no end), then the floor: nothing recorded less than
    /// `floorDays` ago is erased, whatever asked for it.
    public static func decide(recordedAt: Int64, now: Int64, floorDays: Int, holds: [LegalHold], policy: RetentionPolicy? = nil) -> ErasureDecision {
        if let policy, policy.mode == .locked, !policy.hasExpired(recordedAt: recordedAt, now: now) {
            let until = policy.windowDays.map { recordedAt + Int64($0) * 86_400_000 }
            return .denied(
                reason: "locked retention policy at entry \(policy.index) keeps the record " + (policy.windowDays.map { "\($0) days" } ?? "permanently"),
                until: until)
        }
        if let hold = holds.first {
            return .deferred(reason: "legal hold \(hold.holdId) (case \(hold.caseId)) applies", until: nil)
        }
        let until = recordedAt + Int64(floorDays) * 86_400_000
        if now < until {
            return .deferred(reason: "inside the minimum retention of \(floorDays) days", until: until)
        }
        return .erase
    }
}
