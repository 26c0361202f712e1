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

    @Test func aFreshlyMigratedDatabasePassesEveryGuardCheck() async throws {
        let conninfo = try await seeded(3)
        let pool = TestDatabase.pool(conninfo)
        let report = try await LedgerVerifier.verify(pool: pool)
        await pool.shutdown()
        #expect(report.isIntact, "\(report.problems)")
    }

    /// Each of these leaves the trigger "present and enabled" as the old check saw it, yet lets an
    /// ordinary session rewrite the log.
    @Test func aWeakenedGuardIsReportedHoweverItWasWeakened() async throws {
        let conninfo = try await seeded(2)
        try TestDatabase.superuser(conninfo, """
            ALTER TABLE ledger_entries ENABLE REPLICA TRIGGER ledger_entries_no_update;
            CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END; $$;
            DROP TRIGGER ledger_head_grows ON ledger_head;
            CREATE TRIGGER ledger_head_grows BEFORE UPDATE ON ledger_head FOR EACH ROW WHEN (false) EXECUTE FUNCTION ledger_head_only_grows();
            DROP TRIGGER ledger_claims_no_truncate ON ledger_claims;
            CREATE TRIGGER ledger_claims_no_truncate BEFORE INSERT ON ledger_claims FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
            CREATE FUNCTION sneaky() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$;
            CREATE TRIGGER ledger_entries_rewrite BEFORE INSERT ON ledger_entries FOR EACH ROW EXECUTE FUNCTION sneaky();
            GRANT TRUNCATE ON ledger_checkpoints TO ledger_app;
            CREATE SCHEMA lookalike;
            CREATE FUNCTION lookalike.ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END; $$;
            DROP TRIGGER ledger_entries_no_delete ON ledger_entries;
            CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries FOR EACH ROW EXECUTE FUNCTION lookalike.ledger_refuse_change();
            ALTER TABLE ledger_payloads ENABLE ROW LEVEL SECURITY;
            CREATE RULE keep_checkpoints AS ON DELETE TO ledger_checkpoints DO INSTEAD NOTHING;
            """)
        // The replica-mode trigger really is bypassed by an ordinary session: the audit is not guessing.
        try TestDatabase.superuser(conninfo, "UPDATE ledger_entries SET type = type WHERE idx = 0")
        try TestDatabase.superuser(conninfo, "ALTER TABLE ledger_tree_nodes OWNER TO ledger_app")
        let pool = TestDatabase.pool(conninfo)
        let report = try await LedgerVerifier.verify(pool: pool)
        await pool.shutdown()
        let found = Set(report.problems.map(\.what))
        for expected in [
            "append-only trigger ledger_entries_no_update fires only for replication (ENABLE REPLICA): ordinary sessions bypass it",
            "the guard function ledger_append_only was replaced: its body is not the one its migration installed",
            "append-only trigger ledger_head_grows has a WHEN condition: it may not fire",
            "append-only trigger ledger_claims_no_truncate no longer fires on the events and timing its migration set",
            "ledger_entries has a trigger no migration installed: ledger_entries_rewrite (calls sneaky)",
            "the application role may TRUNCATE ledger_checkpoints",
            "the application role owns ledger_tree_nodes (or acts as its owner): it can drop its guards",
            "append-only trigger ledger_entries_no_delete calls ledger_refuse_change in another schema, not the migration's ledger_refuse_change",
            "append-only trigger ledger_tree_nodes_no_change calls a ledger_append_only that is not the one its migration installed",
            "row-level security is enabled on ledger_payloads: rows can be hidden from readers",
            "ledger_checkpoints has a rewrite rule no migration installed: keep_checkpoints",
        ] {
            #expect(found.contains(expected), "missing: \(expected)\nfound: \(found.sorted())")
        }
    }

    @Test func failingToAssumeTheApplicationRoleIsAnErrorUnlessChosen() async throws {
        let conninfo = try await seeded(1)
        do {
            _ = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: 1000, role: "no_such_role")
            Issue.record("a missing role was skipped silently")
        } catch {
            #expect(error.message.contains("no_such_role: it does not exist"), "\(error.message)")
        }
        // Assumed, the connection has the role's privileges; chosen explicitly (role nil, LEDGER_DB_ROLE=none),
        // the login role's own.
        let app = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: 1000, role: "ledger_app")
        #expect(try app.query("SELECT current_user").rows.first?[0] == "ledger_app")
        app.close()
        let own = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: 1000, role: nil)
        #expect(try own.query("SELECT current_user").rows.first?[0] != "ledger_app")
        own.close()
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
