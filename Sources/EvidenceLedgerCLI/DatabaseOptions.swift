import ArgumentParser
import LedgerServer
import LedgerProcesses
import LedgerStore

#if canImport(Glibc)
    import Glibc
#endif

/// Where the ledger's database is: `--database-url` / `LEDGER_DATABASE_URL`, or else the embedded
/// PostgreSQL under `--data-dir` (default `.ledger`).
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: "PostgreSQL URL or libpq connection string (default: $LEDGER_DATABASE_URL, else the embedded cluster).")
    var databaseURL: String?

    @Option(name: .customLong("data-dir"), help: "Directory of the embedded PostgreSQL (default: $LEDGER_DATA_DIR or .ledger).")
    var dataDirectory: String?

    @Option(name: .customLong("embedded-port"), help: "Port number of the embedded cluster's unix socket.")
    var embeddedPort: Int = 5433

    @Flag(name: .customLong("embedded-tcp"), help: "Let the embedded cluster also listen on 127.0.0.1.")
    var embeddedTCP = false

    /// The connection string, starting (or reusing) the embedded cluster when no URL is configured.
    func resolve() throws -> (conninfo: String, embedded: EmbeddedPostgres?, started: Bool) {
        if let url = databaseURL ?? Environment.value("LEDGER_DATABASE_URL"), !url.isEmpty { return (url, nil, false) }
        let directory = dataDirectory ?? Environment.value("LEDGER_DATA_DIR") ?? ".ledger"
        let embedded = EmbeddedPostgres(directory: directory, port: embeddedPort, listenOnLoopback: embeddedTCP)
        do {
            let started = try embedded.start()
            FileOutput.standardError(
                "evidence-ledger: \(started ? "started" : "using the running") embedded PostgreSQL in \(directory)/postgres (unix socket in \(directory)/postgres/run\(embeddedTCP ? ", and 127.0.0.1:\(embeddedPort)" : ""))")
            return (embedded.conninfo(), embedded, started)
        } catch {
            FileOutput.standardError("evidence-ledger: cannot start the embedded PostgreSQL: \(error.debugDescription)")
            throw ExitCode(2)
        }
    }
}

/// Environment variables, read at the edge only.
enum Environment {
    static func value(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        return String(cString: p)
    }
}

extension Environment {
    /// This machine's host name.
    static func hostName() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return nil }
        let name = String(cString: buffer)
        return name.isEmpty ? nil : name
    }
}

/// Migrates the database, then runs `body` with a small pool, closed afterwards. Refusals
/// (`LedgerServerError`: duplicate, not found, already revoked) exit 1 with their sentence; anything
/// else (migration, connection) exits 2.
func withMigratedPool<T>(_ database: DatabaseOptions, connections: Int = 2, _ body: (PostgresConnectionPool) async throws -> T) async throws -> T {
    let (conninfo, _, _) = try database.resolve()
    do {
        _ = try Migrator.migrate(conninfo: conninfo)
    } catch {
        FileOutput.standardError("evidence-ledger: \(error.debugDescription)")
        throw ExitCode(2)
    }
    let pool = PostgresConnectionPool(configuration: PostgresConfiguration(conninfo: conninfo, maxConnections: connections))
    do {
        let value = try await body(pool)
        await pool.shutdown()
        return value
    } catch let exit as ExitCode {
        await pool.shutdown()
        throw exit
    } catch let error as LedgerServerError {
        await pool.shutdown()
        FileOutput.standardError("evidence-ledger: \(error.message)")
        throw ExitCode(1)
    } catch {
        await pool.shutdown()
        FileOutput.standardError("evidence-ledger: \(error)")
        throw ExitCode(2)
    }
}
