import CERKit
import LedgerCore
import LedgerTesting
import Testing
@testable import LedgerStore

@Suite struct EventLogTests {
    func withLog<T>(_ body: (PostgresEventLog, String) async throws -> T) async throws -> T {
        let conninfo = try TestDatabase.create()
        let pool = TestDatabase.pool(conninfo)
        let log = PostgresEventLog(pool: pool)
        do {
            let value = try await body(log, conninfo)
            await pool.shutdown()
            return value
        } catch {
            await pool.shutdown()
            throw error
        }
    }

    @Test func concurrentAppendsFormOneDenseLogInFewerTransactions() async throws {
        try await withLog { log, _ in
            let results = try await withThrowingTaskGroup(of: AppendResult.self) { group in
                for i in 0..<300 {
                    group.addTask { try await log.append(AppendRequest(subject: "run:r\(i % 7)", type: "run.step_linked", body: ["i": .number(Double(i))])) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(results.map(\.entry.index)) == Set(0..<300))
            #expect(try await log.size() == 300)
            #expect(log.statistics.batches < 300)  // group commit happened
            for s in 0..<7 {
                let (entries, problems) = try await log.entries(subject: "run:r\(s)")
                #expect(problems.isEmpty)
                #expect(entries.map(\.subjectIndex) == (0..<Int64(entries.count)).map { $0 })
            }
        }
    }

    @Test func idempotentRetryReturnsTheOriginalEntry() async throws {
        try await withLog { log, _ in
            let request = AppendRequest(subject: "cer:h", type: "cer.attested", body: ["a": 1], idempotencyKey: "exec-1")
            let first = try await log.append(request)
            let again = try await log.append(AppendRequest(subject: "cer:h", type: "cer.attested", body: ["a": 2], idempotencyKey: "exec-1"))
            guard case .appended(let e1) = first, case .existing(let e2) = again else { Issue.record("\(first) \(again)"); return }
            #expect(e1 == e2)
            #expect(try await log.size() == 1)
            #expect(try await log.entry(subject: "cer:h", type: "cer.attested", idempotencyKey: "exec-1") == e1)
        }
    }

    @Test func staleExpectedVersionIsRefused() async throws {
        try await withLog { log, _ in
            _ = try await log.append(AppendRequest(subject: "project:p", type: "project.registered", expectedSubjectVersion: 0))
            await #expect(throws: AppendRefusal.versionConflict(subject: "project:p", expected: 0, actual: 1)) {
                try await log.append(AppendRequest(subject: "project:p", type: "project.registered", expectedSubjectVersion: 0))
            }
            let size = try await log.size()
            #expect(size == 1)
        }
    }

    @Test func invalidRequestsWriteNothing() async throws {
        try await withLog { log, _ in
            await #expect(throws: AppendRefusal.self) {
                try await log.append(AppendRequest(subject: "cer:x", type: "cer.recorded", body: ["output": "raw"]))
            }
            let size = try await log.size()
            #expect(size == 0)
        }
    }

    @Test func payloadsAreStoredApartAndADeletionNoPurgeRecordsIsNamed() async throws {
        try await withLog { log, conninfo in
            let result = try await log.append(AppendRequest(subject: "cer:p", type: "cer.recorded", payload: Array("bundle bytes".utf8)))
            let digest = try #require(result.entry.payloadDigest)
            #expect(try await log.payload(digest: digest) == Array("bundle bytes".utf8))
            var report = try await LedgerVerifier.verify(pool: log.pool)
            #expect(report.isIntact && report.payloadsChecked == 1)
            #expect(try await log.deletePayload(digest: digest))
            #expect(try await log.payload(digest: digest) == nil)
            // The leaves and the tree are unaffected; the audit names the one missing payload no purge accounts for.
            report = try await LedgerVerifier.verify(pool: log.pool)
            #expect(report.problems.map(\.description) == ["entry 0: the payload of cer:p is missing and no payload.purged entry records its erasure"])
            #expect(report.payloadsChecked == 0)
            _ = conninfo
        }
    }
}
