import CERKit
import Testing
@testable import LedgerCore

@Suite struct LedgerCoreTests {
    @Test func leafAndNodeHashesFollowRFC6962() {
        // RFC 6962 §2.1: the hash of an empty leaf is SHA-256(0x00) (independently known value).
        #expect(Hex.encode(Merkle.leafHash([])) == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        #expect(Merkle.nodeHash([1], [2]) == ProtocolHash.sha256([0x01, 1, 2]))
    }

    static func request(_ subject: String, key: String? = nil, expected: Int64? = nil) -> AppendRequest {
        AppendRequest(subject: subject, type: "cer.recorded", account: "acct", body: ["k": "v"], idempotencyKey: key, expectedSubjectVersion: expected)
    }

    @Test func planAssignsDenseIndexesAndChainsSubjects() throws {
        let (outcomes, size) = AppendPlanner.plan(
            requests: [Self.request("cer:a"), Self.request("cer:b"), Self.request("cer:a")], size: 10, subjects: [:], existing: [:],
            payloadDigests: [], recordedAt: 1_700_000_000_000)
        #expect(size == 13)
        guard case .appended(let a0) = outcomes[0], case .appended(let b0) = outcomes[1], case .appended(let a1) = outcomes[2] else {
            Issue.record("not appended: \(outcomes)")
            return
        }
        #expect([a0.index, b0.index, a1.index] == [10, 11, 12])
        #expect(a0.subjectIndex == 0 && a1.subjectIndex == 1 && b0.subjectIndex == 0)
        #expect(a0.prevSubjectLeaf == nil && a1.prevSubjectLeaf == a0.leafHash)
        #expect(a1.isLeafHashConsistent)
    }

    @Test func idempotencyAnswersRetriesEvenWithinOneBatch() {
        let (outcomes, size) = AppendPlanner.plan(
            requests: [Self.request("cer:a", key: "k1"), Self.request("cer:a", key: "k1")], size: 0, subjects: [:], existing: [:],
            payloadDigests: [], recordedAt: 0)
        #expect(size == 1)
        guard case .appended(let first) = outcomes[0], case .existing(let again) = outcomes[1] else {
            Issue.record("\(outcomes)")
            return
        }
        #expect(first == again)
    }

    @Test func expectedVersionIsEnforced() {
        let heads = ["cer:a": SubjectHead(count: 2, lastLeaf: [UInt8](repeating: 1, count: 32))]
        let (outcomes, size) = AppendPlanner.plan(
            requests: [Self.request("cer:a", expected: 1), Self.request("cer:a", expected: 2)], size: 5, subjects: heads,
            existing: [:], payloadDigests: [], recordedAt: 0)
        #expect(outcomes[0] == .versionConflict(subject: "cer:a", expected: 1, actual: 2))
        guard case .appended(let e) = outcomes[1] else { Issue.record("\(outcomes)"); return }
        #expect(e.subjectIndex == 2 && e.index == 5 && size == 6)
    }

    @Test func invalidRequestsAreRejectedWithAReason() {
        let raw = AppendRequest(subject: "cer:a", type: "t", body: ["output": "raw text"])
        let noKind = AppendRequest(subject: "abc", type: "t")
        let notObject = AppendRequest(subject: "cer:a", type: "t", body: "x")
        let (outcomes, size) = AppendPlanner.plan(
            requests: [raw, noKind, notObject], size: 0, subjects: [:], existing: [:], payloadDigests: [], recordedAt: 0)
        #expect(size == 0)
        for o in outcomes { if case .rejected = o {} else { Issue.record("accepted \(o)") } }
    }

    @Test func auditFindsEachKindOfDamage() throws {
        let (outcomes, _) = AppendPlanner.plan(
            requests: (0..<5).map { _ in Self.request("cer:a") }, size: 0, subjects: [:], existing: [:], payloadDigests: [], recordedAt: 0)
        let entries = outcomes.compactMap { if case .appended(let e) = $0 { return e } else { return nil } }
        var clean = LedgerAudit()
        entries.forEach { clean.check($0) }
        clean.finish(headSize: 5)
        #expect(clean.problems.isEmpty)

        var altered = entries
        altered[2].body = ["k": "forged"]
        var audit = LedgerAudit()
        altered.forEach { audit.check($0) }
        #expect(audit.problems.first?.index == 2)
        #expect(audit.problems.first?.what.contains("leaf hash") == true)

        var gap = LedgerAudit()
        entries.enumerated().filter { $0.offset != 1 }.forEach { gap.check($0.element) }
        gap.finish(headSize: 5)
        #expect(gap.problems.first?.index == 2)
        #expect(gap.problems.contains { $0.what.contains("not dense") })
    }
}
