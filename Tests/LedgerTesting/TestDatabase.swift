public import Foundation
public import LedgerProcesses
public import LedgerStore

/// Fresh databases in the cluster that `./ops/test` starts (`LEDGER_TEST_DATABASE_URL`). Storage tests
/// fail, not skip, when it is missing: they never mock the database.
public enum TestDatabase {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String { "LEDGER_TEST_DATABASE_URL is not set: run the tests with ./ops/test, which starts a throwaway PostgreSQL" }
    }

    public static func adminConninfo() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["LEDGER_TEST_DATABASE_URL"], !url.isEmpty else { throw Missing() }
        return url
    }

    /// A connection string for `database` in the test cluster.
    public static func conninfo(_ database: String) throws -> String { try adminConninfo() + " dbname=\(database)" }

    /// Creates an empty database (in the test cluster, or in `cluster` given as an admin connection
    /// string); migrated unless `migrate` is false.
    public static func create(migrate: Bool = true, prefix: String = "t_", cluster: String? = nil) throws -> String {
        let name = prefix + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let adminURL = try cluster ?? adminConninfo()
        let admin = try PostgresConnection(conninfo: adminURL, statementTimeoutMilliseconds: 30_000, role: nil)
        defer { admin.close() }
        try admin.execute("CREATE DATABASE \(identifier: name)")
        let conninfo = adminURL + " dbname=\(name)"
        if migrate { try Migrator.migrate(conninfo: conninfo) }
        return conninfo
    }

    /// Runs SQL as the login (superuser) role, outside the application role, within `timeoutMilliseconds`.
    public static func superuser(_ conninfo: String, _ sql: String, timeoutMilliseconds: Int = 30_000) throws {
        let c = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: timeoutMilliseconds, role: nil)
        defer { c.close() }
        try c.executeScript(sql)
    }

    public static func pool(_ conninfo: String, connections: Int = 4) -> PostgresConnectionPool {
        PostgresConnectionPool(configuration: PostgresConfiguration(conninfo: conninfo, maxConnections: connections))
    }
}

/// The built `evidence-ledger` binary.
public enum Binary {
    public static var path: String { TestLocations.binary }

    /// Starts the binary with its stdout going to a file (read it later).
    public static func start(_ arguments: [String], stdout: URL) throws -> ChildProcess {
        try ChildProcess([path] + arguments, stdout: stdout.path)
    }

    /// Runs the binary to completion; returns exit status and stdout.
    public static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String) {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("el-\(UUID().uuidString).out")
        defer { try? FileManager.default.removeItem(at: out) }
        let p = try start(arguments, stdout: out)
        return (p.exitCode ?? -1, (try? String(contentsOf: out, encoding: .utf8)) ?? "")
    }
}
