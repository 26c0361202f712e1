import CERKit

/// What one account's record belongs to, as far as legal holds and retention policies are concerned: the
/// account, the certificate hash, the runs its attestations name (`snapshot.runId`), the projects the
/// account registered that list it, and the application (`snapshot.appId`) and execution surface
/// (`snapshot.executionSurface`) its attestation recorded. Built from the log (the audit) or from the
/// read models (the worker), and given to `HoldBook` and `PolicyBook`, which decide from it alone.
public struct RecordScope: Sendable, Equatable {
    public var account: String
    public var certificateHash: String
    public var runs: Set<String>
    public var projects: [String]
    public var application: String?
    public var surface: String?

    public init(
        account: String, certificateHash: String, runs: Set<String> = [], projects: [String] = [], application: String? = nil, surface: String? = nil
    ) {
        self.account = account
        self.certificateHash = certificateHash
        self.runs = runs
        self.projects = projects
        self.application = application
        self.surface = surface
    }

    /// The runs, application and surface named by the account's `cer.attested` / `cer.registered` entries
    /// among `entries` (a certificate subject's), with the projects given.
    public static func of(account: String, certificateHash: String, entries: [LedgerEntry], projects: [String]) -> RecordScope {
        var scope = RecordScope(account: account, certificateHash: certificateHash, projects: projects)
        for e in entries where e.account == account && (e.type == EventType.cerAttested || e.type == EventType.cerRegistered) {
            if let run = e.body["run"]?["runId"]?.stringValue { scope.runs.insert(run) }
            if scope.application == nil { scope.application = e.body["appId"]?.stringValue }
            if scope.surface == nil { scope.surface = e.body["executionSurface"]?.stringValue }
        }
        return scope
    }
}
