public import CERKit
import Foundation
public import LedgerCore
public import LedgerStore
public import Logging
import Synchronization

/// Cross-log anchors: the node's latest checkpoint is stamped into other logs, another EvidenceLedger
/// node or a NexArt-compatible node, through their `POST /api/stamp-hash` (the hash stamped is
/// `sha256:` + hex SHA-256 of the signed checkpoint note). Their signed receipt is verified against the
/// key manifest they publish (`/.well-known/nexart-node.json`) before it is recorded as an
/// `anchor.recorded` entry on `checkpoint:<size>` (the reply is the payload; idempotency key
/// `anchor:<target>`). A checkpoint that covers nothing new but evidence is not anchored again; each
/// target is anchored at most once per `interval`.
public final class CheckpointAnchors: Sendable {
    public let targets: [String]
    let apiKey: String?
    let log: PostgresEventLog
    let timeout: Duration
    /// The size last anchored per target (looked up once from the log).
    private let anchored = Mutex<[String: Int64]?>(nil)

    public init(targets: [String], apiKey: String?, log: PostgresEventLog, timeout: Duration) {
        self.targets = targets.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.apiKey = apiKey
        self.log = log
        self.timeout = timeout
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Anchors the latest checkpoint in every target that needs it; returns the entries appended.
    @discardableResult
    public func anchorLatest() async throws -> [LedgerEntry] {
        guard let latest = try await log.latestCheckpoint(), latest.size > 0 else { return [] }
        let known = try await lastAnchored()
        var appended: [LedgerEntry] = []
        var failures: [String] = []
        for target in targets {
            let last = known[target] ?? 0
            guard latest.size > last, try await log.containsEntry(from: last, to: latest.size, notOfTypes: EventType.evidence) else { continue }
            do {
                appended.append(try await anchor(latest, in: target))
                anchored.withLock { $0?[target] = latest.size }
            } catch {
                failures.append("\(target): \(error)")
            }
        }
        if !failures.isEmpty { throw Failure(description: failures.joined(separator: "; ")) }
        return appended
    }

    func lastAnchored() async throws -> [String: Int64] {
        if let known = anchored.withLock({ $0 }) { return known }
        var found: [String: Int64] = [:]
        var before = Int64.max
        // The latest anchor of each target, newest first, over the recent anchors.
        for _ in 0..<10 {
            let entries = try await log.evidenceEntries(before: before, limit: 200)
            for e in entries where e.type == EventType.anchorRecorded {
                guard let target = e.body["target"]?.stringValue, let size = e.body["size"]?.numberValue.flatMap({ Int64(exactly: $0) }) else { continue }
                found[target] = max(found[target] ?? 0, size)
            }
            guard entries.count == 200, let oldest = entries.last else { break }
            before = oldest.index
        }
        anchored.withLock { $0 = found }
        return found
    }

    /// Stamps `checkpoint` in `target`, verifies the receipt, records it.
    public func anchor(_ checkpoint: StoredCheckpoint, in target: String) async throws -> LedgerEntry {
        let subject = Subject.checkpoint(checkpoint.size)
        if let existing = try await log.entry(subject: subject, type: EventType.anchorRecorded, idempotencyKey: "anchor:\(target)") { return existing }
        let hash = AnchorReceipt.anchoredHash(note: checkpoint.note)
        var headers = [("Content-Type", "application/json")]
        if let apiKey { headers.append(("Authorization", "Bearer \(apiKey)")) }
        let reply = try await OutboundHTTP.send(
            "POST", target + "/api/stamp-hash", body: Array("{\"certificateHash\":\"\(hash)\"}".utf8), headers: headers, timeout: timeout)
        guard reply.status == 200 || reply.status == 201 else {
            throw Failure(description: "the node answered HTTP \(reply.status): \(String(decoding: reply.body.prefix(200), as: UTF8.self))")
        }
        let manifestReply = try await OutboundHTTP.send("GET", target + "/.well-known/nexart-node.json", body: nil, headers: [], timeout: timeout)
        guard manifestReply.status == 200, let manifestJSON = try? JSONParser.parse(manifestReply.body),
            let manifest = try? NodeKeyManifest(manifestJSON)
        else { throw Failure(description: "the node's key manifest could not be read (HTTP \(manifestReply.status))") }
        let verified: AnchorReceipt.Verified
        do {
            verified = try AnchorReceipt.verify(reply: reply.body, hash: hash, manifest: manifest)
        } catch {
            throw Failure(description: "the node's reply does not verify: \(error)")
        }
        var body = JSONObject()
        body["target"] = .string(JSONString(target))
        body["kind"] = "stamp-hash"
        body["size"] = .number(Double(checkpoint.size))
        body["rootHash"] = .string(JSONString(Base64.encode(checkpoint.rootHash)))
        body["anchoredHash"] = .string(JSONString(hash))
        body["kid"] = .string(JSONString(verified.kid))
        body["publicKey"] = .string(JSONString(Base64.encodeURL(verified.publicKey)))
        body["attestedAt"] = verified.attestedAt.map { .string(JSONString($0)) } ?? .null
        body["attestationId"] = verified.attestationId.map { .string(JSONString($0)) } ?? .null
        body["replySha256"] = .string(JSONString(Hex.encode(ProtocolHash.sha256(reply.body))))
        let result = try await log.append(AppendRequest(
            subject: subject, type: EventType.anchorRecorded, body: .object(body), payload: reply.body, idempotencyKey: "anchor:\(target)"))
        return result.entry
    }

    public func service(interval: Duration, logger: Logger) -> PeriodicService {
        PeriodicService(every: interval, logger: logger, what: "anchor the latest checkpoint in other logs", startsAfterInterval: true) {
            for entry in try await self.anchorLatest() {
                logger.notice("checkpoint anchored", metadata: ["ledger.index": "\(entry.index)", "ledger.target": "\(entry.body["target"]?.stringValue ?? "")"])
            }
        }
    }
}
