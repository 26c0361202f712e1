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
        subcommands: [Run.self, Status.self, Hold.self, Policy.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the retention worker once: reconcile purges, then answer pending deletion requests (erase or defer).")
        @OptionGroup var database: DatabaseOptions
        @Option(name: .customLong("floor-days"), help: "The minimum retention floor in days (LEDGER_RETENTION_FLOOR_DAYS, default 90).")
        var floorDays: Int?
        @Option(help: "Run as if the time were this, ISO 8601 (default now): for tests and drills. The run decides at that time and records its entries at it, so the log says when they claim to have happened; an RFC 3161 timestamp of a later checkpoint shows the real time.") var now: String?
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
                let offset = at - PostgresEventLog.wallClock()
                return try await RetentionWorker(
                    log: PostgresEventLog(pool: pool, clock: { PostgresEventLog.wallClock() + offset }), projections: ProjectionRunner(pool: pool),
                    floorDays: floor, batch: batch,
                    // A run asked for by hand goes through every policy's candidates (a server's runs page on from run to run).
                    maintenance: PayloadMaintenance(conninfo: pool.configuration.conninfo), policyPages: Int.max
                ).run(now: at)
            }
            var line = "erased \(report.erased) records (\(report.purged) payloads), deferred \(report.deferred), denied \(report.denied), "
                + "reconciled \(report.reconciled); "
                + "\(report.pending) requests pending"
            let x = report.expiry
            line += "; policies archived \(x.archived), erased \(x.erased) (\(x.purged) payloads), deferred \(x.deferred), flagged \(x.reviews) for review"
            if !report.rewritten.isEmpty { line += "; rewrote \(report.rewritten.joined(separator: ", "))" }
            if !report.waiting.isEmpty { line += "; open until their month ends: \(report.waiting.joined(separator: ", "))" }
            if let problem = report.maintenanceProblem { line += "; the partition rewrite failed: \(problem)" }
            FileOutput.standardOutput(line + "\n")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show pending deletion requests, the legal holds in force, records flagged for review and what expires when.")
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
                    out += "  \(h.holdId)  case \(h.caseId)  \(h.scope.rawValue) of \(h.account)\((h.certificateHash ?? h.target).map { " \($0)" } ?? "")\n"
                }
                let reviews = try await pool.withConnection { c in
                    try c.query("""
                        SELECT e.account, substr(e.subject, 5), e.idx FROM ledger_entries e
                        JOIN proj_certificate_records r ON 'cer:' || r.certificate_hash = e.subject AND r.account = e.account AND r.lifecycle <> 'deleted'
                        WHERE e.type = 'retention.review_required' ORDER BY e.idx LIMIT 1000
                        """).rows.map { r throws(LedgerStoreError) in "\(r[0] ?? "")  \(try r.text(1))  flagged at entry \(try r.int64(2))" }
                }
                out += "records flagged for review: \(reviews.count)\n" + reviews.map { "  \($0)\n" }.joined()
                let expiring = try await LifecycleService(log: log).expiring(now: PostgresEventLog.wallClock())
                out += "retention policies: \(expiring.count)\n"
                for x in expiring {
                    out += "  \(PolicyList.describe(x.policy)): \(x.expired) records past the window"
                        + (x.nextExpiry.map { ", the next expires \(Timestamp.iso8601(milliseconds: $0))" } ?? "") + "\n"
                }
                FileOutput.standardOutput(out)
            }
        }
    }

    struct Hold: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply, release and list legal holds.", subcommands: [Apply.self, Release.self])
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply a legal hold to a record, a run, a project or everything of an account (a ledger event).")
        @OptionGroup var database: DatabaseOptions
        @Option(name: .customLong("case"), help: "The case id the hold is for.") var caseId: String
        @Option(help: "The account whose records are held.") var account: String
        @Option(name: .customLong("certificate-hash"), help: "Hold only this record.") var certificateHash: String?
        @Option(help: "Hold the records of this run of the account.") var run: String?
        @Option(help: "Hold the records of this project (hash) of the account.") var project: String?
        @Option(help: "The hold's id (default: a new UUID).") var id: String?
        @Option(help: "Why.") var reason: String?

        func run() async throws {
            guard [certificateHash, run, project].compactMap({ $0 }).count <= 1 else {
                throw ValidationError("name at most one of --certificate-hash, --run and --project (none: the whole account)")
            }
            let scope: LegalHold.Scope = certificateHash != nil ? .record : run != nil ? .run : project != nil ? .project : .account
            try await withMigratedPool(database) { pool in
                let entry = try await LifecycleService(log: PostgresEventLog(pool: pool)).applyHold(
                    holdId: id, caseId: caseId, scope: scope, account: account, certificateHash: certificateHash, target: run ?? project,
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

    struct Policy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set and list retention policies.", subcommands: [PolicySet.self, PolicyList.self])
    }

    struct PolicySet: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Set the retention policy of an account or one of its projects (a ledger event).",
            discussion: "A locked policy can only be extended; shortening a governance policy needs --reason.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "The account.") var account: String
        @Option(help: "A project hash of the account.") var project: String?
        @Option(help: "An application (snapshot.appId) of the account.") var application: String?
        @Option(help: "An execution surface (snapshot.executionSurface) of the account. With none of these three: the whole account.") var surface: String?
        @Option(name: .customLong("class"), help: "short (30 days), standard (1 year), long (10 years) or permanent.") var policyClass: String
        @Option(name: .customLong("window-days"), help: "The window in days (default: the class's).") var windowDays: Int?
        @Option(help: "On expiry: archive, delete, review or export-delete.") var action: String
        @Option(help: "governance (may be shortened, with a reason) or locked (only extended).") var mode = "governance"
        @Option(help: "Why.") var reason: String?

        func run() async throws {
            guard let c = RetentionPolicy.Class(rawValue: policyClass) else { throw ValidationError("--class is short, standard, long or permanent") }
            guard let a = RetentionPolicy.Action(rawValue: action) else { throw ValidationError("--action is archive, delete, review or export-delete") }
            guard let m = RetentionPolicy.Mode(rawValue: mode) else { throw ValidationError("--mode is governance or locked") }
            try await withMigratedPool(database) { pool in
                let (entry, set) = try await LifecycleService(log: PostgresEventLog(pool: pool)).setPolicy(
                    RetentionPolicy(
                        account: account, project: project, application: application, surface: surface, policyClass: c, windowDays: windowDays,
                        action: a, mode: m), reason: reason,
                    actor: "operator")
                FileOutput.standardOutput(entry == nil ? "unchanged: the policy is already in force (entry \(set.index))\n" : "policy set at entry \(set.index)\n")
            }
        }
    }

    struct PolicyList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the retention policies in force.")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            try await withMigratedPool(database) { pool in
                var out = ""
                for p in try await LifecycleService(log: PostgresEventLog(pool: pool)).policies().all { out += Self.describe(p) + "\n" }
                FileOutput.standardOutput(out.isEmpty ? "no retention policy is set\n" : out)
            }
        }

        static func describe(_ p: RetentionPolicy) -> String {
            let scope = p.project.map { " project \($0)" } ?? p.application.map { " application \($0)" } ?? p.surface.map { " surface \($0)" } ?? ""
            return "\(p.account)\(scope)  \(p.policyClass.rawValue) \(p.windowDays.map { "\($0) days" } ?? "permanent")"
                + "  then \(p.action.rawValue)  \(p.mode.rawValue)  (entry \(p.index))"
        }
    }
}
