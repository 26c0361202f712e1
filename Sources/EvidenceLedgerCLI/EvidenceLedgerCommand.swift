import ArgumentParser
import CERKit
import LedgerServer

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The `evidence-ledger` executable: parsing, printing and exit codes only.
@main
struct EvidenceLedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evidence-ledger",
        abstract: "An append-only evidence ledger for NexArt Certified Execution Records.",
        discussion: """
            Verify CER bundles, CER packages, project bundles and runs offline with `verify`.
            Exit codes: 0 verified, 1 not verified, 2 unreadable input or usage error.
            """,
        version: BuildInfo.version,
        subcommands: [
            VerifyCommand.self, ServeCommand.self, KeysCommand.self, AccountsCommand.self, APIKeysCommand.self, MigrateCommand.self,
            LedgerCommand.self, DatabaseCommand.self, ProofCommand.self, ProjectionsCommand.self, ProvenanceCommand.self, WitnessCommand.self, RetentionCommand.self,
        ]
    )

    /// Runs the command and maps every failure to the documented exit codes (usage errors are 2).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let exit as ExitCode {
            Self.exit(withError: exit)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                Self.exit(withError: error)  // --help, --version
            }
            let message = fullMessage(for: error)
            if !message.isEmpty { FileOutput.standardError(message) }
            Self.exit(withError: ExitCode(2))  // usage errors are 2, not ArgumentParser's 64
        }
    }
}

/// The version compiled into the binary (the server reports the same in `/version`).
enum BuildInfo {
    static let version = NodeIdentity.serviceVersion
}

