import ArgumentParser
import LedgerServer
import LedgerStore
import Logging

/// `evidence-ledger serve`: the attestation node and ledger HTTP API.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP API (migrates first; stops gracefully on SIGTERM or SIGINT).",
        discussion: "Every option falls back to its LEDGER_* environment variable; see docs/configuration.md.")

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var server: ServerOptions

    func run() async throws {
        let configuration = try server.resolve()
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = label.hasPrefix("ledger") ? level : max(level, .notice)
            return handler
        }
        let logger = Logger(label: "ledger.server")
        let (conninfo, _, _) = try database.resolve()
        do {
            try await LedgerServerApp.run(configuration: configuration, conninfo: conninfo, logger: logger) { port in
                var shown = configuration
                shown.port = port
                FileOutput.standardOutput("evidence-ledger: listening on \(shown.effectivePublicURL) (node \(configuration.nodeId))\n")
            }
        } catch let error as LedgerStoreError {
            FileOutput.standardError("evidence-ledger: cannot serve: \(error.debugDescription)")
            throw ExitCode(2)
        } catch let error as LedgerServerError {
            FileOutput.standardError("evidence-ledger: cannot serve: \(error.message)")
            throw ExitCode(2)
        }
    }
}
