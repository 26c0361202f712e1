import CERKit
import LedgerSchema

/// Applies the numbered migrations in order, each in its own transaction, recording a checksum; a
/// changed applied migration, or one the binary does not know, is refused.
public enum Migrator {
    /// One migration as applied.
    public struct Applied: Sendable, Equatable {
        public var name: String
        public var checksum: String
    }

    /// The migrations compiled into this binary, with their checksums.
    public static var bundled: [(name: String, sql: String, checksum: String)] {
        LedgerSchema.migrations.map { ($0.name, String(decoding: $0.sql, as: UTF8.self), Hex.encode(ProtocolHash.sha256($0.sql))) }
    }

    /// Applies what is missing; returns the names applied now. Runs as the login role.
    @discardableResult
    public static func migrate(conninfo: String, migrations: [(name: String, sql: String, checksum: String)] = bundled)
        throws(LedgerStoreError) -> [String]
    {
        let connection = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: 0, role: nil)
        defer { connection.close() }
        try connection.execute("SELECT pg_advisory_lock(7409151)")  // one migrator at a time
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock(7409151)") }
        try connection.execute("""
            CREATE TABLE IF NOT EXISTS ledger_migrations (
                name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
            """)
        let rows = try connection.query("SELECT name, checksum FROM ledger_migrations ORDER BY name")
        var applied: [String: String] = [:]
        for row in rows.rows { applied[try row.text(0)] = try row.text(1) }
        let known = Set(migrations.map(\.name))
        if let unknown = applied.keys.sorted().first(where: { !known.contains($0) }) {
            throw LedgerStoreError(
                .migration, "the database has migration \(unknown), which this binary does not know: it is newer than this binary")
        }
        var now: [String] = []
        for m in migrations {
            if let checksum = applied[m.name] {
                guard checksum == m.checksum else {
                    throw LedgerStoreError(
                        .migration,
                        "migration \(m.name) was changed after it was applied (recorded checksum \(checksum.prefix(12))…, file \(m.checksum.prefix(12))…); add a new migration instead of editing an applied one")
                }
                continue
            }
            do {
                // The advisory lock is per database; a migrator of another database in the same cluster
                // may create the cluster-wide role between our check and our CREATE ROLE. That aborts
                // this transaction with a unique violation on pg_authid, or with 42710 ("role already exists")
                // when the other transaction committed first; it is safe to run it again.
                for attempt in 1...3 {
                    do {
                        try connection.withTransaction {
                            try connection.executeScript(m.sql)
                            try connection.execute("INSERT INTO ledger_migrations (name, checksum) VALUES (\(m.name), \(m.checksum))")
                        }
                        break
                    } catch let error as LedgerStoreError
                        where attempt < 3 && ((error.sqlState == "23505" && error.message.contains("pg_authid")) || error.sqlState == "42710")
                    {
                        continue
                    }
                }
            } catch let error as LedgerStoreError {
                throw LedgerStoreError(.migration, "migration \(m.name) failed: \(error.message)", sqlState: error.sqlState, detail: error.detail)
            } catch {
                throw LedgerStoreError(.migration, "migration \(m.name) failed: \(error)")
            }
            now.append(m.name)
        }
        return now
    }

    /// The migrations recorded in the database.
    public static func applied(conninfo: String) throws(LedgerStoreError) -> [Applied] {
        let connection = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: 10_000, role: nil)
        defer { connection.close() }
        let exists = try connection.query("SELECT to_regclass('ledger_migrations') IS NOT NULL")
        guard exists.rows.first?[0] == "t" else { return [] }
        return try connection.query("SELECT name, checksum FROM ledger_migrations ORDER BY name").rows.map { r throws(LedgerStoreError) in
            Applied(name: try r.text(0), checksum: try r.text(1))
        }
    }
}
