import CERKit
import Testing
@testable import LedgerCore

/// The lifecycle model (PROTOCOL.md §8, issue 15): transitions, holds, the floor, and the record fold.
@Suite struct LifecycleTests {
    @Test func exactlyTheAllowedTransitions() {
        // Written out from the issue: active→archived, active→hidden, archived→active, hidden→active,
        // {active, archived, hidden}→deleted; nothing leaves deleted.
        let allowed: [String: String] = [
            "archive active": "archived", "hide active": "hidden", "restore archived": "active", "restore hidden": "active",
            "delete active": "deleted", "delete archived": "deleted", "delete hidden": "deleted",
        ]
        for action in LifecycleAction.allCases {
            for state in LifecycleState.allCases {
                #expect(action.target(from: state)?.rawValue == allowed["\(action.rawValue) \(state.rawValue)"], "\(action) from \(state)")
            }
        }
        #expect(LifecycleRefusal(current: .archived, action: .hide).description.contains("archived"))
        #expect(LifecycleRefusal(current: .deleted, action: .restore).description.contains("final"))
    }

    func entry(_ index: Int64, _ type: String, _ body: JSONValue, account: String? = nil, at time: Int64 = 0) -> LedgerEntry {
        try! LedgerEntry(
            index: index, subject: "s", subjectIndex: 0, type: type, account: account, recordedAt: time, body: body, payloadDigest: nil, prevSubjectLeaf: nil,
            idempotencyKey: nil)
    }

    @Test func holdsFoldAndCoverWhatTheyName() {
        var book = HoldBook()
        let h = "sha256:" + String(repeating: "a", count: 64), other = "sha256:" + String(repeating: "b", count: 64)
        book.apply(entry(1, EventType.legalHoldApplied, ["holdId": "h1", "caseId": "C-1", "scope": "record", "account": "acme", "certificateHash": .string(JSONString(h))]))
        book.apply(entry(2, EventType.legalHoldApplied, ["holdId": "h2", "caseId": "C-2", "scope": "account", "account": "beta"]))
        book.apply(entry(3, EventType.legalHoldApplied, ["holdId": "h3", "caseId": "C-3", "scope": "record", "account": "acme"]))  // no hash: ignored
        #expect(book.holding(account: "acme", certificateHash: h).map(\.holdId) == ["h1"])
        #expect(book.holding(account: "acme", certificateHash: other).isEmpty)
        #expect(book.holding(account: "beta", certificateHash: other).map(\.holdId) == ["h2"])
        #expect(book.holding(account: "other", certificateHash: h).isEmpty, "a hold is on one account's record")
        book.apply(entry(4, EventType.legalHoldApplied, ["holdId": "h1", "caseId": "C-9", "scope": "account", "account": "acme"]))
        #expect(book.active["h1"]?.caseId == "C-1", "applying a hold id in force changes nothing")
        book.apply(entry(5, EventType.legalHoldReleased, ["holdId": "h1"]))
        #expect(book.holding(account: "acme", certificateHash: h).isEmpty)
    }

