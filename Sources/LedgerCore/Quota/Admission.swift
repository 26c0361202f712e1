/// Why a charged append was not admitted.
public enum AdmissionRefusal: Sendable, Equatable, CustomStringConvertible {
    /// The account has used its whole limit for the period.
    case quotaExceeded(used: Int64, limit: Int64)
    /// The credential was revoked (or no longer exists).
    case credentialInactive
    /// The account does not exist.
    case unknownAccount

    public var description: String {
        switch self {
        case .quotaExceeded(let used, let limit): return "the monthly quota is used up (\(used) of \(limit))"
        case .credentialInactive: return "the API key is inactive"
        case .unknownAccount: return "the account does not exist"
        }
    }
}

/// An account's usage after a charged append was admitted.
public struct MeterReading: Sendable, Equatable {
    public var used: Int64
    public var limit: Int64
    public var remaining: Int64 { max(0, limit - used) }
    public init(used: Int64, limit: Int64) {
        self.used = used
        self.limit = limit
    }
}

/// A metered account and billing period.
public struct MeterKey: Hashable, Sendable, Comparable {
    public var account: String
    public var period: String
    public init(account: String, period: String) {
        self.account = account
        self.period = period
    }
    public init(_ charge: Charge) { self.init(account: charge.account, period: charge.period) }
    public static func < (a: MeterKey, b: MeterKey) -> Bool { (a.account, a.period) < (b.account, b.period) }
}

/// Quota admission for one batch (pure; the batch writer does the I/O). Charged requests are admitted
/// in order while their meter has room and their credential is active; every charged request takes a
/// slot, retries included (they are only known after planning). What the appended requests then add
/// to each meter, and each one's reading, follow from the planner's outcomes.
public struct Admission: Sendable {
    /// The meters as read (locked) before the batch: used so far and the limit.
    public let meters: [MeterKey: MeterReading]
    /// Per request: the refusal of its charge, if refused.
    public private(set) var refusals: [AppendRefusal?]

    /// Decides the charged requests of `requests` against `meters` (a missing meter: the account does
    /// not exist) and `activeCredentials`.
    public init(requests: [AppendRequest], meters: [MeterKey: MeterReading], activeCredentials: Set<Int64>) {
        self.meters = meters
        refusals = Array(repeating: nil, count: requests.count)
        var taken: [MeterKey: Int64] = [:]
        for (i, request) in requests.enumerated() {
            guard let charge = request.charge else { continue }
            let key = MeterKey(charge)
            guard let meter = meters[key] else {
                refusals[i] = .notAdmitted(.unknownAccount)
                continue
            }
            guard activeCredentials.contains(charge.credentialId) else {
                refusals[i] = .notAdmitted(.credentialInactive)
                continue
            }
            let used = meter.used + (taken[key] ?? 0)
            guard used < meter.limit else {
                refusals[i] = .notAdmitted(.quotaExceeded(used: used, limit: meter.limit))
                continue
            }
            taken[key, default: 0] += 1
        }
    }

    /// What the appended charged requests add to each meter (sorted, the order rows are locked in).
    public static func increments(_ requests: [AppendRequest], _ outcomes: [AppendOutcome]) -> [(key: MeterKey, count: Int64)] {
        var added: [MeterKey: Int64] = [:]
        for (i, request) in requests.enumerated() {
            guard let charge = request.charge, i < outcomes.count, case .appended = outcomes[i] else { continue }
            added[MeterKey(charge), default: 0] += 1
        }
        return added.map { ($0.key, $0.value) }.sorted { $0.key < $1.key }
    }

    /// Each charged request's reading, given the meters before the batch: the requests of one meter
    /// count up, in order, from its value before (a retry reads the count so far).
    public static func readings(
        _ requests: [AppendRequest], _ outcomes: [AppendOutcome], before: [MeterKey: MeterReading]
    ) -> [Int: MeterReading] {
        var added: [MeterKey: Int64] = [:]
        var readings: [Int: MeterReading] = [:]
        for (i, request) in requests.enumerated() {
            guard let charge = request.charge, i < outcomes.count else { continue }
            let key = MeterKey(charge)
            guard let meter = before[key] else { continue }
            if case .appended = outcomes[i] { added[key, default: 0] += 1 }
            readings[i] = MeterReading(used: meter.used + (added[key] ?? 0), limit: meter.limit)
        }
        return readings
    }

    /// The meters before a batch, from their values after it and what the batch added.
    public static func before(after: [MeterKey: MeterReading], increments: [(key: MeterKey, count: Int64)]) -> [MeterKey: MeterReading] {
        var before = after
        for (key, count) in increments { before[key]?.used -= count }
        return before
    }
}
