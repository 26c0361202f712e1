import CERKit
import Foundation
import LedgerCore
import Testing
import LedgerTesting
import LedgerProcesses
@testable import LedgerStore

/// Crash safety and multi-process appends, with the real binary against real PostgreSQL.
@Suite(.serialized, .blockingIO) struct ProcessTests {
    struct Ack: Hashable {
        var index: Int64
        var subject: String
        var subjectIndex: Int64
    }

    static func acks(_ url: URL) -> [Ack] {
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 4, parts[0] == "ack", let i = Int64(parts[1]), let s = Int64(parts[3]) else { return nil }
            return Ack(index: i, subject: String(parts[2]), subjectIndex: s)
        }
    }

    static func allEntries(_ conninfo: String) async throws -> [Int64: LedgerEntry] {
        let pool = TestDatabase.pool(conninfo)
        let log = PostgresEventLog(pool: pool)
        var out: [Int64: LedgerEntry] = [:]
        var from: Int64 = 0
        while true {
            let chunk = try await log.entries(from: from, limit: 5000)
            if chunk.isEmpty { break }
            for e in chunk { out[e.index] = e }
            from = chunk.last!.index + 1
        }
        await pool.shutdown()
        return out
    }

    @Test func acknowledgedAppendsSurviveSIGKILLAndTheLogStaysIntact() async throws {
        let conninfo = try TestDatabase.create()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("acks-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let process = try Binary.start(
            ["ledger", "append-load", "--database-url", conninfo, "--count", "1000000", "--concurrency", "16", "--subjects", "40",
             "--print-acks"], stdout: out)
        let deadline = Date().addingTimeInterval(60)
        while Self.acks(out).count < 800, Date() < deadline, process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        process.send(SIGKILL)
        #expect(process.terminatingSignal == SIGKILL)
        let acks = Self.acks(out)
        #expect(acks.count >= 800)

        let entries = try await Self.allEntries(conninfo)
        for ack in acks {
            let entry = entries[ack.index]
            #expect(entry?.subject == ack.subject && entry?.subjectIndex == ack.subjectIndex, "ack \(ack.index) missing or different")
        }
        #expect(entries.count >= acks.count)
        let pool = TestDatabase.pool(conninfo)
        let report = try await LedgerVerifier.verify(pool: pool)
        await pool.shutdown()
        #expect(report.isIntact, "\(report.problems.prefix(3))")
        #expect(report.size == Int64(entries.count))  // nothing half-written: the head and the rows agree
        #expect(try Binary.run(["ledger", "verify", "--database-url", conninfo]).status == 0)
    }

    @Test func twoProcessesAppendingConcurrentlyProduceOneDenseLog() async throws {
        let conninfo = try TestDatabase.create()
        let outs = (0..<2).map { _ in FileManager.default.temporaryDirectory.appendingPathComponent("acks-\(UUID().uuidString)") }
        defer { outs.forEach { try? FileManager.default.removeItem(at: $0) } }
        let processes = try outs.map { out in
            try Binary.start(
                ["ledger", "append-load", "--database-url", conninfo, "--count", "2500", "--concurrency", "8", "--subjects", "25",
                 "--print-acks"], stdout: out)
        }
        #expect(processes.allSatisfy { $0.exitCode == 0 })
        let acks = outs.flatMap(Self.acks)
        #expect(acks.count == 5000)
        #expect(Set(acks.map(\.index)) == Set(0..<5000))  // dense and disjoint across processes
        let pool = TestDatabase.pool(conninfo)
        let report = try await LedgerVerifier.verify(pool: pool)
        await pool.shutdown()
        #expect(report.isIntact, "\(report.problems.prefix(3))")
        #expect(report.size == 5000 && report.subjects == 25)
        // One tree: every complete interior node of a 5000-leaf tree is stored and matches its leaves.
        #expect(report.nodesChecked == (1...12).reduce(0) { $0 + (5000 >> $1) })
    }
}

/// PostgreSQL stopped and restarted under load: appends fail with a retryable error while it is down
/// and succeed again afterwards, with the same pool and no restart of ours.
@Suite(.blockingIO) struct RestartTests {
    @Test func appendsRecoverAfterThePostgreSQLServerRestarts() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-restart-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let pg = EmbeddedPostgres(directory: dir.path, port: 30000 + Int.random(in: 0..<20000), databaseName: "restart")
        try pg.start()
        defer {
            try? pg.stop()
            try? FileManager.default.removeItem(at: dir)
        }
        try Migrator.migrate(conninfo: pg.conninfo())
        let pool = TestDatabase.pool(pg.conninfo(), connections: 2)
        let log = PostgresEventLog(pool: pool)

        let outcome = Outcomes()
        let load = Task {
            var n = 0
            while !Task.isCancelled {
                do {
                    _ = try await log.append(AppendRequest(subject: "run:restart", type: "load.event", body: ["n": .number(Double(n))]))
                    outcome.success()
                    n += 1
                } catch let error as LedgerStoreError {
                    outcome.failure(retryable: error.isRetryable, error)
                    try? await Task.sleep(for: .milliseconds(20))
                } catch {
                    outcome.failure(retryable: false, error)
                }
            }
        }
        // Wait for events, not for fixed times: the machine may be busy with other tests.
        func waitUntil(_ condition: @escaping () -> Bool) async throws {
            let deadline = ContinuousClock.now.advanced(by: .seconds(60))
            while !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        }
        try await waitUntil { outcome.snapshot().successes >= 20 }
        let before = outcome.snapshot()
        try pg.stop()
        try await waitUntil { outcome.snapshot().failures > before.failures }
        let down = outcome.snapshot()
        try pg.start()
        try await waitUntil { outcome.snapshot().successes >= down.successes + 20 }
        load.cancel()
        _ = await load.result
        let after = outcome.snapshot()

        #expect(before.successes > 0, "\(outcome.lastError)")
        #expect(down.failures > before.failures)  // the outage was seen
        #expect(after.nonRetryable == 0)  // and every failure said "retry"
        #expect(after.successes > down.successes)  // appends resumed without restarting anything
        let report = try await LedgerVerifier.verify(pool: pool)
        #expect(report.isIntact, "\(report.problems.prefix(3))")
        // Every acknowledged append is there; a COMMIT whose reply was lost in the shutdown may have
        // landed too (unacknowledged but whole, which is why clients retry with idempotency keys).
        #expect(report.size >= Int64(after.successes))
        #expect(report.size <= Int64(after.successes + after.failures))
        await pool.shutdown()
    }

    final class Outcomes: @unchecked Sendable {
        private let lock = NSLock()
        private var s = 0, f = 0, nr = 0
        private(set) var lastError = ""
        func success() { lock.lock(); s += 1; lock.unlock() }
        func failure(retryable: Bool, _ error: any Error) { lock.lock(); f += 1; if !retryable { nr += 1 }; if lastError.isEmpty { lastError = "\(error)" }; lock.unlock() }
        func snapshot() -> (successes: Int, failures: Int, nonRetryable: Int) { lock.lock(); defer { lock.unlock() }; return (s, f, nr) }
    }
}
