import CERKit
import Testing
@testable import LedgerCore

/// The certificate-record rule (decision 0012): a signed attestation beats a registration through a
/// project, an attestation carrying its bundle beats a hash-only stamp, and the first such stays.
@Suite struct CertificateRecordTests {
    static func event(_ index: Int64, _ type: String, payload: Bool = false, visibility: String? = nil) -> CertificateRecord.Event {
        CertificateRecord.Event(index: index, type: type, hasPayload: payload, visibility: visibility)
    }

    static func fold(_ events: [CertificateRecord.Event]) -> CertificateRecord? {
        events.reduce(nil) { CertificateRecord.fold($0, $1) }
    }

    @Test func anAttestationReplacesARegistrationAndABundleReplacesAStamp() throws {
        let r = try #require(Self.fold([
            Self.event(3, EventType.cerRegistered), Self.event(5, EventType.cerAttested), Self.event(8, EventType.cerAttested, payload: true),
        ]))
        #expect(r.recordIndex == 8 && r.state == .attested && r.hasBundle)
        #expect(r.firstIndex == 3 && r.lastIndex == 8 && r.events == 3)
    }

    @Test func theFirstBundleStaysTheRecord() throws {
        let r = try #require(Self.fold([
            Self.event(1, EventType.cerAttested, payload: true), Self.event(2, EventType.cerAttested, payload: true),
            Self.event(4, EventType.cerAttested), Self.event(6, EventType.cerRegistered),
        ]))
        #expect(r.recordIndex == 1 && r.state == .attested)
        #expect(r.events == 4 && r.lastIndex == 6)
    }

    @Test func aStampAfterARegistrationIsTheRecordButNotABundle() throws {
        let r = try #require(Self.fold([Self.event(0, EventType.cerRegistered), Self.event(1, EventType.cerAttested)]))
        #expect(r.recordIndex == 1 && r.state == .stamped && !r.hasBundle)
    }

    @Test func visibilityFollowsChangesAndABetterPublicRecord() throws {
        #expect(Self.fold([Self.event(0, EventType.cerVisibilityChanged, visibility: "public")]) == nil)
        let r = try #require(Self.fold([
            Self.event(0, EventType.cerAttested, visibility: "private"), Self.event(1, EventType.cerAttested, payload: true, visibility: "public"),
        ]))
        #expect(r.visibility == "public")
        let hidden = try #require(CertificateRecord.fold(r, Self.event(2, EventType.cerVisibilityChanged, visibility: "private")))
        #expect(hidden.visibility == "private" && hidden.recordIndex == 1 && hidden.events == 3)
        // A later, not better, public event does not make the record public.
        let again = try #require(CertificateRecord.fold(hidden, Self.event(3, EventType.cerAttested, visibility: "public")))
        #expect(again.visibility == "private")
    }

    @Test func otherTypesLeaveTheRecordAsItWas() throws {
        let r = Self.fold([Self.event(0, EventType.cerAttested)])
        #expect(CertificateRecord.fold(r, Self.event(1, EventType.projectRegistered)) == r)
    }
}

/// Quota admission, decided from the meters and credentials as read (pure).
@Suite struct AdmissionTests {
    static let period = "2026-12-01"
    static func charged(_ account: String, key: Int64 = 1) -> AppendRequest {
        AppendRequest(subject: "cer:x", type: "t", charge: Charge(account: account, credentialId: key, period: period))
    }

    @Test func chargesAreAdmittedInOrderWhileTheMeterHasRoom() {
        let meters = [MeterKey(account: "a", period: Self.period): MeterReading(used: 1, limit: 3)]
        let requests = [Self.charged("a"), AppendRequest(subject: "run:free", type: "t"), Self.charged("a"), Self.charged("a")]
        let admission = Admission(requests: requests, meters: meters, activeCredentials: [1])
        #expect(admission.refusals == [nil, nil, nil, .notAdmitted(.quotaExceeded(used: 3, limit: 3))])
    }

    @Test func unknownAccountsAndInactiveCredentialsAreRefused() {
        let meters = [MeterKey(account: "a", period: Self.period): MeterReading(used: 0, limit: 9)]
        let admission = Admission(requests: [Self.charged("ghost"), Self.charged("a", key: 7)], meters: meters, activeCredentials: [1])
        #expect(admission.refusals == [.notAdmitted(.unknownAccount), .notAdmitted(.credentialInactive)])
    }

    @Test func readingsCountUpFromTheMeterBeforeTheBatch() {
        let key = MeterKey(account: "a", period: Self.period)
        let requests = [Self.charged("a"), Self.charged("a"), Self.charged("a")]
        let entry = try! LedgerEntry(
            index: 0, subject: "cer:x", subjectIndex: 0, type: "t", account: nil, recordedAt: 0, body: [:], payloadDigest: nil, prevSubjectLeaf: nil,
            idempotencyKey: nil)
        let outcomes: [AppendOutcome] = [.appended(entry), .existing(entry), .appended(entry)]
        #expect(Admission.increments(requests, outcomes).map(\.count) == [2])
        let readings = Admission.readings(requests, outcomes, before: [key: MeterReading(used: 10, limit: 20)])
        #expect(readings[0]?.used == 11 && readings[1]?.used == 11 && readings[2]?.used == 12)
        #expect(Admission.before(after: [key: MeterReading(used: 12, limit: 20)], increments: [(key, 2)])[key]?.used == 10)
    }
}

/// A subject's chain checks (pure).
@Suite struct SubjectChainTests {
    @Test func gapsBrokenLinksAndWrongLeavesAreEachReported() throws {
        let a = try LedgerEntry(
            index: 0, subject: "run:r", subjectIndex: 0, type: "t", account: nil, recordedAt: 0, body: ["n": 0], payloadDigest: nil,
            prevSubjectLeaf: nil, idempotencyKey: nil)
        let b = try LedgerEntry(
            index: 1, subject: "run:r", subjectIndex: 1, type: "t", account: nil, recordedAt: 0, body: ["n": 1], payloadDigest: nil,
            prevSubjectLeaf: a.leafHash, idempotencyKey: nil)
        #expect(SubjectChain.problems(subject: "run:r", [a, b]).isEmpty)
        let c = try LedgerEntry(
            index: 2, subject: "run:r", subjectIndex: 3, type: "t", account: nil, recordedAt: 0, body: ["n": 3], payloadDigest: nil,
            prevSubjectLeaf: a.leafHash, idempotencyKey: nil)
        let problems = SubjectChain.problems(subject: "run:r", [a, b, c]).map(\.what)
        #expect(problems == ["1 entry of run:r missing before this one", "chain link does not match the previous entry"])
    }
}
