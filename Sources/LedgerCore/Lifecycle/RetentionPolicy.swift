import CERKit

/// A retention policy (PROTOCOL.md §8): a class with a window, what happens when it expires, and whether an
/// administrator may shorten it (`governance`, a recorded sensitive action) or it can only be extended
/// (`locked`, as S3 Object Lock's compliance mode). Scopes, broadest first: an account, a project of that
/// account, an application (`snapshot.appId`), an execution surface (`snapshot.executionSurface`); the
/// narrower scope wins. Policies are `retention.policy_set` entries on `retention:<account>`,
/// `retention:<account>:<projectHash>`, `retention:<account>:app:<appId>` or
/// `retention:<account>:surface:<surface>`; the latest of a subject is in force.
public struct RetentionPolicy: Sendable, Equatable {
    public enum Class: String, Sendable, CaseIterable {
        case short, standard, long, permanent
        /// The window when the policy names none: 30 days, 1 year, 10 years, never.
        public var defaultWindowDays: Int? {
            switch self {
            case .short: return 30
            case .standard: return 365
            case .long: return 3650
            case .permanent: return nil
            }
        }
    }
    public enum Action: String, Sendable, CaseIterable {
        case archive, delete, review
        /// Export, then delete: until verification packages exist (issue 16) it is treated as `review`.
        case exportThenDelete = "export-delete"
    }
    public enum Mode: String, Sendable, CaseIterable {
        case governance, locked
    }

    public var account: String
    /// The project hash of a project-scoped policy (nil: the whole account).
    public var project: String?
    /// The application (`appId`) of an application-scoped policy.
    public var application: String?
    /// The execution surface of a surface-scoped policy.
    public var surface: String?
    public var policyClass: Class
    /// Days after a record began until it expires (nil: never).
    public var windowDays: Int?
    public var action: Action
    public var mode: Mode
    /// The `retention.policy_set` entry (-1 before it is appended).
    public var index: Int64

    public init(
        account: String, project: String?, application: String? = nil, surface: String? = nil, policyClass: Class, windowDays: Int?, action: Action,
        mode: Mode, index: Int64 = -1
    ) {
        self.account = account
        self.project = project
        self.application = application
        self.surface = surface
        self.policyClass = policyClass
        self.windowDays = policyClass == .permanent ? nil : windowDays ?? policyClass.defaultWindowDays
        self.action = action
        self.mode = mode
        self.index = index
    }

    public var subject: String {
        if let surface { return Subject.retention(account: account, surface: surface) }
        if let application { return Subject.retention(account: account, application: application) }
        return Subject.retention(account: account, project: project)
    }

    /// The scope's name (`account`, `project`, `application` or `surface`).
    public var scopeName: String {
        surface != nil ? "surface" : application != nil ? "application" : project != nil ? "project" : "account"
    }

    /// Whether the policy's scope takes in the record (whether it is the one in force is `PolicyBook`'s).
    public func covers(_ record: RecordScope) -> Bool {
        guard record.account == account else { return false }
        if let surface { return record.surface == surface }
        if let application { return record.application == application }
        if let project { return record.projects.contains(project) }
        return true
    }

    /// Whether a record that began at `recordedAt` (epoch ms) has expired at `now`.
    public func hasExpired(recordedAt: Int64, now: Int64) -> Bool {
        guard let windowDays else { return false }
        return now - recordedAt >= Int64(windowDays) * 86_400_000
    }

    /// Why `new` may not replace `old` (nil: it may). A locked policy is only ever extended: its window
    /// does not shrink, its action and mode stay. Shortening a governance policy is allowed with a reason.
    public static func refusal(replacing old: RetentionPolicy?, with new: RetentionPolicy, reason: String?) -> String? {
        guard let old else { return nil }
        let shorter: Bool
        switch (old.windowDays, new.windowDays) {
        case (nil, nil): shorter = false
        case (nil, _): shorter = true
        case (_, nil): shorter = false
        case (let o?, let n?): shorter = n < o
        }
        if old.mode == .locked {
            if new.mode != .locked { return "the policy is locked: it cannot become a governance policy" }
            if shorter { return "the policy is locked: its window can only be extended, not shortened from \(old.windowDays.map { "\($0) days" } ?? "permanent")" }
            if new.action != old.action { return "the policy is locked: its expiry action stays \(old.action.rawValue)" }
            return nil
        }
        if (shorter || (new.action == .delete && old.action != .delete)) && (reason ?? "").allSatisfy(\.isWhitespace) {
            return "shortening a governance policy, or making it delete, is a sensitive action: give a reason"
        }
        return nil
    }

