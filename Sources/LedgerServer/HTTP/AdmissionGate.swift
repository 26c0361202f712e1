import Synchronization

/// Admission control for expensive requests: at most `limit` run at once; one more is answered 503
/// with `Retry-After` without queueing (after `refusalDelay`, for anonymous routes), so a flood of them
/// costs the server little more than the refusals.
final class AdmissionGate: Sendable {
    let name: String
    let limit: Int
    private let running = Mutex(0)
    /// Requests refused since start (for metrics).
    private let refusedCount = Mutex(0)

    /// How long a refused request waits before its 503 (nil: none). A client that retries at once is slowed
    /// to one attempt per `refusalDelay` per connection, so refusing a flood of large bodies, whose bytes
    /// the server must still drain, stays cheap.
    let refusalDelay: Duration?

    /// A CPU budget that must have time left for a request to be admitted (nil: none); the work is
    /// charged to it where it runs (`LowPriorityPool`).
    let budget: WorkBudget?

    init(name: String, limit: Int, refusalDelay: Duration? = nil, budget: WorkBudget? = nil) {
        self.name = name
        self.limit = max(1, limit)
        self.refusalDelay = refusalDelay
        self.budget = budget
    }

    var refused: Int { refusedCount.withLock { $0 } }
    var inFlight: Int { running.withLock { $0 } }

    /// Runs `body` holding a permit, or throws 503 `SERVICE_UNAVAILABLE` when all permits are taken.
    func withPermit<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let admitted = running.withLock { n -> Bool in
            guard n < limit, budget?.hasBudget() ?? true else { return false }
            n += 1
            return true
        }
        guard admitted else {
            refusedCount.withLock { $0 += 1 }
            if let refusalDelay { try? await Task.sleep(for: refusalDelay) }
            throw LedgerServerError(
                .serviceUnavailable, "the server is busy with other \(name) requests (at most \(limit) at once, within a CPU budget); retry in a second",
                headers: [("Retry-After", "1")])
        }
        defer { running.withLock { $0 -= 1 } }
        return try await body()
    }
}
