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
}