    @Test func holdsComeFirstThenTheFloor() {
        let day: Int64 = 86_400_000
        let hold = LegalHold(holdId: "h", caseId: "C", scope: .account, account: "a", certificateHash: nil, appliedIndex: 1)
        guard case .deferred(let reason, nil) = ErasureDecision.decide(recordedAt: 0, now: 1000 * day, floorDays: 90, holds: [hold]) else {
            Issue.record("a hold defers without end")
            return
        }
        #expect(reason.contains("legal hold h"))
        #expect(ErasureDecision.decide(recordedAt: 0, now: 90 * day - 1, floorDays: 90, holds: []) == .deferred(
            reason: "inside the minimum retention of 90 days", until: 90 * day))
        #expect(ErasureDecision.decide(recordedAt: 0, now: 90 * day, floorDays: 90, holds: []) == .erase)
    }

    @Test func theRecordFoldKeepsDeletedFinal() {
        var r: CertificateRecord? = nil
        func fold(_ i: Int64, _ type: String, _ to: String? = nil, payload: Bool = false) {
            r = CertificateRecord.fold(r, CertificateRecord.Event(index: i, type: type, hasPayload: payload, visibility: "public", lifecycle: to))
        }
        fold(0, EventType.cerLifecycleChanged, "archived")
        #expect(r == nil, "a lifecycle event starts no record")
        fold(1, EventType.cerAttested, payload: true)
        #expect(r?.lifecycle == .active)
        fold(2, EventType.cerLifecycleChanged, "hidden")
        fold(3, EventType.deletionRequested)
        #expect(r?.lifecycle == .hidden && r?.deletionRequested == 3)
        fold(4, EventType.deletionRequested)
        #expect(r?.deletionRequested == 3, "the first pending request stays the one answered")
        fold(5, EventType.payloadPurged)
        fold(6, EventType.cerLifecycleChanged, "deleted")
        fold(7, EventType.deletionCompleted)
        #expect(r?.lifecycle == .deleted && r?.purged == true && r?.deletionRequested == nil)
        fold(8, EventType.cerLifecycleChanged, "active")
        #expect(r?.lifecycle == .deleted, "deleted is final")
        fold(9, EventType.deletionRequested)
        #expect(r?.deletionRequested == nil, "a deleted record takes no new request")
    }
}

/// Retention policies: classes, locked versus governance, the narrower scope.
@Suite struct RetentionPolicyTests {
    func policy(_ c: RetentionPolicy.Class, _ window: Int? = nil, _ action: RetentionPolicy.Action = .delete, _ mode: RetentionPolicy.Mode = .governance,
        project: String? = nil, index: Int64 = 1) -> RetentionPolicy
    {
        RetentionPolicy(account: "acme", project: project, policyClass: c, windowDays: window, action: action, mode: mode, index: index)
    }

    @Test func classesHaveTheirWindowsAndPermanentNeverExpires() {
        #expect(policy(.short).windowDays == 30 && policy(.standard).windowDays == 365 && policy(.long).windowDays == 3650)
        #expect(policy(.permanent, 10).windowDays == nil, "a permanent policy has no window, whatever is given")
        let day: Int64 = 86_400_000
        #expect(!policy(.short).hasExpired(recordedAt: 0, now: 30 * day - 1) && policy(.short).hasExpired(recordedAt: 0, now: 30 * day))
        #expect(!policy(.permanent).hasExpired(recordedAt: 0, now: Int64.max / 2))
    }

    @Test func aLockedPolicyIsOnlyExtendedAndShorteningAGovernanceOneNeedsAReason() {
        let locked = policy(.standard, nil, .delete, .locked)
        #expect(RetentionPolicy.refusal(replacing: locked, with: policy(.short, nil, .delete, .locked), reason: "please") != nil)
        #expect(RetentionPolicy.refusal(replacing: locked, with: policy(.long, nil, .delete, .locked), reason: nil) == nil)
        #expect(RetentionPolicy.refusal(replacing: locked, with: policy(.permanent, nil, .delete, .locked), reason: nil) == nil)
        #expect(RetentionPolicy.refusal(replacing: locked, with: policy(.long, nil, .delete, .governance), reason: "x") != nil, "no unlocking")
        #expect(RetentionPolicy.refusal(replacing: locked, with: policy(.long, nil, .archive, .locked), reason: "x") != nil, "no other action")
        #expect(RetentionPolicy.refusal(replacing: policy(.permanent, nil, .delete, .locked), with: policy(.long, nil, .delete, .locked), reason: "x") != nil)
        let governance = policy(.standard)
        #expect(RetentionPolicy.refusal(replacing: governance, with: policy(.short), reason: nil) != nil)
        #expect(RetentionPolicy.refusal(replacing: governance, with: policy(.short), reason: " ") != nil)
        #expect(RetentionPolicy.refusal(replacing: governance, with: policy(.short), reason: "contract ended") == nil)
        let archiving = policy(.standard, nil, .archive)
        #expect(RetentionPolicy.refusal(replacing: archiving, with: policy(.standard, nil, .delete), reason: nil) != nil, "making it delete is sensitive")
        #expect(RetentionPolicy.refusal(replacing: archiving, with: policy(.standard, nil, .delete), reason: "agreed") == nil)
        #expect(RetentionPolicy.refusal(replacing: governance, with: policy(.long, nil, .archive, .locked), reason: nil) == nil, "locking is allowed")
        #expect(RetentionPolicy.refusal(replacing: nil, with: policy(.short), reason: nil) == nil)
    }

