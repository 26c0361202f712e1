import ArgumentParser
import CERKit
import Foundation
import LedgerCore
import LedgerServer
import LedgerStore
import Logging

/// `evidence-ledger witness`: a c2sp.org/tlog-witness for other logs, and its key.
struct WitnessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "witness", abstract: "Run a transparency-log witness (c2sp.org/tlog-witness) for other logs.",
        subcommands: [Serve.self, KeyCommand.self])

    struct KeyCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "key", abstract: "The witness's cosigning key.", subcommands: [Generate.self])
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a witness key (Ed25519, c2sp.org/tlog-cosignature) and print its verifier key.",
            discussion: "Give the printed verifier key to the logs (--witness <vkey>@<url>) and to auditors (--witness-key).")
        @Option(help: "The witness's name (its key name in cosignatures), e.g. witness.example.org/w1.") var name: String
        @Option(help: "Where to write the private key (created, never overwritten; mode 0600).") var out: String

        func run() async throws {
            let key = Ed25519SigningKey(seed: KeyFile.randomSeed())!
            let signer: CosignatureSigner
            do { signer = try CosignatureSigner(name: name, key: key) } catch { throw ValidationError("--name: \(error)") }
            do {
                try KeyFile.createText(out, contents: signer.encoded + "\n")
            } catch {
                FileOutput.standardError("evidence-ledger: \(error.message)")
                throw ExitCode(1)
            }
            FileOutput.standardOutput("\(signer.verifier.encoded)\n")
        }
    }

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve add-checkpoint for the given logs (migrates its database first; stops on SIGTERM or SIGINT).",
            discussion: """
                The witness keeps, per log origin, the latest checkpoint it cosigned, in its database's witness_checkpoints \
                table; use a database of its own. --log takes a log's signed-note verifier key (from the log's GET /v1/log \
                verifierKeys; the key name is the log's origin), repeatable.
                """)
        @OptionGroup var database: DatabaseOptions
        @Option(help: "The witness key file (from `witness key generate`).") var key: String
        @Option(name: .customLong("log"), help: "A log's verifier key, <origin>+<key id>+<key>, repeatable.") var logs: [String] = []
        @Option(help: "Address to listen on (default 127.0.0.1).") var host = "127.0.0.1"
        @Option(help: "Port to listen on, 0 for any free port (default 8090).") var port = 8090
        @Option(name: .customLong("db-role"), help: "Role the connections assume; none keeps the login role (default ledger_app).") var databaseRole = "ledger_app"

        func run() async throws {
            let signer: CosignatureSigner
            do {
                let text = try String(contentsOfFile: key, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                signer = try CosignatureSigner(parsing: text)
            } catch {
                FileOutput.standardError("evidence-ledger: cannot read the witness key \(key): \(error)")
                throw ExitCode(2)
            }
            var verifiers: [NoteVerifier] = []
            for log in logs {
                do {
                    let v = try NoteVerifier(parsing: log)
                    guard v.type == NoteVerifier.ed25519 else { throw SignedNoteError("a log key has type 0x01 (Ed25519)") }
                    verifiers.append(v)
                } catch { throw ValidationError("--log \(log.prefix(80)): \(error)") }
            }
            guard !verifiers.isEmpty else { throw ValidationError("give at least one --log") }
            guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = .notice
                return handler
            }
            var configuration = WitnessServer.Configuration(signer: signer, logs: verifiers)
            configuration.host = host
            configuration.port = port
            configuration.databaseRole = databaseRole == "none" ? nil : databaseRole
            let (conninfo, _, _) = try database.resolve()
            do {
                try await WitnessServer.run(configuration: configuration, conninfo: conninfo, logger: Logger(label: "ledger.witness")) { port in
                    FileOutput.standardOutput("evidence-ledger witness \(signer.name): listening on http://\(host):\(port) (\(signer.verifier.encoded))\n")
                }
            } catch let error as LedgerStoreError {
                FileOutput.standardError("evidence-ledger: cannot serve: \(error.debugDescription)")
                throw ExitCode(2)
            }
        }
    }
}
