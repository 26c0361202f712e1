import CERKit
import LedgerCore
import LedgerStore
import LedgerTesting
import Testing
@testable import LedgerProjections

/// The certificates read model, applied from a real log in PostgreSQL: the stored record is the one the
/// certificate-record rule names, whatever chunks the runner applied the events in.
@Suite(.blockingIO) struct CertificatesProjectionTests {
    static let hash = "sha256:" + String(repeating: "ab", count: 32)

    static func event(_ type: String, account: String, visibility: String, payload: Bool = false) -> AppendRequest {
        AppendRequest(
            subject: Subject.certificate(hash), type: type, account: account,
            body: ["certificateHash": .string(JSONString(hash)), "visibility": .string(JSONString(visibility))],
            payload: payload ? Array("{}".utf8) : nil)
    }

    @Test(arguments: [1, 2, 5000])
    func theStoredRecordIsTheBestEvidenceInAnyChunking(chunk: Int) async throws {
        let conninfo = try TestDatabase.create()
        let pool = TestDatabase.pool(conninfo)
        let log = PostgresEventLog(pool: pool)
        // Entries 0…4: a registration, a stamp, the bundle, a later stamp, then the record made private;
        // another account's stamp in between (5) is its own record.
        for request in [
            Self.event(EventType.cerRegistered, account: "a", visibility: "public"),
            Self.event(EventType.cerAttested, account: "a", visibility: "public"),
            Self.event(EventType.cerAttested, account: "a", visibility: "public", payload: true),
            Self.event(EventType.cerAttested, account: "a", visibility: "public"),
            Self.event(EventType.cerVisibilityChanged, account: "a", visibility: "private"),
            Self.event(EventType.cerAttested, account: "b", visibility: "public"),
        ] {
            _ = try await log.append(request)
        }
        let runner = ProjectionRunner(pool: pool, projections: [CertificatesProjection()], chunk: chunk)
        try await runner.catchUp()
        let dump = try await runner.dump("certificates")
        let rows = dump.split(separator: "\n").filter { $0.hasPrefix("sha256:") }.map { $0.split(separator: "\t").map(String.init) }
        // certificate_hash, account, record_idx, has_bundle, visibility, state, bundle_type, execution_id, first, last, events
        #expect(rows.count == 2)
        #expect(rows.first { $0[1] == "a" }.map { Array($0[2...5]) + Array($0[8...10]) } == ["2", "t", "private", "attested", "0", "4", "5"])
        #expect(rows.first { $0[1] == "b" }.map { Array($0[2...5]) + Array($0[8...10]) } == ["5", "f", "public", "stamped", "5", "5", "1"])
        await pool.shutdown()
    }
}
