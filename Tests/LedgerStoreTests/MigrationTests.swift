import CERKit
import Foundation
import LedgerSchema
import LedgerTesting
import Testing
@testable import LedgerStore

@Suite struct MigrationTests {
    @Test func embeddedMigrationsAreExactlyTheSchemaFolder() throws {
        let folder = TestLocations.repositoryRoot.appendingPathComponent("schema")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(LedgerSchema.migrations.map { $0.name + ".sql" } == files)
        for m in LedgerSchema.migrations {
            #expect([UInt8](try Data(contentsOf: folder.appendingPathComponent(m.name + ".sql"))) == m.sql, "\(m.name) differs")
        }
    }

    @Test func migrateAppliesOnceAndRecordsChecksums() throws {
        let conninfo = try TestDatabase.create(migrate: false)
        #expect(try Migrator.migrate(conninfo: conninfo) == LedgerSchema.migrations.map(\.name))
        #expect(try Migrator.migrate(conninfo: conninfo).isEmpty)
        let applied = try Migrator.applied(conninfo: conninfo)
        #expect(applied.map(\.checksum) == Migrator.bundled.map(\.checksum))
    }

    @Test func aChangedAppliedMigrationIsRefused() throws {
        let conninfo = try TestDatabase.create()
        var edited = Migrator.bundled
        edited[0].sql += "\n-- edited"
        edited[0].checksum = Hex.encode(ProtocolHash.sha256(Array(edited[0].sql.utf8)))
        let error = #expect(throws: LedgerStoreError.self) { try Migrator.migrate(conninfo: conninfo, migrations: edited) }
        #expect(error?.code == .migration)
        #expect(error?.message.contains("was changed after it was applied") == true)
    }

    @Test func aDatabaseNewerThanTheBinaryIsRefused() throws {
        let conninfo = try TestDatabase.create()
        try TestDatabase.superuser(conninfo, "INSERT INTO ledger_migrations (name, checksum) VALUES ('9999_future', 'x')")
        let error = #expect(throws: LedgerStoreError.self) { try Migrator.migrate(conninfo: conninfo) }
        #expect(error?.message.contains("newer than this binary") == true)
    }

    @Test func aFailingMigrationLeavesNothingBehind() throws {
        let conninfo = try TestDatabase.create(migrate: false)
        let broken = [("0001_broken", "CREATE TABLE half_done (x int); SELECT no_such_function();", "c")]
        #expect(throws: LedgerStoreError.self) { try Migrator.migrate(conninfo: conninfo, migrations: broken) }
        let c = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: 5000, role: nil)
        defer { c.close() }
        #expect(try c.query("SELECT to_regclass('half_done') IS NULL").rows[0][0] == "t")
        #expect(try Migrator.applied(conninfo: conninfo).isEmpty)
    }
}
