/// An account's record of one certificate hash, folded from its `cer.*` events in log order (pure):
/// the entry holding its best evidence, its visibility and lifecycle state. The live lookup and the
/// certificates read model both fold with this one reducer, so they cannot disagree.
public struct CertificateRecord: Sendable, Equatable {
    /// The record's lifecycle state.
    public enum State: String, Sendable {
        /// A signed attestation that carries its bundle.
        case attested
        /// A signed attestation of the bare hash.
        case stamped
        /// Known only through a registered project bundle.
        case registered
    }

    /// What the fold reads of one event.
    public struct Event: Sendable, Equatable {
        public var index: Int64
        public var type: String
        public var hasPayload: Bool
        public var visibility: String?
        public var bundleType: String?
        public var executionId: String?
        /// The state a `cer.lifecycle_changed` event leads to (its body's `to`).
        public var lifecycle: String?
        /// The application and execution surface an attestation names (`appId`, `executionSurface`).
        public var application: String?
        public var surface: String?
        public init(
            index: Int64, type: String, hasPayload: Bool, visibility: String?, bundleType: String? = nil, executionId: String? = nil,
            lifecycle: String? = nil, application: String? = nil, surface: String? = nil
        ) {
            self.application = application
            self.surface = surface
            self.index = index
            self.type = type
            self.hasPayload = hasPayload
            self.visibility = visibility
            self.bundleType = bundleType
            self.executionId = executionId
            self.lifecycle = lifecycle
        }
    }

    /// The entry with the record's best evidence.
    public var recordIndex: Int64
    public var hasBundle: Bool
    /// `public` or `private`.
    public var visibility: String
    public var state: State
    public var bundleType: String?
    public var executionId: String?
    public var firstIndex: Int64
    public var lastIndex: Int64
    /// Events folded into the record.
    public var events: Int64
    /// The lifecycle state (`cer.lifecycle_changed`).
    public var lifecycle: LifecycleState = .active
    /// True once its payload was erased (`payload.purged`).
    public var purged = false
    /// The pending `deletion.requested` entry, until a `deletion.completed` or `deletion.denied` answers it.
    public var deletionRequested: Int64?
    /// The application and execution surface of the first attestation that named them (retention scopes).
    public var application: String?
    public var surface: String?
    /// Deleted while hidden: it stays out of public answers (the live fold's; not a read-model column).
    public var hiddenWhenDeleted = false
    /// Whether the public resolver and anonymous provenance may show it (visibility aside).
    public var isPubliclyResolvable: Bool { lifecycle != .hidden && !hiddenWhenDeleted }

    public init(
        recordIndex: Int64, hasBundle: Bool, visibility: String, state: State, bundleType: String?, executionId: String?, firstIndex: Int64,
        lastIndex: Int64, events: Int64
    ) {
        self.recordIndex = recordIndex
        self.hasBundle = hasBundle
        self.visibility = visibility
        self.state = state
        self.bundleType = bundleType
        self.executionId = executionId
        self.firstIndex = firstIndex
        self.lastIndex = lastIndex
        self.events = events
    }

    /// The event types the fold reads.
    public static let eventTypes = [
        EventType.cerAttested, EventType.cerRegistered, EventType.cerVisibilityChanged, EventType.cerLifecycleChanged, EventType.payloadPurged,
        EventType.deletionRequested, EventType.deletionCompleted, EventType.deletionDenied,
    ]

    /// Folds `event` into `record` (nil: no record yet). Returns the record after it; an event that
    /// cannot start a record (a visibility change of an unknown one, another type) leaves it as it was.
    public static func fold(_ record: CertificateRecord?, _ e: Event) -> CertificateRecord? {
        switch e.type {
        case EventType.cerAttested, EventType.cerRegistered:
            let state: State = e.type == EventType.cerRegistered ? .registered : (e.hasPayload ? .attested : .stamped)
            guard var r = record else {
                var r = CertificateRecord(
                    recordIndex: e.index, hasBundle: e.hasPayload, visibility: e.visibility == "public" ? "public" : "private", state: state,
                    bundleType: e.bundleType, executionId: e.executionId, firstIndex: e.index, lastIndex: e.index, events: 1)
                r.application = e.application
                r.surface = e.surface
                return r
            }
            r.events += 1
            r.application = r.application ?? e.application
            r.surface = r.surface ?? e.surface
            r.lastIndex = e.index
            // A signed attestation is better evidence than a registration through a project, and one
            // that carries the bundle better than a hash-only stamp; the first such stays the record.
            let isAttestation = e.type == EventType.cerAttested
            if isAttestation && (r.state == .registered || (!r.hasBundle && e.hasPayload)) {
                r.recordIndex = e.index
                r.state = state
                r.hasBundle = r.hasBundle || e.hasPayload
                r.bundleType = e.bundleType ?? r.bundleType
                r.executionId = e.executionId ?? r.executionId
                if e.visibility == "public" { r.visibility = "public" }
            }
            return r
        case EventType.cerVisibilityChanged:
            guard let v = e.visibility else { return record }
            return record?.counting(e) { $0.visibility = v }
        case EventType.cerLifecycleChanged:
            guard let to = e.lifecycle.flatMap(LifecycleState.init(rawValue:)), record?.lifecycle != .deleted else { return record }
            return record?.counting(e) { r in
                if to == .deleted, r.lifecycle == .hidden { r.hiddenWhenDeleted = true }
                r.lifecycle = to
            }
        case EventType.payloadPurged:
            return record?.counting(e) { $0.purged = true }
        case EventType.deletionRequested:
            return record?.counting(e) { r in if r.lifecycle != .deleted, r.deletionRequested == nil { r.deletionRequested = e.index } }
        case EventType.deletionCompleted, EventType.deletionDenied:
            return record?.counting(e) { $0.deletionRequested = nil }
        default:
            return record
        }
    }

    /// The record after `change`, with `e` counted as one of its events.
    func counting(_ e: Event, _ change: (inout CertificateRecord) -> Void) -> CertificateRecord {
        var r = self
        change(&r)
        r.events += 1
        r.lastIndex = e.index
        return r
    }
}
