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