    @Test func theNarrowerScopeWinsAndAmongProjectsTheLongestWindow() throws {
        var book = PolicyBook()
        func set(_ p: RetentionPolicy, _ index: Int64, reason: String? = nil) throws {
            var body: JSONObject = [
                "account": .string(JSONString(p.account)), "class": .string(JSONString(p.policyClass.rawValue)),
                "action": .string(JSONString(p.action.rawValue)), "mode": .string(JSONString(p.mode.rawValue)),
            ]
            body["project"] = p.project.map { .string(JSONString($0)) } ?? .null
            body["windowDays"] = p.windowDays.map { .number(Double($0)) } ?? .null
            body["reason"] = reason.map { .string(JSONString($0)) } ?? .null
            book.apply(try LedgerEntry(
                index: index, subject: p.subject, subjectIndex: 0, type: EventType.retentionPolicySet, account: p.account, recordedAt: 0,
                body: .object(body), payloadDigest: nil, prevSubjectLeaf: nil, idempotencyKey: nil))
        }
        let p1 = "sha256:" + String(repeating: "1", count: 64), p2 = "sha256:" + String(repeating: "2", count: 64)
        try set(policy(.short), 1)
        try set(policy(.standard, project: p1), 2)
        try set(policy(.long, project: p2), 3)
        #expect(book.effective(account: "acme", projects: [])?.index == 1)
        #expect(book.effective(account: "acme", projects: [p1])?.index == 2)
        #expect(book.effective(account: "acme", projects: [p1, p2])?.index == 3)
        #expect(book.effective(account: "other", projects: [p1]) == nil)
        // A locked policy in the log cannot be shortened by a later entry, even one written past the service.
        try set(policy(.standard, nil, .delete, .locked), 4)
        try set(policy(.short, nil, .delete, .locked), 5, reason: "sneaky")
        #expect(book.effective(account: "acme", projects: [])?.index == 4)
        // An entry whose subject does not match its scope is not a policy.
        #expect(RetentionPolicy(entry: try LedgerEntry(
            index: 9, subject: "retention:someone-else", subjectIndex: 0, type: EventType.retentionPolicySet, account: "acme", recordedAt: 0,
            body: ["account": "acme", "class": "short", "action": "delete", "mode": "governance"], payloadDigest: nil, prevSubjectLeaf: nil,
            idempotencyKey: nil)) == nil)
    }

    func entry(_ index: Int64, _ type: String, _ body: JSONValue, account: String? = nil) -> LedgerEntry {
        try! LedgerEntry(
            index: index, subject: "s", subjectIndex: 0, type: type, account: account, recordedAt: 0, body: body, payloadDigest: nil, prevSubjectLeaf: nil,
            idempotencyKey: nil)
    }

    @Test func runAndProjectHoldsCoverTheRecordsOfTheirGroupOnly() {
        var book = HoldBook()
        let h = "sha256:" + String(repeating: "a", count: 64), p = "sha256:" + String(repeating: "c", count: 64)
        book.apply(entry(1, EventType.legalHoldApplied, ["holdId": "r1", "caseId": "C-R", "scope": "run", "account": "acme", "runId": "run-7"]))
        book.apply(entry(2, EventType.legalHoldApplied, ["holdId": "p1", "caseId": "C-P", "scope": "project", "account": "acme", "projectHash": .string(JSONString(p))]))
        book.apply(entry(3, EventType.legalHoldApplied, ["holdId": "r2", "caseId": "C-X", "scope": "run", "account": "acme"]))  // no runId: ignored
        #expect(book.active["r2"] == nil)
        let inRun = RecordScope(account: "acme", certificateHash: h, runs: ["run-7"])
        let inProject = RecordScope(account: "acme", certificateHash: h, projects: [p])
        let loose = RecordScope(account: "acme", certificateHash: h, runs: ["run-8"], projects: ["sha256:" + String(repeating: "d", count: 64)])
        #expect(book.holding(inRun).map(\.holdId) == ["r1"])
        #expect(book.holding(inProject).map(\.holdId) == ["p1"])
        #expect(book.holding(loose).isEmpty)
        #expect(book.holding(RecordScope(account: "beta", certificateHash: h, runs: ["run-7"], projects: [p])).isEmpty, "another account's run of the same name")
        // The scope of a record is read from its account's attestations.
        let attested = entry(4, EventType.cerAttested, ["run": ["runId": "run-7"], "appId": "app-1", "executionSurface": "ai"], account: "acme")
        let others = entry(5, EventType.cerAttested, ["run": ["runId": "run-9"], "appId": "app-2"], account: "beta")
        let scope = RecordScope.of(account: "acme", certificateHash: h, entries: [attested, others], projects: [p])
        #expect(scope == RecordScope(account: "acme", certificateHash: h, runs: ["run-7"], projects: [p], application: "app-1", surface: "ai"))
    }

    @Test func aLockedPolicyDeniesBeforeHoldsAndTheFloor() {
        let day: Int64 = 86_400_000
        let locked = RetentionPolicy(account: "a", project: nil, policyClass: .standard, windowDays: nil, action: .archive, mode: .locked, index: 7)
        let hold = LegalHold(holdId: "h", caseId: "C", scope: .account, account: "a", certificateHash: nil, appliedIndex: 1)
        #expect(ErasureDecision.decide(recordedAt: 0, now: 100 * day, floorDays: 90, holds: [hold], policy: locked) == .denied(
            reason: "locked retention policy at entry 7 keeps the record 365 days", until: 365 * day))
        // Once its window has passed the locked policy no longer refuses; a governance policy never does.
        #expect(ErasureDecision.decide(recordedAt: 0, now: 365 * day, floorDays: 90, holds: [], policy: locked) == .erase)
        var governance = locked
        governance.mode = .governance
        #expect(ErasureDecision.decide(recordedAt: 0, now: 100 * day, floorDays: 90, holds: [], policy: governance) == .erase)
        let forever = RetentionPolicy(account: "a", project: nil, policyClass: .permanent, windowDays: nil, action: .archive, mode: .locked, index: 8)
        guard case .denied(_, nil) = ErasureDecision.decide(recordedAt: 0, now: 10_000 * day, floorDays: 90, holds: [], policy: forever) else {
            Issue.record("a permanent locked policy denies for ever")
            return
        }
    }

    @Test func theSurfaceThenTheApplicationThenProjectsThenTheAccount() throws {
        var book = PolicyBook()
        func set(_ p: RetentionPolicy, _ index: Int64) throws {
            var body: JSONObject = [
                "account": .string(JSONString(p.account)), "class": .string(JSONString(p.policyClass.rawValue)),
                "action": .string(JSONString(p.action.rawValue)), "mode": .string(JSONString(p.mode.rawValue)),
            ]
            if let v = p.project { body["project"] = .string(JSONString(v)) }
            if let v = p.application { body["application"] = .string(JSONString(v)) }
            if let v = p.surface { body["surface"] = .string(JSONString(v)) }
            body["windowDays"] = p.windowDays.map { .number(Double($0)) } ?? .null
            book.apply(try LedgerEntry(
                index: index, subject: p.subject, subjectIndex: 0, type: EventType.retentionPolicySet, account: p.account, recordedAt: 0,
                body: .object(body), payloadDigest: nil, prevSubjectLeaf: nil, idempotencyKey: nil))
        }
        let p1 = "sha256:" + String(repeating: "1", count: 64)
        try set(RetentionPolicy(account: "acme", project: nil, policyClass: .long, windowDays: nil, action: .delete, mode: .governance), 1)
        try set(RetentionPolicy(account: "acme", project: p1, policyClass: .standard, windowDays: nil, action: .archive, mode: .governance), 2)
        try set(RetentionPolicy(account: "acme", project: nil, application: "chat", policyClass: .short, windowDays: nil, action: .delete, mode: .governance), 3)
        try set(RetentionPolicy(account: "acme", project: nil, surface: "ai", policyClass: .standard, windowDays: 200, action: .review, mode: .locked), 4)
        func governing(projects: [String] = [], app: String? = nil, surface: String? = nil) -> Int64? {
            book.effective(RecordScope(account: "acme", certificateHash: "h", projects: projects, application: app, surface: surface))?.index
        }
        #expect(governing() == 1)
        #expect(governing(projects: [p1]) == 2)
        #expect(governing(projects: [p1], app: "chat") == 3)
        #expect(governing(projects: [p1], app: "chat", surface: "ai") == 4)
        #expect(governing(app: "other", surface: "code") == 1)
        // A locked policy is a floor for every record it covers, whichever scope governs it.
        #expect(book.lock(RecordScope(account: "acme", certificateHash: "h", application: "chat", surface: "ai"))?.index == 4)
        #expect(book.lock(RecordScope(account: "acme", certificateHash: "h", application: "chat")) == nil)
        #expect(book.narrower(than: book.bySubject["retention:acme"]!).map(\.index).sorted() == [2, 3, 4])
        #expect(book.narrower(than: book.bySubject["retention:acme:app:chat"]!).map(\.index) == [4])
        // Subjects of the new scopes, and a body naming two scopes is no policy.
        #expect(book.bySubject["retention:acme:surface:ai"]?.windowDays == 200)
        #expect(RetentionPolicy(entry: try LedgerEntry(
            index: 9, subject: "retention:acme:app:chat", subjectIndex: 0, type: EventType.retentionPolicySet, account: "acme", recordedAt: 0,
            body: ["account": "acme", "application": "chat", "surface": "ai", "class": "short", "action": "delete", "mode": "governance"],
            payloadDigest: nil, prevSubjectLeaf: nil, idempotencyKey: nil)) == nil)
    }

    @Test func aDenialClosesTheRequest() {
        var r: CertificateRecord? = nil
        r = CertificateRecord.fold(r, CertificateRecord.Event(index: 1, type: EventType.cerAttested, hasPayload: true, visibility: "private", application: "a", surface: "ai"))
        r = CertificateRecord.fold(r, CertificateRecord.Event(index: 2, type: EventType.deletionRequested, hasPayload: false, visibility: nil))
        #expect(r?.deletionRequested == 2)
        r = CertificateRecord.fold(r, CertificateRecord.Event(index: 3, type: EventType.deletionDenied, hasPayload: false, visibility: nil))
        #expect(r?.deletionRequested == nil && r?.lifecycle == .active)
        #expect(r?.application == "a" && r?.surface == "ai")
        r = CertificateRecord.fold(r, CertificateRecord.Event(index: 4, type: EventType.deletionRequested, hasPayload: false, visibility: nil))
        #expect(r?.deletionRequested == 4, "a new request may follow a denial")
    }
}
