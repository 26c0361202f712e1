import Foundation
import LedgerStore
import LedgerTesting
import Testing

@Suite struct PoolDeadlineTests {
    /// A request whose deadline passes while it waits for a connection stops waiting at once, and the
    /// connection it would have had goes to the next waiter.
    @Test func aCancelledWaitForAConnectionEndsAtOnceAndLosesNoWakeUp() async throws {
        let conninfo = try TestDatabase.create(migrate: false)
        let pool = TestDatabase.pool(conninfo, connections: 2)
        // Both pool connections are held by statements that wait for a lock this test holds.
        let gate = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: 60_000, role: nil)
        _ = try gate.query("SELECT pg_advisory_lock(42)")
        // Should a cancelled wait not end (the defect this test is for), the lock is released after 60 s
        // anyway, so the test fails instead of hanging.
        let gatePid = try #require(try gate.query("SELECT pg_backend_pid()").rows.first?[0])
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            let c = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: 10_000, role: nil)
            _ = try c.query("SELECT pg_terminate_backend(\(gatePid))")
            c.close()
        }
        let holders = (0..<2).map { _ in
            Task { () throws -> ContinuousClock.Instant in
                try await pool.withConnection { c in _ = try c.query("SELECT pg_advisory_lock_shared(42), pg_advisory_unlock_shared(42)") }
                return ContinuousClock.now
            }
        }
        for _ in 0..<500 where pool.usage != (open: 2, idle: 0) { try await Task.sleep(for: .milliseconds(20)) }
        #expect(pool.usage == (open: 2, idle: 0))
        let waiter = Task { try await pool.withConnection { c in try c.query("SELECT 1").rows.count } }
        for _ in 0..<500 where pool.waiting == 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(pool.waiting == 1, "the waiter never waited")
        waiter.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiter.value }
        #expect(pool.waiting == 0)
        // Only now are the connections given back: the cancelled wait did not need one to end.
        let waiterEnded = ContinuousClock.now
        watchdog.cancel()
        _ = try gate.query("SELECT pg_advisory_unlock(42)")
        gate.close()
        // A second waiter is served as soon as a holder returns its connection.
        let next = Task { try await pool.withConnection { c in try c.query("SELECT 1").rows.count } }
        #expect(try await next.value == 1)
        for h in holders { #expect(try await h.value > waiterEnded) }
        await pool.shutdown()
    }
}
