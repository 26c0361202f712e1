import Foundation
import LedgerStore
import Testing

@Suite struct PoolDeadlineTests {
    /// A request whose deadline passes while it waits for a connection stops waiting at once, and the
    /// connection it would have had goes to the next waiter.
    @Test func aCancelledWaitForAConnectionEndsAtOnceAndLosesNoWakeUp() async throws {
        let pool = TestDatabase.pool(try TestDatabase.create(migrate: false), connections: 2)
        // Both connections are held by sleeping statements.
        let holders = (0..<2).map { _ in
            Task { () throws -> ContinuousClock.Instant in
                try await pool.withConnection { c in _ = try c.query("SELECT pg_sleep(2)") }
                return ContinuousClock.now
            }
        }
        // Wait until both connections are out (on a loaded machine the holders may start late).
        for _ in 0..<200 where pool.usage != (open: 2, idle: 0) { try await Task.sleep(for: .milliseconds(20)) }
        #expect(pool.usage == (open: 2, idle: 0))
        try await Task.sleep(for: .milliseconds(100))  // the holders' statements are running
        let started = ContinuousClock.now
        let waiter = Task { try await pool.withConnection { c in try c.query("SELECT 1").rows.count } }
        try await Task.sleep(for: .milliseconds(100))
        waiter.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiter.value }
        let waiterEnded = ContinuousClock.now
        // A second waiter is served as soon as a holder returns its connection.
        let next = Task { try await pool.withConnection { c in try c.query("SELECT 1").rows.count } }
        #expect(try await next.value == 1)
        // The cancelled wait ended before any connection came back (not when one did).
        for h in holders { #expect(try await h.value > waiterEnded, "the cancelled wait ended only when a connection came back") }
        _ = started
        await pool.shutdown()
    }
}

