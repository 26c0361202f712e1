/// The ledger's event types: every module names them through these constants, never as literals.
public enum EventType {
    /// A CER attested by this node (its signed receipt in the body, the bundle as payload when kept).
    public static let cerAttested = "cer.attested"
    /// A CER embedded in a registered project bundle, recorded by hash.
    public static let cerRegistered = "cer.registered"
    /// A certificate's visibility changed (public / private).
    public static let cerVisibilityChanged = "cer.visibility_changed"
    /// A project bundle registered (`cer.project.bundle.v1`).
    public static let projectRegistered = "project.registered"
    /// A project bundle's visibility changed.
    public static let projectVisibilityChanged = "project.visibility_changed"
    /// Node signing-key lifecycle.
    public static let keyActivated = "key.activated"
    public static let keyRetired = "key.retired"
    public static let keyRevoked = "key.revoked"
    /// An RFC 3161 token over a certificate hash (per record, NexArt-compatible; the token is the payload).
    public static let cerTimestamped = "cer.timestamped"
    /// An RFC 3161 token over a signed checkpoint note: an external upper bound on the time of every
    /// entry the checkpoint covers (the token is the payload).
    public static let checkpointTimestamped = "checkpoint.timestamped"
    /// A signed checkpoint anchored in another log (another node's `/api/stamp-hash` receipt over
    /// SHA-256 of the checkpoint note; the reply is the payload).
    public static let anchorRecorded = "anchor.recorded"
    /// Entries that are evidence about other entries: a checkpoint that covers only these (and what was
    /// already covered) is not timestamped or anchored again, so an idle log does not churn.
    public static let evidence: [String] = [checkpointTimestamped, anchorRecorded]
    /// A record's lifecycle state changed (active, archived, hidden, deleted): from, to, action, reason, actor.
    public static let cerLifecycleChanged = "cer.lifecycle_changed"
    /// An owner or an administrator asked for a record's erasure (alone, or as one of a run's, a project's
    /// or an account's records); the worker answers with `deletion.completed`, `deletion.deferred` (a hold,
    /// the floor: done later) or `deletion.denied` (a locked retention policy keeps the record: closed).
    public static let deletionRequested = "deletion.requested"
    public static let deletionCompleted = "deletion.completed"
    public static let deletionDeferred = "deletion.deferred"
    public static let deletionDenied = "deletion.denied"
    /// A payload (bundle) erased, recorded before its bytes and salt are deleted; names the entry whose
    /// payload it was and the entry that authorised it.
    public static let payloadPurged = "payload.purged"
    /// A named legal hold applied to or released from a record or an account (subject `hold:<id>`).
    public static let legalHoldApplied = "legal_hold.applied"
    public static let legalHoldReleased = "legal_hold.released"
    /// A retention policy set for an account or one of its projects (subject `retention:<account>[:<project>]`).
    public static let retentionPolicySet = "retention.policy_set"
    /// A record whose policy expired with the action `review` (or `export-delete`, until exports exist).
    public static let retentionReviewRequired = "retention.review_required"
    /// Synthetic events of `ledger append-load`.
    public static let load = "load.event"
}

/// The ledger's subjects: `<kind>:<id>`. Every module builds and reads them through these functions.
public enum Subject {
    /// A certificate's subject, by its `sha256:…` hash.
    public static func certificate(_ certificateHash: String) -> String { "cer:" + certificateHash }
    /// A project bundle's subject, by its project hash.
    public static func project(_ projectHash: String) -> String { "project:" + projectHash }
    /// A node signing key's subject, by its kid.
    public static func key(_ kid: String) -> String { "key:" + kid }
    /// The evidence about one signed checkpoint (timestamps), by its tree size.
    public static func checkpoint(_ size: Int64) -> String { "checkpoint:\(size)" }
    /// A retention policy's subject: an account's, or one of its projects'.
    public static func retention(account: String, project: String?) -> String {
        "retention:" + account + (project.map { ":" + $0 } ?? "")
    }
    /// An application-scoped retention policy's subject (account ids hold no ':').
    public static func retention(account: String, application: String) -> String { "retention:" + account + ":app:" + application }
    /// An execution-surface-scoped retention policy's subject.
    public static func retention(account: String, surface: String) -> String { "retention:" + account + ":surface:" + surface }
    /// A legal hold's subject, by its id.
    public static func hold(_ holdId: String) -> String { "hold:" + holdId }
    /// A synthetic run's subject (`ledger append-load`).
    public static func run(_ id: String) -> String { "run:" + id }

    /// The certificate hash of a `cer:` subject, or nil for another kind.
    public static func certificateHash(of subject: String) -> String? {
        subject.hasPrefix("cer:") ? String(subject.dropFirst(4)) : nil
    }
}
