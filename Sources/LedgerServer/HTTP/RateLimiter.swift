import Synchronization

/// A per-key budget of actions per minute (fixed one-minute windows). Keys idle for a window are
/// forgotten, and at most `maxKeys` are tracked, so memory stays bounded whatever callers send.
final class RateLimiter: Sendable {
    let perMinute: Int
    let maxKeys: Int
    private let windows = Mutex<[String: (start: Int64, count: Int)]>([:])

    init(perMinute: Int, maxKeys: Int = 100_000) {
        self.perMinute = max(1, perMinute)
        self.maxKeys = maxKeys
    }

    /// Takes one action from `key`'s budget at `now` (ms); false when the minute's budget is spent.
    func admit(_ key: String, now: Int64) -> Bool {
        windows.withLock { w in
            let start = now - now % 60_000
            if w.count >= maxKeys { w = w.filter { $0.value.start == start } }
            var entry = w[key].flatMap { $0.start == start ? $0 : nil } ?? (start: start, count: 0)
            guard entry.count < perMinute else { return false }
            entry.count += 1
            w[key] = entry
            return true
        }
    }

    /// Seconds until the current window ends.
    static func retryAfter(now: Int64) -> Int { Int((60_000 - now % 60_000 + 999) / 1000) }

    /// Takes one action from `key`'s budget, or throws 429 `RATE_LIMIT` with `Retry-After`.
    func requireAdmission(_ key: String, now: Int64, what: String) throws {
        guard admit(key, now: now) else {
            throw LedgerServerError(
                .rateLimited, "at most \(perMinute) \(what) per minute per account", headers: [("Retry-After", "\(Self.retryAfter(now: now))")])
        }
    }
}
