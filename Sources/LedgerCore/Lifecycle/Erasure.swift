import CERKit

/// A named legal hold (a case id) on one record or on everything of an account. While any hold applies,
/// nothing under it is erased (archiving stays allowed); a hold has no end date, only a release.
public struct LegalHold: Sendable, Equatable {
    public enum Scope: String, Sendable, Equatable, CaseIterable {
        case record, account
    }
    public var holdId: String
    public var caseId: String
    public var scope: Scope
    public var account: String
    /// The held record's certificate hash (scope `record`).
    public var certificateHash: String?
    /// The `legal_hold.applied` entry.
    public var appliedIndex: Int64

    public init(holdId: String, caseId: String, scope: Scope, account: String, certificateHash: String?, appliedIndex: Int64) {
        self.holdId = holdId
        self.caseId = caseId
        self.scope = scope
        self.account = account
        self.certificateHash = certificateHash
        self.appliedIndex = appliedIndex
    }

    public func covers(account: String, certificateHash: String) -> Bool {
        guard account == self.account else { return false }
        return scope == .account || self.certificateHash == certificateHash
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
            if scope == .record, hash == nil { return }
            active[id] = LegalHold(
                holdId: id, caseId: entry.body["caseId"]?.stringValue ?? "", scope: scope, account: account, certificateHash: hash,
                appliedIndex: entry.index)
        case EventType.legalHoldReleased:
            active[id] = nil
        default:
            break
        }
    }

    /// The holds in force over an account's record, oldest first.
    public func holding(account: String, certificateHash: String) -> [LegalHold] {
        active.values.filter { $0.covers(account: account, certificateHash: certificateHash) }.sorted { $0.appliedIndex < $1.appliedIndex }
    }
}

/// Whether a record's payload may be erased now, and if not, why and until when.
public enum ErasureDecision: Sendable, Equatable {
    case erase
    /// Not yet: a hold (until released) or the minimum floor (until `until`, epoch ms).
    case deferred(reason: String, until: Int64?)

    /// The system-wide minimum retention floor, 90 days unless configured otherwise.
    public static let defaultFloorDays = 90

    /// Holds first (they have no end), then the floor: nothing recorded less than `floorDays` ago is
    /// erased, whatever asked for it.
    public static func decide(recordedAt: Int64, now: Int64, floorDays: Int, holds: [LegalHold]) -> ErasureDecision {
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
