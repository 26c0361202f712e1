import CERKit
import LedgerCore
import LedgerTesting
import Testing
@testable import LedgerStore

@Suite struct AppendOnlyTests {
    func seeded(_ count: Int) async throws -> String {
        let conninfo = try TestDatabase.create()
        let pool = TestDatabase.pool(conninfo)
        let log = PostgresEventLog(pool: pool)
        for i in 0..<count { _ = try await log.append(AppendRequest(subject: "cer:c\(i % 3)", type: "cer.recorded", body: ["i": .number(Double(i))])) }
        await pool.shutdown()
        return conninfo
    }

    @Test func updateDeleteAndTruncateAreRefusedByTheDatabase() async throws {
        let conninfo = try await seeded(3)
        let owner = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: 5000, role: nil)
        defer { owner.close() }
        for sql in ["UPDATE ledger_entries SET type = 'x' WHERE idx = 0", "DELETE FROM ledger_entries WHERE idx = 0", "TRUNCATE ledger_entries"] {
            let error = #expect(throws: LedgerStoreError.self, "\(sql)") { try owner.executeScript(sql) }
            #expect(error?.code == .refused, "\(sql): \(String(describing: error))")
        }
        #expect(throws: LedgerStoreError.self) { try owner.execute("UPDATE ledger_head SET size = 0 WHERE id = 1") }
        let app = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: 5000, role: "ledger_app")
        defer { app.close() }
        let denied = #expect(throws: LedgerStoreError.self) { try app.execute("DELETE FROM ledger_entries WHERE idx = 1") }
        #expect(denied?.sqlState == "42501")  // insufficient privilege: the role has INSERT and SELECT only
        #expect(try app.query("SELECT count(*) FROM ledger_entries").rows[0][0] == "3")
    }

    @Test func aRowAlteredBehindTheTriggersIsNamedByTheAudit() async throws {
        let conninfo = try await seeded(6)
        try TestDatabase.superuser(conninfo, """
            ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_update;
            UPDATE ledger_entries SET body = '{"i":999}' WHERE idx = 4;
            ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_no_update;
            """)
        let pool = TestDatabase.pool(conninfo)
        let report = try await LedgerVerifier.verify(pool: pool)
        await pool.shutdown()
        #expect(!report.isIntact)
        #expect(report.problems.first?.index == 4)
        #expect(report.problems.first?.what.contains("leaf hash") == true)

        let cli = try Binary.run(["ledger", "verify", "--database-url", conninfo])
        #expect(cli.status == 1)
        #expect(cli.stdout.contains("BROKEN: entry 4: leaf hash does not match"))
    }

    @Test func aDisabledTriggerOrAWidenedGrantIsReported() async throws {
        let conninfo = try await seeded(2)
        try TestDatabase.superuser(conninfo, """
            ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_delete;
            GRANT UPDATE ON ledger_entries TO ledger_app;
            """)
        let pool = TestDatabase.pool(conninfo)
        let report = try await LedgerVerifier.verify(pool: pool)
        await pool.shutdown()
        #expect(report.problems.contains { $0.what == "append-only trigger ledger_entries_no_delete is disabled" })
        #expect(report.problems.contains { $0.what == "the application role may UPDATE ledger_entries" })
    }

    @Test func aBatchGuardThatNoLongerRefusesIsReported() async throws {
        let conninfo = try await seeded(2)
        try TestDatabase.superuser(conninfo, """
            CREATE OR REPLACE FUNCTION ledger_expect(ok boolean, what text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
            """)
        let pool = TestDatabase.pool(conninfo)
        let report = try await LedgerVerifier.verify(pool: pool)
        await pool.shutdown()
        #expect(report.problems.contains { $0.what == "the batch guard ledger_expect no longer refuses a false condition" })
    }

    @Test func aDeletedRowIsFoundAsAGap() async throws {
        let conninfo = try await seeded(5)
        try TestDatabase.superuser(conninfo, """
            ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_delete;
            DELETE FROM ledger_entries WHERE idx = 2;
            ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_no_delete;
            """)
        let pool = TestDatabase.pool(conninfo)
        let report = try await LedgerVerifier.verify(pool: pool)
        await pool.shutdown()
        #expect(report.problems.first?.index == 3)
        #expect(report.problems.first?.what == "index is not dense")
    }
}
