public import CERKit
import Foundation
public import LedgerCore
public import LedgerStore
public import Logging
import Synchronization

/// Per-record RFC 3161 timestamps, as NexArt's node makes them: the imprint is the 32 bytes of the
/// certificate hash's digest, asked for before the receipt is signed, within a short timeout. With a
/// token the receipt says `timestampType: "rfc3161"`, the response carries `timestamp {type, status,
/// provider, token}`, and a `cer.timestamped` entry is appended with the attestation (atomically). Without
/// one (the authority is slow or down) the attestation goes ahead as `node-issued` and the certificate is
/// queued: the token follows later as a `cer.timestamped` entry.
public final class RecordTimestamps: Sendable {
    public let client: TimestampClient
    /// Certificates still waiting for a token, by subject: their account. Bounded; held in memory (a
    /// restart forgets them: see docs/operations.md).
    private let pending = Mutex<[String: String]>([:])
    public static let maxPending = 10_000

    public init(client: TimestampClient) { self.client = client }

    /// The digest a per-record token is over.
    public static func imprint(certificateHash: String) -> [UInt8]? { ProtocolHash.digest(of: certificateHash) }

    /// A token for the certificate, or nil (and the certificate queued for a retry).
    public func stamp(certificateHash: String, account: String) async -> TimestampClient.Stamp? {
        guard let imprint = Self.imprint(certificateHash: certificateHash) else { return nil }
        do {
            return try await client.stamp(imprint: imprint)
        } catch {
            pending.withLock { if $0.count < Self.maxPending { $0[Subject.certificate(certificateHash)] = account } }
            return nil
        }
    }

    /// How many certificates wait for a token.
    public var pendingCount: Int { pending.withLock { $0.count } }

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
    public func retry(log: PostgresEventLog, batch: Int = 50) async throws -> Int {
        let work = pending.withLock { Array($0.prefix(batch)) }
        var done = 0
        for (subject, account) in work {
            guard let hash = Subject.certificateHash(of: subject), let imprint = Self.imprint(certificateHash: hash) else { continue }
            guard let stamp = try? await client.stamp(imprint: imprint) else { break }  // still down: next run
            _ = try await log.append(Self.entry(certificateHash: hash, account: account, stamp: stamp))
            pending.withLock { _ = $0.removeValue(forKey: subject) }
            done += 1
        }
        return done
    }

    public func service(log: PostgresEventLog, interval: Duration, logger: Logger) -> PeriodicService {
        PeriodicService(every: interval, logger: logger, what: "timestamp records attested while the authority was away", startsAfterInterval: true) {
            let done = try await self.retry(log: log)
            if done > 0 { logger.notice("records timestamped late", metadata: ["ledger.count": "\(done)"]) }
        }
    }
}
