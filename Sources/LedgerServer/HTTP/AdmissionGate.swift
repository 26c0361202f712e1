import Synchronization

/// Admission control for expensive requests: at most `limit` run at once; one more is answered 503
/// with `Retry-After` at once, without queueing, so a flood of them costs the server nothing but the refusal.
final class AdmissionGate: Sendable {
    let name: String
    let limit: Int
    private let running = Mutex(0)
    /// Requests refused since start (for metrics).
    private let refusedCount = Mutex(0)

    init(name: String, limit: Int) {
        self.name = name
        self.limit = max(1, limit)
    }

    var refused: Int { refusedCount.withLock { $0 } }
    var inFlight: Int { running.withLock { $0 } }

    /// Runs `body` holding a permit, or throws 503 `SERVICE_UNAVAILABLE` when all permits are taken.
    func withPermit<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let admitted = running.withLock { n -> Bool in
            guard n < limit else { return false }
            n += 1
            return true
        }
        guard admitted else {
            refusedCount.withLock { $0 += 1 }
            throw LedgerServerError(
                .serviceUnavailable, "the server is busy with other \(name) requests (at most \(limit) at once); retry in a second",
                headers: [("Retry-After", "1")])
        }
        defer { running.withLock { $0 -= 1 } }
        return try await body()
    }
}
