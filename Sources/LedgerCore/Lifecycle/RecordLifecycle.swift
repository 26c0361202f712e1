/// A record's lifecycle (NexArt's record-management model, PROTOCOL.md §8): `active`, `archived` (still
/// verifiable and resolvable, out of default listings), `hidden` (not publicly resolvable), `deleted`
/// (its payload erased; entries, leaves, receipts and proofs remain). The bundle, its hash and its receipt
/// never change: the lifecycle is a management layer recorded as `cer.lifecycle_changed` events.
public enum LifecycleState: String, Sendable, CaseIterable, Equatable {
    case active, archived, hidden, deleted
}

/// What an owner or an administrator asks of a record.
public enum LifecycleAction: String, Sendable, CaseIterable, Equatable {
    case archive, hide, restore, delete

    /// The state `action` leads to from `state`, or nil when the transition is not allowed:
    /// active→archived, active→hidden, archived→active, hidden→active, {active, archived, hidden}→deleted.
    public func target(from state: LifecycleState) -> LifecycleState? {
        switch (self, state) {
        case (.archive, .active): return .archived
        case (.hide, .active): return .hidden
        case (.restore, .archived), (.restore, .hidden): return .active
        case (.delete, .active), (.delete, .archived), (.delete, .hidden): return .deleted
        default: return nil
        }
    }
}

/// A transition that is not allowed, naming the record's current state (an HTTP 409).
public struct LifecycleRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var current: LifecycleState
    public var action: LifecycleAction
    public var description: String {
        current == .deleted
            ? "the record is deleted, which is final: it cannot be \(action.pastTense)"
            : "a record that is \(current.rawValue) cannot be \(action.pastTense)"
    }
    public init(current: LifecycleState, action: LifecycleAction) {
        self.current = current
        self.action = action
    }
}

extension LifecycleAction {
    public var pastTense: String {
        switch self {
        case .archive: return "archived"
        case .hide: return "hidden"
        case .restore: return "restored"
        case .delete: return "deleted"
        }
    }
}

extension LifecycleState {
    /// Whether the public resolver may answer with the record.
    public var isPubliclyResolvable: Bool { self == .active || self == .archived }
}
