import Synchronization

/// A CPU budget for anonymous work, as a token bucket of seconds: it refills at `share` seconds per second
/// (a share of one core) up to `burst`, and each piece of work is charged the time it took. While the
/// bucket is empty new work is refused, so however many anonymous clients there are, their work takes at
/// most `share` of a core on average (priority alone cannot promise that: Linux's autogroups let a busy
/// low-priority thread claim its process's fair share against PostgreSQL).
final class WorkBudget: Sendable {
    let share: Double
    let burst: Double
    private let state: Mutex<(tokens: Double, at: ContinuousClock.Instant)>

    init(share: Double, burst: Double = 1) {
        self.share = share
        self.burst = burst
        state = Mutex((burst, ContinuousClock.now))
    }

    /// True when some budget is left now.
    func hasBudget() -> Bool {
        state.withLock { s in
            refill(&s)
            return s.tokens > 0
        }
    }

    /// Charges work that took `duration`.
    func charge(_ duration: Duration) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        state.withLock { s in
            refill(&s)
            s.tokens -= seconds
        }
    }

    private func refill(_ s: inout (tokens: Double, at: ContinuousClock.Instant)) {
        let now = ContinuousClock.now
        let elapsed = now - s.at
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        s.tokens = min(burst, s.tokens + seconds * share)
        s.at = now
    }
}
