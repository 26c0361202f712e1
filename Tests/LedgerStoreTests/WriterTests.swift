import CERKit
import LedgerCore
import LedgerTesting
import Testing
@testable import LedgerStore

/// The sequencer's one-round-trip path trusts what its writer saw last; these check that every wrong
/// assumption (another writer appended, a subject or key existed before, a quota is full) is caught.
@Suite struct WriterTests {
    @Test func twoWritersOnOneDatabaseMakeOneDenseChainedLog() async throws {
        let conninfo = try TestDatabase.create()
        let poolA = TestDatabase.pool(conninfo), poolB = TestDatabase.pool(conninfo)
        let a = PostgresEventLog(pool: poolA), b = PostgresEventLog(pool: poolB)
        // Subjects that exist before either writer has seen them.
        for i in 0..<5 { _ = try await a.append(AppendRequest(subject: "run:s\(i)", type: "t", body: ["seed": .number(Double(i))])) }
        let fresh = PostgresEventLog(pool: poolA)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<400 {
                let log = [fresh, b][i % 2]
                group.addTask { _ = try await log.append(AppendRequest(subject: "run:s\(i % 5)", type: "t", body: ["i": .number(Double(i))])) }
            }
            try await group.waitForAll()
        }
        #expect(try await fresh.size() == 405)
        let report = try await LedgerVerifier.verify(pool: poolA)
        #expect(report.isIntact, "\(report.problems.prefix(3))")
        for i in 0..<5 {
            let (entries, problems) = try await b.entries(subject: "run:s\(i)")
            #expect(problems.isEmpty)
            #expect(entries.count == 81)
        }
        await poolA.shutdown()
        await poolB.shutdown()
    }

    @Test func retriesAndClaimsMadeBeforeTheWriterStartedAreFound() async throws {
        let conninfo = try TestDatabase.create()
        let pool = TestDatabase.pool(conninfo)
        let first = PostgresEventLog(pool: pool)
        let original = try await first.append(AppendRequest(
            subject: "cer:x", type: "cer.attested", body: [:], idempotencyKey: "acct", claim: Claim(scope: "exec:acct", key: "e1", value: "x")))
        _ = try await first.append(AppendRequest(subject: "run:warm", type: "t"))  // the writer now has a size to trust
        let second = PostgresEventLog(pool: pool)
        _ = try await second.append(AppendRequest(subject: "run:warm2", type: "t"))
        // The same key again: the original entry comes back; another value for the claim is refused.
        let retry = try await second.append(AppendRequest(subject: "cer:x", type: "cer.attested", body: [:], idempotencyKey: "acct"))
        #expect(retry == .existing(original.entry))
        await #expect(throws: AppendRefusal.claimConflict(scope: "exec:acct", key: "e1", existingValue: "x")) {
            _ = try await second.append(AppendRequest(subject: "cer:y", type: "cer.attested", body: [:], claim: Claim(scope: "exec:acct", key: "e1", value: "y")))
        }
        // A subject that existed before this writer: the next entry chains to it.
        let chained = try await second.append(AppendRequest(subject: "cer:x", type: "cer.visibility_changed", body: [:]))
        #expect(chained.entry.subjectIndex == 1 && chained.entry.prevSubjectLeaf == original.entry.leafHash)
        #expect(try await second.size() == 4)
        #expect(try await LedgerVerifier.verify(pool: pool).isIntact)
        await pool.shutdown()
    }

    @Test func chargesAreAdmittedUpToTheLimitAcrossBothPaths() async throws {
        let conninfo = try TestDatabase.create()
        try TestDatabase.superuser(conninfo, """
            INSERT INTO accounts (id, plan, monthly_limit) VALUES ('acct', 'free', 3);
            INSERT INTO api_keys (account_id, key_hash, key_prefix) VALUES ('acct', decode(repeat('ab', 32), 'hex'), 'el_live_abcd');
            """)
        let pool = TestDatabase.pool(conninfo)
        let log = PostgresEventLog(pool: pool)
        let charge = Charge(account: "acct", credentialId: 1, period: "2026-11-01")
        var admitted = 0
        var refused: [AppendRefusal] = []
        for i in 0..<5 {
            do {
                let (_, meter) = try await log.appendMetered(group: [AppendRequest(subject: "cer:\(i)", type: "cer.attested", charge: charge)])
                admitted += 1
                #expect(meter == MeterReading(used: Int64(admitted), limit: 3))
            } catch let refusal as AppendRefusal {
                refused.append(refusal)
            }
        }
        #expect(admitted == 3)
        #expect(refused == [.notAdmitted(.quotaExceeded(used: 3, limit: 3)), .notAdmitted(.quotaExceeded(used: 3, limit: 3))])
        try TestDatabase.superuser(conninfo, "UPDATE api_keys SET status = 'revoked', revoked_at = now(); UPDATE accounts SET monthly_limit = 10")
        await #expect(throws: AppendRefusal.notAdmitted(.credentialInactive)) {
            _ = try await log.append(AppendRequest(subject: "cer:late", type: "cer.attested", charge: charge))
        }
        #expect(try await log.size() == 3)
        await pool.shutdown()
    }
}
