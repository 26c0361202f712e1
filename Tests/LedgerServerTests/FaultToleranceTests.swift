import CERKit
import Foundation
import LedgerProcesses
import LedgerStore
import Testing
import LedgerTesting

/// Faults under load: PostgreSQL stopped (immediately, as in a crash) and started again twice, and a
/// client resetting connections, while clients attest as fast as they can and retry whatever was not
/// acknowledged with its Idempotency-Key. Every acknowledged record is in the log exactly once, every
/// record is eventually acknowledged, and `ledger verify` is green.
@Suite(.blockingIO) struct FaultToleranceTests {
    @Test func noAcknowledgedRecordIsLostOrDuplicatedAcrossDatabaseRestartsAndResets() throws {
        let dir = "/tmp/el-fault-\(UUID().uuidString.prefix(8))"
        let port = 30000 + Int.random(in: 0..<20000)
        let cluster = EmbeddedPostgres(directory: dir, port: port, databaseName: "fault")
        try cluster.start()
        defer {
            try? cluster.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
        let node = try TestNode(serveArguments: ["--request-timeout", "10"], cluster: cluster.conninfo(database: "postgres"))
        let count = 240
        let bundles = try (0..<count).map { try freshBundle("fault-\($0)") }
        let hashes = try bundles.map { try JSONParser.parse($0)["certificateHash"]!.stringValue! }

        final class State: @unchecked Sendable {
            let lock = NSLock()
            var next = 0
            var acknowledged: [Int: Int64] = [:]  // bundle → ledger index
            var failures = 0
            var done = false
            let total: Int
            init(total: Int) { self.total = total }
            func take() -> Int? { lock.lock(); defer { lock.unlock() }; if next < total { next += 1; return next - 1 }; return nil }
        }
        let state = State(total: count)
        let started = Date()
        let group = DispatchGroup()
        // The faults: two immediate stops of PostgreSQL, and a client that resets connections throughout,
        // each on a thread of its own (Dispatch's queues are as narrow as the machine and would run them late).
        func onThread(_ body: @escaping @Sendable () -> Void) {
            group.enter()
            Thread.detachNewThread {
                body()
                group.leave()
            }
        }
        onThread {
            for _ in 0..<2 {
                Thread.sleep(forTimeInterval: 0.8)
                try? cluster.stop(immediately: true)
                Thread.sleep(forTimeInterval: 1.5)
                try? cluster.start()
            }
        }
        onThread {
            while !state.lock.withLock({ state.done }) && Date().timeIntervalSince(started) < 60 {
                resetConnection(port: node.port)
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        DispatchQueue.concurrentPerform(iterations: 6) { _ in
            while let i = state.take() {
                while Date().timeIntervalSince(started) < 90 {
                    if let r = try? RawHTTP.post(port: node.port, "/api/attest", json: bundles[i], key: node.apiKey, headers: [("Idempotency-Key", "fault-\(i)")]),
                        r.status == 200, let index = r.json?["ledger"]?["index"]?.numberValue
                    {
                        state.lock.withLock { state.acknowledged[i] = Int64(index) }
                        break
                    }
                    state.lock.withLock { state.failures += 1 }
                    Thread.sleep(forTimeInterval: 0.05)
                }
            }
        }
        state.lock.withLock { state.done = true }
        group.wait()
        // The faults did bite: some attempts failed and were retried.
        #expect(state.failures > 0, "no attempt failed: the faults did not happen")
        #expect(state.acknowledged.count == count, "\(count - state.acknowledged.count) records were never acknowledged")
        #expect(Set(state.acknowledged.values).count == state.acknowledged.count, "two records were acknowledged with one ledger index")
        // Each acknowledged record is in the log exactly once, at the index its answer gave.
        let rows = try node.scalar("""
            SELECT string_agg(idx || ' ' || (body::jsonb->>'certificateHash'), ',' ORDER BY idx) FROM ledger_entries WHERE type = 'cer.attested'
            """) ?? ""
        var logged: [String: [Int64]] = [:]
        for pair in rows.split(separator: ",") {
            let f = pair.split(separator: " ")
            logged[String(f[1]), default: []].append(Int64(f[0])!)
        }
        for (i, index) in state.acknowledged { #expect(logged[hashes[i]] == [index], "bundle \(i): acknowledged at \(index), logged at \(logged[hashes[i]] ?? [])") }
        #expect(logged.count == count && logged.values.allSatisfy { $0.count == 1 })
        let verify = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
    }
}

/// Opens a connection, sends half a request and resets it (SO_LINGER 0 sends RST on close).
func resetConnection(port: Int) {
    guard let fd = RawHTTP.connectSocket(port: port) else { return }
    let partial = Array("POST /api/attest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"bundleType\":".utf8)
    _ = partial.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    close(fd)
}
