import ArgumentParser
import CERKit
import Foundation
import LedgerCore
import LedgerProjections
import LedgerServer
import LedgerStore

/// `evidence-ledger retention`: the retention worker run once, legal holds, pending work.
struct RetentionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention", abstract: "Answer deletion requests, manage legal holds, show pending retention work.",
        subcommands: [Run.self, Status.self, Hold.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the retention worker once: reconcile purges, then answer pending deletion requests (erase or defer).")
        @OptionGroup var database: DatabaseOptions
        @Option(name: .customLong("floor-days"), help: "The minimum retention floor in days (LEDGER_RETENTION_FLOOR_DAYS, default 90).")
        var floorDays: Int?
        @Option(help: "The time to decide at, ISO 8601 (default now). The run acts on it: a later time erases what the floor still protects today (the entries keep their real time, so the audit sees it).") var now: String?
        @Option(help: "Most requests answered in this run (default 1000).") var batch = 1000

        func run() async throws {
            let floor = floorDays ?? Environment.value("LEDGER_RETENTION_FLOOR_DAYS").flatMap { Int($0) } ?? ErasureDecision.defaultFloorDays
            guard (0...36_500).contains(floor) else { throw ValidationError("--floor-days must be from 0 to 36500") }
            guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be from 1 to 100000") }
            var at = PostgresEventLog.wallClock()
            if let now {
                guard let ms = Timestamp.milliseconds(now) else { throw ValidationError("--now \(now.prefix(40)) is not an ISO 8601 time") }
                at = ms
            }
            let report = try await withMigratedPool(database, connections: 3) { pool in
                try await RetentionWorker(
                    log: PostgresEventLog(pool: pool), projections: ProjectionRunner(pool: pool), floorDays: floor, batch: batch,
                    maintenance: PayloadMaintenance(conninfo: pool.configuration.conninfo)
                ).run(now: at)
            }
            var line = "erased \(report.erased) records (\(report.purged) payloads), deferred \(report.deferred), reconciled \(report.reconciled); "
                + "\(report.pending) requests pending"
            if !report.rewritten.isEmpty { line += "; rewrote \(report.rewritten.joined(separator: ", "))" }
            if !report.waiting.isEmpty { line += "; open until their month ends: \(report.waiting.joined(separator: ", "))" }
            FileOutput.standardOutput(line + "\n")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show pending deletion requests and the legal holds in force.")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            try await withMigratedPool(database) { pool in
                let log = PostgresEventLog(pool: pool)
                try await ProjectionRunner(pool: pool).catchUp(only: "certificates")
                let pending = try await pool.withConnection { c in
                    try c.query("""
                        SELECT certificate_hash, account, deletion_requested_idx FROM proj_certificate_records
                        WHERE deletion_requested_idx IS NOT NULL ORDER BY deletion_requested_idx LIMIT 1000
                        """).rows.map { r throws(LedgerStoreError) in "\(try r.text(1))  \(try r.text(0))  requested at entry \(try r.int64(2))" }
                }
                let holds = try await LifecycleService(log: log).holds().active.values.sorted { $0.appliedIndex < $1.appliedIndex }
                var out = "pending deletion requests: \(pending.count)\n" + pending.map { "  \($0)\n" }.joined()
                out += "legal holds in force: \(holds.count)\n"
                for h in holds {
                    out += "  \(h.holdId)  case \(h.caseId)  \(h.scope.rawValue) of \(h.account)\(h.certificateHash.map { " \($0)" } ?? "")\n"
                }
                FileOutput.standardOutput(out)
            }
        }
    }

    struct Hold: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply, release and list legal holds.", subcommands: [Apply.self, Release.self])
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply a legal hold to a record or to everything of an account (a ledger event).")
        @OptionGroup var database: DatabaseOptions
        @Option(name: .customLong("case"), help: "The case id the hold is for.") var caseId: String
        @Option(help: "The account whose records are held.") var account: String
        @Option(name: .customLong("certificate-hash"), help: "Hold only this record (else everything of the account).") var certificateHash: String?
        @Option(help: "The hold's id (default: a new UUID).") var id: String?
        @Option(help: "Why.") var reason: String?

        func run() async throws {
            try await withMigratedPool(database) { pool in
                let entry = try await LifecycleService(log: PostgresEventLog(pool: pool)).applyHold(
                    holdId: id, caseId: caseId, scope: certificateHash == nil ? .account : .record, account: account, certificateHash: certificateHash,
                    reason: reason, actor: "operator")
                FileOutput.standardOutput("hold \(entry.body["holdId"]?.stringValue ?? "") applied at entry \(entry.index)\n")
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release a legal hold (a ledger event).")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The hold's id.") var id: String
        @Option(help: "Why.") var reason: String?

        func run() async throws {
            try await withMigratedPool(database) { pool in
                let entry = try await LifecycleService(log: PostgresEventLog(pool: pool)).releaseHold(holdId: id, reason: reason, actor: "operator")
                FileOutput.standardOutput("hold \(id) released at entry \(entry.index)\n")
            }
        }
    }
}
