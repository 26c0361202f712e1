import CERKit
import LedgerCore
import LedgerTesting
import Testing
@testable import LedgerStore

@Suite struct BatchIsolationTests {
    /// One ticket the database refuses (a claim key over the column's 1,024-character check) fails alone;
    /// the other tickets written in the same batches are committed, and the log stays dense.
    @Test func aTicketTheDatabaseRefusesFailsAloneAndItsBatchIsCommitted() async throws {
        let conninfo = try TestDatabase.create()
        let pool = TestDatabase.pool(conninfo)
        let log = PostgresEventLog(pool: pool)
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for i in 0..<120 {
                group.addTask {
                    var r = AppendRequest(subject: "cer:c\(i)", type: "cer.attested", account: "a", body: ["i": .number(Double(i))])
                    r.claim = Claim(scope: "execution:a", key: i % 40 == 7 ? String(repeating: "k", count: 2000) : "k\(i)", value: "c\(i)")
                    do {
                        _ = try await log.append(r)
                        return (i, true)
                    } catch {
                        return (i, false)
                    }
                }
            }
            return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        let refused = Set(outcomes.filter { !$0.value }.keys)
        #expect(refused == [7, 47, 87])
        #expect(try await log.size() == 117)
        // A refused ticket shared a batch with others, which were written again without it.
        #expect(log.isolatedBatches >= 1)
        let report = try await LedgerVerifier.verify(pool: pool)
        #expect(report.problems.isEmpty, "\(report.problems)")
        // The writer's connection is usable afterwards.
        #expect(try await log.append(AppendRequest(subject: "cer:after", type: "cer.attested", body: [:])).entry.index == 117)
        await pool.shutdown()
    }

    /// A group larger than libpq's 65,535 parameters allow in one statement (11 per entry row) is written
    /// in bounded statements, in one transaction.
    @Test func aGroupOfSevenThousandEntriesIsWrittenInBoundedStatements() async throws {
        let conninfo = try TestDatabase.create()
        let pool = TestDatabase.pool(conninfo)
        let log = PostgresEventLog(pool: pool)
        let group = (0..<7000).map { i in
            AppendRequest(subject: "cer:s\(i)", type: "cer.registered", account: "a", body: ["i": .number(Double(i))], payload: [UInt8(i % 251)])
        }
        let results = try await log.append(group: group)
        #expect(results.count == 7000 && results.last?.entry.index == 6999)
        #expect(try await log.size() == 7000)
        let report = try await LedgerVerifier.verify(pool: pool)
        #expect(report.problems.isEmpty, "\(report.problems)")
        await pool.shutdown()
    }
}
