import Foundation
import LedgerProcesses
import LedgerStore
import Testing

/// Fresh databases in the cluster that `./ops/test` starts (`LEDGER_TEST_DATABASE_URL`). Storage tests
/// fail, not skip, when it is missing: they never mock the database.
enum TestDatabase {
    struct Missing: Error, CustomStringConvertible {
        var description: String { "LEDGER_TEST_DATABASE_URL is not set: run the tests with ./ops/test, which starts a throwaway PostgreSQL" }
    }

    static func adminConninfo() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["LEDGER_TEST_DATABASE_URL"], !url.isEmpty else { throw Missing() }
        return url
    }

    /// A connection string for `database` in the test cluster.
    static func conninfo(_ database: String) throws -> String { try adminConninfo() + " dbname=\(database)" }

    /// Creates an empty database; migrated unless `migrate` is false.
    static func create(migrate: Bool = true) throws -> String {
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try PostgresConnection(conninfo: try adminConninfo(), statementTimeoutMilliseconds: 30_000, role: nil)
        defer { admin.close() }
        try admin.execute("CREATE DATABASE \(identifier: name)")
        let conninfo = try conninfo(name)
        if migrate { try Migrator.migrate(conninfo: conninfo) }
        return conninfo
    }

    /// Runs SQL as the login (superuser) role, outside the application role.
    static func superuser(_ conninfo: String, _ sql: String) throws {
        let c = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: 30_000, role: nil)
        defer { c.close() }
        try c.executeScript(sql)
    }

    static func pool(_ conninfo: String, connections: Int = 4) -> PostgresConnectionPool {
        PostgresConnectionPool(configuration: PostgresConfiguration(conninfo: conninfo, maxConnections: connections))
    }
}

/// The built `evidence-ledger` binary.
enum Binary {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var path: String {
        ProcessInfo.processInfo.environment["EVIDENCE_LEDGER_BIN"] ?? repositoryRoot.appendingPathComponent(".build/debug/evidence-ledger").path
    }

    /// Starts the binary with its stdout going to a file (read it later).
    static func start(_ arguments: [String], stdout: URL) throws -> ChildProcess {
        try ChildProcess([path] + arguments, stdout: stdout.path)
    }

    /// Runs the binary to completion; returns exit status and stdout.
    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String) {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("el-\(UUID().uuidString).out")
        defer { try? FileManager.default.removeItem(at: out) }
        let p = try start(arguments, stdout: out)
        return (p.exitCode ?? -1, (try? String(contentsOf: out, encoding: .utf8)) ?? "")
    }
}
