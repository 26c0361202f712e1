public import Logging
import LedgerCore
import Synchronization

/// Re-reads the node's key events every `interval`, so rotations made by any process reach this one.
/// Key events that are not authorised are logged (once each) as what they are: someone wrote to the log
/// without the node's keys.
public enum KeyRingRefresher {
    public static func service(ring: KeyRing, interval: Duration, logger: Logger) -> PeriodicService {
        let seen = Mutex((kid: ring.current.signer?.kid, ignored: ring.current.history.ignoredCount))
        return PeriodicService(every: interval, logger: logger, what: "re-read the node's keys", startsAfterInterval: true) {
            let snapshot = try await ring.refresh()
            let kid = snapshot.signer?.kid
            let (changed, before) = seen.withLock { last -> (Bool, Int) in
                defer { last = (kid, max(last.ignored, snapshot.history.ignoredCount)) }
                return (last.kid != kid, last.ignored)
            }
            if changed { logger.notice("signing key changed", metadata: ["ledger.kid": "\(kid ?? "none")"]) }
            for event in snapshot.history.ignored.dropFirst(before) { logger.error("unauthorised key event ignored", metadata: ["ledger.problem": "\(event)"]) }
            if snapshot.history.ignoredCount > before, snapshot.history.ignoredCount > KeyHistory.ignoredKept {
                logger.error("unauthorised key events ignored", metadata: ["ledger.count": "\(snapshot.history.ignoredCount)"])
            }
        }
    }
}
