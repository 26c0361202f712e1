import ArgumentParser
import CERKit
import Foundation
import LedgerCore
import LedgerProjections
import LedgerServer
import LedgerStore

/// `evidence-ledger ledger …`: operator commands on the event log.
struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "Inspect and audit the event log.", subcommands: [Verify.self, Status.self, AppendLoad.self])

    /// `ledger verify`: the fsck. Exit 0 intact, 1 broken, 2 cannot run.
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute every leaf hash, subject chain and tree node; check the guards, the key events and every checkpoint.",
            discussion: "Exit codes: 0 intact, 1 broken (the first problem names its entry), 2 the audit could not run.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Output format: text or json.") var format: String = "text"
        @OptionGroup var trust: TrustOptions
        @Option(name: .customLong("keys-dir"), help: "Also trust the anchors in this directory's trust file (LEDGER_KEYS_DIR, default .ledger/keys).")
        var keysDirectory: String?
        @Option(help: "The log's origin; checkpoints under any other are refused (LEDGER_LOG_ORIGIN, default evidence-ledger/<node id>).")
        var origin: String?
        @Option(name: .customLong("node-id"), help: "Node id the default origin is made from (LEDGER_NODE_ID, default evidence-ledger-node).")
        var nodeId: String?
        @Option(
            name: .customLong("trusted-checkpoint"),
            help: "A signed checkpoint held outside the database (an auditor's copy, a server's state/latest-checkpoint); repeatable. The log must extend it.")
        var trustedCheckpoints: [String] = []
        @Option(name: .customLong("tsa-roots"), help: "PEM roots of timestamp authorities: every checkpoint and record timestamp is verified against them.")
        var tsaRoots: String?
        @OptionGroup var witnessing: WitnessOptions
        @Option(name: .customLong("retention-floor-days"), help: "The floor every erasure must respect, in days (LEDGER_RETENTION_FLOOR_DAYS, default 90).")
        var retentionFloorDays: Int?

        /// The anchors, origin and trusted checkpoints, or exit 2 with a sentence.
        func auditTrust() throws -> LedgerVerifier.Trust {
            let store = NodeKeyStore(directory: keysDirectory ?? Environment.value("LEDGER_KEYS_DIR") ?? ServerConfiguration().keysDirectory)
            var anchors = try trust.anchors()
            do { anchors = anchors.union(try store.trustAnchors()) } catch {
                FileOutput.standardError("evidence-ledger: \(error.message)")
                throw ExitCode(2)
            }
            let node = nodeId ?? Environment.value("LEDGER_NODE_ID") ?? ServerConfiguration().nodeId
            let origin = origin ?? Environment.value("LEDGER_LOG_ORIGIN").flatMap { $0.isEmpty ? nil : $0 } ?? "evidence-ledger/\(node)"
            var trusted: [(name: String, note: [UInt8])] = []
            for path in trustedCheckpoints {
                guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else {
                    FileOutput.standardError("evidence-ledger: cannot read the trusted checkpoint \(path) (missing, unreadable or over 1 MiB)")
                    throw ExitCode(2)
                }
                trusted.append((path, [UInt8](data)))
            }
            var timestampRoots: RFC3161Verifier.Roots? = nil
            if let tsaRoots {
                guard let pem = try? String(contentsOfFile: tsaRoots, encoding: .utf8), let roots = try? RFC3161Verifier.Roots(pem: pem),
                    !roots.certificates.isEmpty
                else {
                    FileOutput.standardError("evidence-ledger: \(tsaRoots) holds no readable PEM certificate")
                    throw ExitCode(2)
                }
                timestampRoots = roots
            }
            var result = LedgerVerifier.Trust(origin: origin, nodeId: node, anchors: anchors, trustedCheckpoints: trusted, timestampRoots: timestampRoots)
            (result.witnesses, result.witnessQuorum) = try witnessing.resolve()
            result.retentionFloorDays = retentionFloorDays ?? Environment.value("LEDGER_RETENTION_FLOOR_DAYS").flatMap { Int($0) } ?? result.retentionFloorDays
            guard (0...36_500).contains(result.retentionFloorDays) else { throw ValidationError("--retention-floor-days must be from 0 to 36500") }
            return result
        }

        func run() async throws {
            let trust = try auditTrust()
            let (conninfo, _, _) = try database.resolve()
            let pool = PostgresConnectionPool(configuration: PostgresConfiguration(conninfo: conninfo, maxConnections: 1, statementTimeoutMilliseconds: 0, role: nil))
            let report: LedgerVerifier.Report
            do {
                report = try await LedgerVerifier.verify(pool: pool, trust: trust)
                await pool.shutdown()
            } catch {
                await pool.shutdown()
                FileOutput.standardError("evidence-ledger: the audit could not run: \(error)")
                throw ExitCode(2)
            }
            if format == "json" {
                let doc: JSONValue = [
                    "intact": .bool(report.isIntact), "size": .number(Double(report.size)),
                    "entriesChecked": .number(Double(report.entriesChecked)), "subjects": .number(Double(report.subjects)),
                    "payloadsChecked": .number(Double(report.payloadsChecked)),
                    "treeNodesChecked": .number(Double(report.nodesChecked)), "checkpointsChecked": .number(Double(report.checkpointsChecked)),
                    "trustedCheckpointsChecked": .number(Double(report.trustedCheckpointsChecked)),
                    "timestampsChecked": .number(Double(report.timestampsChecked)),
                    "recordTimestampsChecked": .number(Double(report.recordTimestampsChecked)),
                    "cosignaturesChecked": .number(Double(report.cosignaturesChecked)),
                    "witnessedSize": report.witnessedSize.map { .number(Double($0)) } ?? .null,
                    "anchorsChecked": .number(Double(report.anchorsChecked)),
                    "purgesChecked": .number(Double(report.purgesChecked)),
                    "keys": .array(report.keys.keys.map { k in
                        ["kid": .string(JSONString(k.kid)), "status": .string(JSONString(k.status)), "fingerprint": .string(JSONString(k.fingerprint)),
                         "authorisedBy": .string(JSONString(k.authorisedBy)), "activationIndex": .number(Double(k.activationIndex))]
                    }),
                    "warnings": .array(report.warnings.map { .string(JSONString($0.description)) }),
                    "problems": .array(report.problems.map { p in
                        var o = JSONObject()
                        o["index"] = p.index.map { .number(Double($0)) } ?? .null
                        o["what"] = .string(JSONString(p.what))
                        o["expected"] = p.expected.map { .string(JSONString($0)) } ?? .null
                        o["found"] = p.found.map { .string(JSONString($0)) } ?? .null
                        return .object(o)
                    }),
                ]
                FileOutput.standardOutput(doc.prettyPrinted() + "\n")
            } else {
                FileOutput.standardOutput(
                    "checked \(report.entriesChecked) entries of \(report.size) in \(report.subjects) subjects, \(report.payloadsChecked) payloads, "
                        + "\(report.nodesChecked) tree nodes, \(report.checkpointsChecked) checkpoints, \(report.trustedCheckpointsChecked) trusted checkpoints, "
                        + "\(report.keys.keys.count) authorised keys, \(report.timestampsChecked) checkpoint timestamps, \(report.recordTimestampsChecked) record timestamps, "
                        + "\(report.cosignaturesChecked) witness cosignatures, \(report.anchorsChecked) anchors, \(report.purgesChecked) authorised purges\n")
                if let witnessed = report.witnessedSize { FileOutput.standardOutput("witnessed up to \(witnessed) entries\n") }
                for w in report.warnings.prefix(20) { FileOutput.standardOutput("WARNING: \(w)\n") }
                for p in report.problems.prefix(20) { FileOutput.standardOutput("BROKEN: \(p)\n") }
                if report.problems.count > 20 { FileOutput.standardOutput("… and \(report.problems.count - 20) more problems\n") }
                FileOutput.standardOutput(report.isIntact ? "INTACT\n" : "BROKEN: \(report.problems.count) problems; the first: \(report.problems[0])\n")
            }
            if !report.isIntact { throw ExitCode(1) }
        }
    }

    /// `ledger status`: size and migrations.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the log's size and the applied migrations.")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let (conninfo, _, _) = try database.resolve()
            do {
                let applied = try Migrator.applied(conninfo: conninfo)
                let pool = PostgresConnectionPool(configuration: PostgresConfiguration(conninfo: conninfo, maxConnections: 1, role: nil))
                let size = try await PostgresEventLog(pool: pool).size()
                await pool.shutdown()
                FileOutput.standardOutput("entries: \(size)\nmigrations: \(applied.map(\.name).joined(separator: ", "))\n")
            } catch {
                FileOutput.standardError("evidence-ledger: \(error)")
                throw ExitCode(2)
            }
        }
    }

    /// `ledger append-load`: synthetic appends for tests and benchmarks.
    struct AppendLoad: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "append-load",
            abstract: "Append synthetic events with concurrent appenders (for tests and benchmarks).",
            discussion: "With --print-acks every acknowledged append prints 'ack INDEX SUBJECT SUBJECT_INDEX' at once. Ends with one JSON summary line.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Appends in total.") var count: Int = 10_000
        @Option(help: "Concurrent appenders.") var concurrency: Int = 16
        @Option(help: "Distinct subjects the events spread over.") var subjects: Int = 100
        @Option(name: .customLong("body-bytes"), help: "Approximate size of each event body.") var bodyBytes: Int = 1024
        @Option(name: .customLong("subject-prefix"), help: "Prefix of the subjects (run:<prefix>-N).") var subjectPrefix: String = "load"
        @Option(name: .customLong("pool-size"), help: "Database connections.") var poolSize: Int = 4
        @Flag(name: .customLong("print-acks"), help: "Print each acknowledged append.") var printAcks = false
        @Flag(help: "Retry retryable failures (database down) instead of stopping.") var retry = false
        @Option(help: "load: `load.event`s on run subjects; attestation: public `cer.attested`-shaped events, one certificate each (sha256:<n as 64 hex digits>, account bench, runs of 10 steps); deletion: a `deletion.requested` of each such certificate.")
        var shape: String = "load"
        @Option(name: .customLong("payload-bytes"), help: "attestation: a payload (bundle) of this many bytes with each event.") var payloadBytes: Int = 0
        @Option(help: "attestation and deletion: the number of the first certificate.") var first: Int = 0
        @Flag(name: .customLong("erase-concurrently"), help: "Benchmarks: run the retention worker (floor 0) in this process on the same log while appending, as `serve` does, until no deletion request is pending.")
        var eraseConcurrently = false
        @Flag(name: .customLong("without-tree"), help: "Benchmarks only: do not store tree nodes (the log's tree is then incomplete).")
        var withoutTree = false

        func validate() throws {
            if count < 0 || concurrency < 1 || subjects < 1 || bodyBytes < 0 || poolSize < 1 {
                throw ValidationError("count, concurrency, subjects, body-bytes and pool-size must be positive")
            }
            guard ["load", "attestation", "deletion"].contains(shape) else { throw ValidationError("--shape is load, attestation or deletion") }
            guard payloadBytes >= 0, payloadBytes <= 1 << 24, first >= 0 else { throw ValidationError("--payload-bytes is 0 to 16777216 and --first is not negative") }
        }

        /// The synthetic certificate hash of attestation `n`.
        static func certificateHash(_ n: Int) -> String {
            let hex = String(n, radix: 16)
            return "sha256:" + String(repeating: "0", count: 64 - hex.count) + hex
        }

        /// An event shaped like a public attestation of its own certificate (step n % 10 of run n / 10).
        static func attestation(_ n: Int, filler: String, payloadBytes: Int = 0) -> AppendRequest {
            let hash = certificateHash(n)
            var run: JSONObject = ["runId": .string(JSONString("load-run-\(n / 10)")), "stepIndex": .number(Double(n % 10)), "workflowId": "load"]
            if n % 10 > 0 { run["prevStepHash"] = .string(JSONString(certificateHash(n - 1))) }
            return AppendRequest(
                subject: Subject.certificate(hash), type: EventType.cerAttested, account: "bench",
                body: [
                    "source": "load", "certificateHash": .string(JSONString(hash)), "bundleType": "cer.ai.execution.v1",
                    "protocolVersion": "1.2.0", "executionId": .string(JSONString("load-\(n)")), "visibility": "public",
                    "checks": ["snapshot_hashes", "certificate_hash"], "run": .object(run), "filler": .string(JSONString(filler)),
                ],
                payload: payloadBytes > 0 ? Array("bundle \(n) ".utf8) + Array(repeating: 0x62, count: payloadBytes) : nil,
                idempotencyKey: "bench")
        }

        /// A deletion request of attestation `n`'s certificate.
        static func deletion(_ n: Int) -> AppendRequest {
            let hash = certificateHash(n)
            return AppendRequest(
                subject: Subject.certificate(hash), type: EventType.deletionRequested, account: "bench",
                body: ["certificateHash": .string(JSONString(hash)), "reason": "load", "actor": "bench"], idempotencyKey: "bench")
        }

        func run() async throws {
            let (conninfo, _, _) = try database.resolve()
            let pool = PostgresConnectionPool(configuration: PostgresConfiguration(conninfo: conninfo, maxConnections: poolSize))
            let log = PostgresEventLog(pool: pool, maintainsTree: !withoutTree)
            let filler = String(repeating: "x", count: max(0, bodyBytes - 120))
            let counter = LoadCounter(limit: count)
            let clock = ContinuousClock()
            let start = clock.now
            let printAcks = self.printAcks, retry = self.retry, subjects = self.subjects, prefix = subjectPrefix
            let shape = self.shape, payloadBytes = self.payloadBytes, first = self.first
            let eraser: Task<(erased: Int, seconds: Double), any Error>? = eraseConcurrently
                ? Task {
                    let worker = RetentionWorker(log: log, projections: ProjectionRunner(pool: pool), floorDays: 0, batch: 1000)
                    var erased = 0
                    while true {
                        let report = try await worker.run(now: PostgresEventLog.wallClock())
                        erased += report.erased
                        if report.pending == 0 { break }
                    }
                    let d = clock.now - start
                    return (erased, Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
                }
                : nil
            let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
                for worker in 0..<concurrency {
                    group.addTask {
                        var mine: [Double] = []
                        while let n = counter.next() {
                            let request = shape == "attestation"
                                ? Self.attestation(first + n, filler: filler, payloadBytes: payloadBytes)
                                : shape == "deletion" ? Self.deletion(first + n) : AppendRequest(
                                    subject: Subject.run("\(prefix)-\((n &* 7919 &+ worker) % subjects)"), type: EventType.load,
                                    body: ["n": .number(Double(n)), "worker": .number(Double(worker)), "filler": .string(JSONString(filler))])
                            while true {
                                let t0 = clock.now
                                do {
                                    let result = try await log.append(request)
                                    let d = clock.now - t0
                                    mine.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
                                    if printAcks {
                                        let e = result.entry
                                        FileOutput.standardOutput("ack \(e.index) \(e.subject) \(e.subjectIndex)\n")
                                    }
                                    break
                                } catch let error as LedgerStoreError where retry && error.isRetryable {
                                    counter.failure()
                                    try await Task.sleep(for: .milliseconds(100))
                                }
                            }
                        }
                        return mine
                    }
                }
                var all: [Double] = []
                for try await part in group { all += part }
                return all
            }
            let elapsed = clock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let erasure = try await eraser?.value
            let sorted = latencies.sorted()
            func percentile(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
            let stats = log.statistics
            await pool.shutdown()
            let summary: JSONValue = [
                "appended": .number(Double(latencies.count)), "seconds": .number((seconds * 1000).rounded() / 1000),
                "appendsPerSec": .number((Double(latencies.count) / seconds).rounded()),
                "p50Ms": .number((percentile(0.5) * 1000).rounded() / 1000), "p99Ms": .number((percentile(0.99) * 1000).rounded() / 1000),
                "batches": .number(Double(stats.batches)), "retryableFailures": .number(Double(counter.failures)),
                "concurrency": .number(Double(concurrency)), "overlapped": .number(Double(log.writerCounts.overlapped)),
                "failedAssumptions": .number(Double(log.writerCounts.failedAssumptions)), "careful": .number(Double(log.writerCounts.careful)),
                "erased": erasure.map { .number(Double($0.erased)) } ?? .null,
                "eraseSeconds": erasure.map { .number(($0.seconds * 1000).rounded() / 1000) } ?? .null,
            ]
            FileOutput.standardOutput(summary.compactText() + "\n")
        }
    }
}

/// Hands out append numbers to the workers.
final class LoadCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var issued = 0
    private(set) var failures = 0
    let limit: Int
    init(limit: Int) { self.limit = limit }
    func next() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard issued < limit else { return nil }
        issued += 1
        return issued - 1
    }
    func failure() {
        lock.lock()
        failures += 1
        lock.unlock()
    }
}
