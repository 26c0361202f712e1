public import CERKit
import Foundation
public import LedgerCore
public import LedgerStore
public import Logging

/// Per-record RFC 3161 timestamps, as NexArt's node makes them: the imprint is the 32 bytes of the
/// certificate hash's digest, asked for before the receipt is signed, within a short timeout. With a
/// token the receipt says `timestampType: "rfc3161"`, the response carries `timestamp {type, status,
/// provider, token}`, and a `cer.timestamped` entry is appended with the attestation (atomically). Without
/// one (the authority is slow or down) the attestation goes ahead as `node-issued` and the certificate is
/// queued in `ledger_timestamp_queue` (so a restart forgets nothing): the token follows later as a
/// `cer.timestamped` entry.
public final class RecordTimestamps: Sendable {
    public let client: TimestampClient
    let log: PostgresEventLog
    let logger: Logger
    /// The queue's bound: beyond it a record stays `node-issued` (logged).
    public static let maxPending = 100_000

    public init(client: TimestampClient, log: PostgresEventLog, logger: Logger) {
        self.client = client
        self.log = log
        self.logger = logger
    }

    /// The digest a per-record token is over.
    public static func imprint(certificateHash: String) -> [UInt8]? { ProtocolHash.digest(of: certificateHash) }

    /// A token for the certificate, or nil (and the certificate queued for a retry).
    public func stamp(certificateHash: String, account: String) async -> TimestampClient.Stamp? {
        guard let imprint = Self.imprint(certificateHash: certificateHash) else { return nil }
        do {
            return try await client.stamp(imprint: imprint)
        } catch {
            do {
                if try await !log.queueTimestamp(subject: Subject.certificate(certificateHash), account: account, limit: Self.maxPending) {
                    logger.error("the timestamp queue is full: a record stays node-issued", metadata: ["ledger.subject": "\(certificateHash)"])
                }
            } catch {
                logger.error("could not queue a record for a late timestamp", metadata: ["ledger.problem": "\(error)"])
            }
            return nil
        }
    }

    /// How many certificates wait for a token.
    public func pendingCount() async throws -> Int { try await log.queuedTimestampCount() }

    /// The `timestamp` member of the response and the entry body (NexArt's shape).
    public static func responseMember(_ stamp: TimestampClient.Stamp) -> JSONValue {
        [
            "type": "rfc3161", "status": "ok", "provider": .string(JSONString(provider(stamp))),
            "token": .string(JSONString(Base64.encode(stamp.response))),
        ]
    }

    /// The authority's name in receipts: its host.
    public static func provider(_ stamp: TimestampClient.Stamp) -> String { URL(string: stamp.url)?.host ?? stamp.url }

    /// The `cer.timestamped` entry of a token (the token is the payload).
    public static func entry(certificateHash: String, account: String, stamp: TimestampClient.Stamp) -> AppendRequest {
        let body: JSONValue = [
            "certificateHash": .string(JSONString(certificateHash)), "tsa": .string(JSONString(stamp.url)),
            "provider": .string(JSONString(provider(stamp))), "genTime": .string(JSONString(stamp.verified.token.genTime)),
            "serialNumber": .string(JSONString(stamp.verified.serialNumber)), "signer": .string(JSONString(stamp.verified.signer)),
            "tokenSha256": .string(JSONString(Hex.encode(ProtocolHash.sha256(stamp.response)))),
        ]
        return AppendRequest(
            subject: Subject.certificate(certificateHash), type: EventType.cerTimestamped, account: account, body: body, payload: stamp.response,
            idempotencyKey: "tsa:\(account)")
    }

    /// Retries the queued certificates (at most `batch` per run) and records each token that comes.
    public func retry(batch: Int = 50) async throws -> Int {
        let work = try await log.queuedTimestamps(limit: batch)
        var done = 0
        for (subject, account) in work {
            guard let hash = Subject.certificateHash(of: subject), let imprint = Self.imprint(certificateHash: hash) else {
                try await log.dequeueTimestamp(subject: subject)
                continue
            }
            guard let stamp = try? await client.stamp(imprint: imprint) else { break }  // still down: next run
            _ = try await log.append(Self.entry(certificateHash: hash, account: account, stamp: stamp))
            try await log.dequeueTimestamp(subject: subject)
            done += 1
        }
        return done
    }

    public func service(interval: Duration) -> PeriodicService {
        PeriodicService(every: interval, logger: logger, what: "timestamp records attested while the authority was away", startsAfterInterval: true) {
            let done = try await self.retry()
            if done > 0 { self.logger.notice("records timestamped late", metadata: ["ledger.count": "\(done)"]) }
        }
    }
}
