import ArgumentParser
import CERKit
import Foundation
import LedgerCore
import LedgerProjections
import LedgerStore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `evidence-ledger projections rebuild|run|status`: the read models rebuilt from the log.
struct ProjectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "projections", abstract: "Rebuild, advance and inspect the read models (certificates, runs, projects).",
        subcommands: [Rebuild.self, Run.self, Status.self])

    /// Progress: on a terminal one line rewritten in place; in a log a line every few seconds.
    final class Progress: Sendable {
        struct State {
            var started = Date()
            var lastPrinted = Date.distantPast
            var startPosition: Int64?
        }
        let state = Mutex(State())
        let terminal = isatty(1) == 1

        func report(_ s: ProjectionRunner.Status, force: Bool = false) {
            let line: String? = state.withLock { st in
                let now = Date()
                if st.startPosition == nil { st.startPosition = s.position }
                let interval = terminal ? 0.2 : 3
                guard force || now.timeIntervalSince(st.lastPrinted) >= interval || s.position >= s.head else { return nil }
                st.lastPrinted = now
                let elapsed = max(now.timeIntervalSince(st.started), 0.001)
                let done = s.position - (st.startPosition ?? 0)
                let rate = Double(done) / elapsed
                let left = rate > 0 ? Double(s.head - s.position) / rate : 0
                return String(
                    format: "%@: %lld / %lld events, %.0f events/s, %@ left", s.name, s.position, s.head, rate,
                    s.position >= s.head ? "0 s" : String(format: "%.0f s", left))
            }
            guard let line else { return }
            FileOutput.standardOutput(terminal ? "\r\u{1B}[K" + line + (s.position >= s.head ? "\n" : "") : line + "\n")
        }
    }

    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Empty a read model (or all) and replay it from entry 0, showing progress.",
            discussion: "Killed or interrupted, `projections run` resumes from the last applied chunk. Exit 0 done, 2 cannot run.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "certificates, runs or projects (default: all).") var name: String?
        @Option(help: "Events per transaction.") var chunk: Int = 5000

        func run() async throws {
            try await withMigratedPool(database, connections: 6) { pool in
                let runner = ProjectionRunner(pool: pool, chunk: max(1, chunk))
                if let name, !runner.projections.contains(where: { $0.name == name }) {
                    FileOutput.standardError("evidence-ledger: no projection named \(name) (certificates, runs, projects)\n")
                    throw ExitCode(2)
                }
                // All models are rebuilt at once, each on its own connections.
                try await runner.reset(name)
                let progress = Progress()
                let started = Date()
                let applied = try await runner.catchUp(only: name) { progress.report($0) }
                let seconds = Date().timeIntervalSince(started)
                FileOutput.standardOutput(String(
                    format: "rebuilt %@: %lld events in %.2f s (%.0f events/s)\n", name ?? "all", applied, seconds, Double(applied) / max(seconds, 0.001)))
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply the log to the read models up to its head (resumes an interrupted rebuild).")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Events per transaction.") var chunk: Int = 5000

        func run() async throws {
            try await withMigratedPool(database, connections: 6) { pool in
                let progress = Progress()
                let applied = try await ProjectionRunner(pool: pool, chunk: max(1, chunk)).catchUp { progress.report($0) }
                FileOutput.standardOutput("applied \(applied) events\n")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each read model's position and lag behind the log.")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            try await withMigratedPool(database) { pool in
                let runner = ProjectionRunner(pool: pool)
                let skips = try await runner.skips(limit: 20)
                for s in try await runner.status() {
                    FileOutput.standardOutput("\(s.name): position \(s.position) of \(s.head), lag \(s.lag), skipped \(skips.counts[s.name] ?? 0)\n")
                }
                for skip in skips.recent {
                    FileOutput.standardOutput("skipped: \(skip.model) entry \(skip.index): \(skip.reason)\n")
                }
            }
        }
    }
}

/// `evidence-ledger provenance <hash>`: every event for a certificate hash, for an operator (all accounts).
struct ProvenanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provenance", abstract: "Print every ledger event for a certificate hash, with its chain checked.",
        discussion: "Exit 0 with an intact chain, 1 when the chain has a problem, 2 when nothing is recorded or the query cannot run.")
    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The certificate hash (sha256:…).") var certificateHash: String
    @Option(help: "Output format: text or json.") var format: String = "text"

    func run() async throws {
        guard ProtocolHash.isWellFormed(certificateHash) else {
            FileOutput.standardError("evidence-ledger: the certificate hash must be sha256: followed by 64 lowercase hex digits\n")
            throw ExitCode(2)
        }
        let intact = try await withMigratedPool(database) { pool -> Bool in
            let p = try await LedgerQueries(runner: ProjectionRunner(pool: pool)).provenance(certificateHash: certificateHash)
            guard !p.entries.isEmpty || !p.links.isEmpty else {
                FileOutput.standardError("evidence-ledger: nothing is recorded for \(certificateHash)\n")
                throw ExitCode(2)
            }
            if format == "json" {
                let events: [JSONValue] = p.entries.map { e in
                    [
                        "ledgerIndex": .number(Double(e.index)), "subjectIndex": .number(Double(e.subjectIndex)), "type": .string(JSONString(e.type)),
                        "account": e.account.map { .string(JSONString($0)) } ?? .null,
                        "recordedAt": .string(JSONString(Timestamp.iso8601(milliseconds: e.recordedAt))), "body": e.body,
                    ]
                }
                let doc: JSONValue = [
                    "certificateHash": .string(JSONString(certificateHash)), "events": .array(events),
                    "links": .array(p.links.map { ["kind": .string(JSONString($0.kind)), "ref": .string(JSONString($0.ref)), "ledgerIndex": .number(Double($0.entry.index))] }),
                    "chain": ["intact": .bool(p.chainProblems.isEmpty), "problems": .array(p.chainProblems.map { .string(JSONString($0.description)) })],
                ]
                FileOutput.standardOutput(doc.prettyPrinted() + "\n")
            } else {
                FileOutput.standardOutput("\(certificateHash)\n")
                for e in p.entries {
                    FileOutput.standardOutput(
                        "  #\(e.index)  \(Timestamp.iso8601(milliseconds: e.recordedAt))  \(e.type)  account \(e.account ?? "-")  \(e.payloadDigest == nil ? "" : "(bundle)")\n")
                }
                for l in p.links { FileOutput.standardOutput("  #\(l.entry.index)  \(l.entry.type)  \(l.kind) \(l.ref)\n") }
                for problem in p.chainProblems { FileOutput.standardOutput("BROKEN: \(problem)\n") }
                FileOutput.standardOutput(p.chainProblems.isEmpty ? "chain intact (\(p.entries.count) events)\n" : "chain BROKEN\n")
            }
            return p.chainProblems.isEmpty
        }
        if !intact { throw ExitCode(1) }
    }
}
