import CERKit
import Testing
@testable import LedgerCore

@Suite struct GroupsAndKeysTests {
    static func request(_ subject: String, expected: Int64? = nil, key: String? = nil) -> AppendRequest {
        AppendRequest(subject: subject, type: "t", account: "a", body: ["x": 1], idempotencyKey: key, expectedSubjectVersion: expected)
    }

    @Test func aGroupIsAllOrNothing() {
        // Group 1 (two members) fails on its second member; group 2 must get the indexes group 1 would have used.
        let requests = [Self.request("s:a"), Self.request("s:b", expected: 5), Self.request("s:c")]
        let (outcomes, size) = AppendPlanner.plan(
            requests: requests, size: 0, subjects: [:], existing: [:], payloadDigests: [], recordedAt: 0, groupSizes: [2, 1])
        #expect(size == 1)
        #expect(outcomes[0] == .rejected(.refusedWithGroup))
        #expect(outcomes[1] == .versionConflict(subject: "s:b", expected: 5, actual: 0))
        guard case .appended(let c) = outcomes[2] else {
            Issue.record("\(outcomes[2])")
            return
        }
        #expect(c.index == 0 && c.subjectIndex == 0 && c.prevSubjectLeaf == nil)
    }

    @Test func rejectionsAndFinalizersApplyPerRequest() throws {
        var finalized = Self.request("s:f")
        finalized.finalizer = BodyFinalizer { index, time in ["index": .number(Double(index)), "time": .number(Double(time))] }
        var failing = Self.request("s:g")
        finalized.body = ["placeholder": true]
        struct Refused: Error {}
        failing.finalizer = BodyFinalizer { _, _ in throw Refused() }
        let (outcomes, size) = AppendPlanner.plan(
            requests: [Self.request("s:r"), finalized, failing], size: 7, subjects: [:], existing: [:], payloadDigests: [], recordedAt: 42,
            rejections: [.notAdmitted(.unknownAccount), nil, nil])
        #expect(outcomes[0] == .rejected(.notAdmitted(.unknownAccount)))
        guard case .appended(let e) = outcomes[1] else {
            Issue.record("\(outcomes[1])")
            return
        }
        #expect(e.index == 7 && e.body == ["index": 7, "time": 42])
        #expect(e.isLeafHashConsistent)
        guard case .rejected(.invalid(let why)) = outcomes[2] else {
            Issue.record("\(outcomes[2])")
            return
        }
        #expect(why.contains("could not be completed"))
        #expect(size == 8)
    }

    @Test func assembledCanonicalBytesEqualTheEncodersOutput() throws {
        let bodies: [JSONValue] = [[:], ["z": "é\u{1F600}\"\\\n", "a": [1, 2.5, nil, true], "b": ["c": ["d": -0.0001]]], ["q": 1e21]]
        for (i, body) in bodies.enumerated() {
            for account in [nil, "acme \"quoted\""] as [String?] {
                let e = try LedgerEntry(
                    index: Int64(i) * 1_000_003, subject: "cer:sha256:\(i)\u{2028}", subjectIndex: Int64(i), type: "cer.attested", account: account,
                    recordedAt: 1_763_700_000_123, body: body, payloadDigest: i == 0 ? nil : [UInt8](repeating: UInt8(i), count: 32),
                    prevSubjectLeaf: i == 2 ? [UInt8](repeating: 9, count: 32) : nil, idempotencyKey: i == 1 ? "k\u{0}" : nil)
                #expect(try e.canonicalBytes() == e.referenceCanonicalBytes())
                #expect(e.leafHash == Merkle.leafHash(try e.referenceCanonicalBytes()))
                #expect(e.canonicalBody == (try CanonicalJSON.encode(body, profile: .nexartV1)))
            }
        }
    }
}
