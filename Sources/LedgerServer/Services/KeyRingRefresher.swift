public import Logging
import Synchronization

/// Re-reads the node's key events every `interval`, so rotations made by any process reach this one.
public enum KeyRingRefresher {
    public static func service(ring: KeyRing, interval: Duration, logger: Logger) -> PeriodicService {
        let lastKid = Mutex(ring.current.signer?.kid)
        return PeriodicService(every: interval, logger: logger, what: "re-read the node's keys", startsAfterInterval: true) {
            let snapshot = try await ring.refresh()
            let kid = snapshot.signer?.kid
            let changed = lastKid.withLock { last -> Bool in
                defer { last = kid }
                return last != kid
            }
            if changed { logger.notice("signing key changed", metadata: ["ledger.kid": "\(kid ?? "none")"]) }
        }
    }
}
