public import CERKit
public import LedgerCore
public import LedgerStore
public import Logging
import Synchronization

/// Per-checkpoint timestamps: the latest signed checkpoint gets an RFC 3161 token over SHA-256 of its
/// note, recorded as a `checkpoint.timestamped` entry on `checkpoint:<size>` (the token is the payload).
/// Every entry the checkpoint covers then has an external upper bound on its time, through its inclusion
/// proof. A checkpoint that covers nothing new but earlier timestamps is skipped (no endless churn on an
/// idle log); servers racing on one checkpoint keep one entry (idempotency key `tsa`); a TSA that is down
/// is tried again at the next interval, for the checkpoint that is latest then.
public final class CheckpointTimestamper: Sendable {
    let log: PostgresEventLog
    public let client: TimestampClient
    /// The size of the last checkpoint known to be timestamped (nil: not looked up yet).
    private let stamped = Mutex<Int64?>(nil)

    public init(log: PostgresEventLog, client: TimestampClient) {
        self.log = log
        self.client = client
    }

    /// Timestamps the latest checkpoint if it needs it; returns the entry appended (or found), or nil.
    @discardableResult
    public func timestampLatest() async throws -> LedgerEntry? {
        guard let latest = try await log.latestCheckpoint(), latest.size > 0 else { return nil }
        let last: Int64
        if let known = stamped.withLock({ $0 }) {
            last = known
        } else {
            let found = try await log.latestEntry(type: EventType.checkpointTimestamped)
            last = found?.body["size"]?.numberValue.flatMap { Int64(exactly: $0) } ?? 0
            stamped.withLock { $0 = max($0 ?? 0, last) }
        }
        guard latest.size > last, try await log.containsEntry(from: last, to: latest.size, notOfTypes: EventType.evidence) else {
            return nil
        }
        let subject = Subject.checkpoint(latest.size)
        if let existing = try await log.entry(subject: subject, type: EventType.checkpointTimestamped, idempotencyKey: "tsa") {
            stamped.withLock { $0 = max($0 ?? 0, latest.size) }
            return existing
        }
        let imprint = ProtocolHash.sha256(latest.note)
        let stamp = try await client.stamp(imprint: imprint)
        let body: JSONValue = [
            "size": .number(Double(latest.size)), "rootHash": .string(JSONString(Base64.encode(latest.rootHash))),
            "noteSha256": .string(JSONString(Hex.encode(imprint))), "tsa": .string(JSONString(stamp.url)),
            "genTime": .string(JSONString(stamp.verified.token.genTime)), "serialNumber": .string(JSONString(stamp.verified.serialNumber)),
            "signer": .string(JSONString(stamp.verified.signer)), "tokenSha256": .string(JSONString(Hex.encode(ProtocolHash.sha256(stamp.response)))),
        ]
        let result = try await log.append(AppendRequest(
            subject: subject, type: EventType.checkpointTimestamped, body: body, payload: stamp.response, idempotencyKey: "tsa"))
        stamped.withLock { $0 = max($0 ?? 0, latest.size) }
        return result.entry
    }

    /// The periodic service: after the checkpointer, every `interval`.
    public func service(interval: Duration, logger: Logger) -> PeriodicService {
        PeriodicService(every: interval, logger: logger, what: "timestamp the latest checkpoint", startsAfterInterval: true) {
            do {
                if let entry = try await self.timestampLatest() {
                    logger.debug("checkpoint timestamped", metadata: ["ledger.index": "\(entry.index)"])
                }
            } catch let error as TimestampClient.Unavailable {
                logger.warning("no timestamp for the latest checkpoint yet", metadata: ["ledger.problem": "\(error)"])
            }
        }
    }
}
