import ArgumentParser
import LedgerStore

/// `evidence-ledger migrate`: applies the schema's migrations.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Apply the database migrations (each in its own transaction, checksummed).")

    @OptionGroup var database: DatabaseOptions

    func run() throws {
        let (conninfo, _, _) = try database.resolve()
        do {
            let applied = try Migrator.migrate(conninfo: conninfo)
            FileOutput.standardOutput(applied.isEmpty ? "schema is up to date\n" : applied.map { "applied \($0)\n" }.joined())
        } catch {
            FileOutput.standardError("evidence-ledger: \(error.debugDescription)")
            throw ExitCode(error.code == .migration ? 1 : 2)
        }
    }
}