    /// The policy an entry sets, or nil for another kind of entry or a malformed body.
    public init?(entry: LedgerEntry) {
        guard entry.type == EventType.retentionPolicySet, let account = entry.body["account"]?.stringValue,
            let c = entry.body["class"]?.stringValue.flatMap(Class.init(rawValue:)),
            let action = entry.body["action"]?.stringValue.flatMap(Action.init(rawValue:)),
            let mode = entry.body["mode"]?.stringValue.flatMap(Mode.init(rawValue:))
        else { return nil }
        let window = entry.body["windowDays"]?.numberValue.flatMap { Int(exactly: $0) }
        let project = entry.body["project"]?.stringValue, application = entry.body["application"]?.stringValue
        let surface = entry.body["surface"]?.stringValue
        guard [project, application, surface].compactMap({ $0 }).count <= 1 else { return nil }
        self.init(
            account: account, project: project, application: application, surface: surface, policyClass: c, windowDays: window, action: action,
            mode: mode, index: entry.index)
        guard entry.subject == subject else { return nil }
    }
}

/// The policies in force, folded from `retention.policy_set` entries in log order.
public struct PolicyBook: Sendable, Equatable {
    public private(set) var bySubject: [String: RetentionPolicy] = [:]

    public init() {}

    public mutating func apply(_ entry: LedgerEntry) {
        guard let policy = RetentionPolicy(entry: entry) else { return }
        // A change a locked policy refuses cannot have been appended by the service; if one is in the log
        // anyway it is ignored here (the worker never acts on it).
        if RetentionPolicy.refusal(replacing: bySubject[policy.subject], with: policy, reason: entry.body["reason"]?.stringValue) != nil { return }
        bySubject[policy.subject] = policy
    }

    public var all: [RetentionPolicy] { bySubject.values.sorted { $0.index < $1.index } }

    /// The policy in force over a record: the narrowest scope that has one wins (its execution surface's,
    /// its application's, its projects', its account's); among several projects, the one that keeps
    /// records longest.
    public func effective(_ record: RecordScope) -> RetentionPolicy? {
        if let surface = record.surface, let p = bySubject[Subject.retention(account: record.account, surface: surface)] { return p }
        if let app = record.application, let p = bySubject[Subject.retention(account: record.account, application: app)] { return p }
        let projectPolicies = record.projects.compactMap { bySubject[Subject.retention(account: record.account, project: $0)] }
        if let longest = projectPolicies.max(by: { ($0.windowDays ?? Int.max) < ($1.windowDays ?? Int.max) }) { return longest }
        return bySubject[Subject.retention(account: record.account, project: nil)]
    }

    /// The locked policy covering the record that keeps it longest, whatever scope governs it: a locked
    /// policy is a floor for every record in its scope, so a narrower governance policy cannot erase (or let
    /// a request erase) what it keeps, as no S3 object can leave compliance mode early.
    public func lock(_ record: RecordScope) -> RetentionPolicy? {
        all.filter { $0.mode == .locked && $0.covers(record) }.max { ($0.windowDays ?? Int.max) < ($1.windowDays ?? Int.max) }
    }

    public func effective(account: String, projects: [String]) -> RetentionPolicy? {
        effective(RecordScope(account: account, certificateHash: "", projects: projects))
    }

    /// The policies of `account` narrower than `policy` (which may take some of its records from it).
    public func narrower(than policy: RetentionPolicy) -> [RetentionPolicy] {
        let rank = ["account": 0, "project": 1, "application": 2, "surface": 3]
        return all.filter { $0.account == policy.account && rank[$0.scopeName]! > rank[policy.scopeName]! }
    }
}
