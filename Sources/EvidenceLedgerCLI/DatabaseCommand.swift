import ArgumentParser
import LedgerProcesses
import LedgerStore

/// `evidence-ledger database start|stop|status`: manage an embedded PostgreSQL cluster.
struct DatabaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "database", abstract: "Start or stop an embedded PostgreSQL cluster (used by ./ops/run and ./ops/test).",
        subcommands: [Start.self, Stop.self])

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start (or reuse) the cluster and print its connection string.")
        @Option(help: "Directory that holds postgres/ (data, socket, log).") var directory: String = ".ledger"
        @Option(help: "Port number (names the unix socket; also TCP with --tcp).") var port: Int = 5433
        @Flag(help: "Also listen on 127.0.0.1.") var tcp = false
        @Option(help: "Database to create.") var database: String = "evidence_ledger"

        func run() throws {
            let embedded = EmbeddedPostgres(directory: directory, port: port, listenOnLoopback: tcp, databaseName: database)
            do {
                try embedded.start()
                FileOutput.standardOutput(embedded.conninfo() + "\n")
            } catch {
                FileOutput.standardError("evidence-ledger: \(error.debugDescription)")
                throw ExitCode(2)
            }
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the cluster (fast shutdown).")
        @Option(help: "Directory that holds postgres/.") var directory: String = ".ledger"

        func run() throws {
            do { try EmbeddedPostgres(directory: directory).stop() } catch {
                FileOutput.standardError("evidence-ledger: \(error.debugDescription)")
                throw ExitCode(2)
            }
        }
    }
}
