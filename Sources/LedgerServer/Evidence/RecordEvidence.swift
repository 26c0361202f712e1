import CERKit
import LedgerCore
import LedgerStore

/// The evidence about one attested record that does not rest on the node's own database: RFC 3161
/// tokens over its certificate hash (per record), and, through the first checkpoints that cover its
/// attestation, the checkpoint's RFC 3161 timestamp, its cross-log anchors and its witness cosignatures,
/// each with the inclusion proof that links the record's entry to that checkpoint. `trustedTimestamps[]`
/// and `anchors[]` as NexArt's resolver names them.
enum RecordEvidence {
    /// How many checkpoints after the record are searched for evidence.
    static let checkpointWindow = 64

    static func collect(log: PostgresEventLog, attestation entry: LedgerEntry, subjectEntries: [LedgerEntry]) async throws
        -> (trustedTimestamps: [JSONValue], anchors: [JSONValue])
    {
        func s(_ v: String?) -> JSONValue { v.map { .string(JSONString($0)) } ?? .null }
        var timestamps: [JSONValue] = []
        var anchors: [JSONValue] = []
        // Per record: the token given with the attestation (NexArt's shape), and tokens that came later.
        var given: String? = nil
        if var stamp = entry.body["timestamp"]?.objectValue {
            given = stamp["token"]?.stringValue.flatMap(Base64.decode).map { Hex.encode(ProtocolHash.sha256($0)) }
            stamp["scope"] = "record"
            stamp["ledgerIndex"] = .number(Double(entry.index))
            timestamps.append(.object(stamp))
        }
        for late in subjectEntries where late.type == EventType.cerTimestamped && late.account == entry.account && late.index > entry.index {
            // The token given with the attestation is also recorded as an entry: listed once.
            if let given, late.body["tokenSha256"]?.stringValue == given { continue }
            let token = try await late.payloadDigest.asyncMap { try await log.payload(digest: $0) } ?? nil
            timestamps.append([
                "type": "rfc3161", "status": "ok", "scope": "record", "provider": late.body["provider"] ?? .null, "tsa": late.body["tsa"] ?? .null,
                "genTime": late.body["genTime"] ?? .null, "serialNumber": late.body["serialNumber"] ?? .null,
                "token": s(token.map(Base64.encode)), "ledgerIndex": .number(Double(late.index)),
            ])
        }
        // Through the checkpoints that cover the attestation: the first with each kind of evidence.
        let checkpoints = try await log.checkpoints(after: entry.index, limit: checkpointWindow)
        guard !checkpoints.isEmpty else { return (timestamps, anchors) }
        let sizes = checkpoints.map(\.size)
        let evidence = try await log.evidenceEntries(checkpointSizes: sizes)
        let cosignatures = try await log.cosignatures(sizes: sizes)
        let bySize = Dictionary(grouping: evidence) { e in e.body["size"]?.numberValue.flatMap { Int64(exactly: $0) } ?? -1 }
        var proofs: [Int64: [[UInt8]]] = [:]
        func link(_ c: StoredCheckpoint) async throws -> JSONObject {
            if proofs[c.size] == nil { proofs[c.size] = try await log.inclusionProofs(indexes: [entry.index], size: c.size)[entry.index] ?? [] }
            return [
                // The note as the node signed it (what timestamps and anchors are over), and the witnesses'
                // cosignature lines, which append to it.
                "checkpoint": [
                    "size": .number(Double(c.size)), "note": s(String(decoding: c.note, as: UTF8.self)),
                    "cosignatures": .array((cosignatures[c.size] ?? []).map { s($0.line) }),
                ],
                "inclusionProof": [
                    "leafIndex": .number(Double(entry.index)), "treeSize": .number(Double(c.size)),
                    "leafHash": s(Base64.encode(entry.leafHash)), "proof": .array((proofs[c.size] ?? []).map { s(Base64.encode($0)) }),
                ],
            ]
        }
        if let c = checkpoints.first(where: { bySize[$0.size]?.contains { $0.type == EventType.checkpointTimestamped } == true }),
            let stamp = bySize[c.size]?.first(where: { $0.type == EventType.checkpointTimestamped })
        {
            let token = try await stamp.payloadDigest.asyncMap { try await log.payload(digest: $0) } ?? nil
            var o = try await link(c)
            o["type"] = "rfc3161"
            o["status"] = "ok"
            o["scope"] = "checkpoint"
            o["tsa"] = stamp.body["tsa"] ?? .null
            o["genTime"] = stamp.body["genTime"] ?? .null
            o["serialNumber"] = stamp.body["serialNumber"] ?? .null
            o["imprint"] = "SHA-256 of checkpoint.note"
            o["token"] = s(token.map(Base64.encode))
            o["ledgerIndex"] = .number(Double(stamp.index))
            timestamps.append(.object(o))
        }
        var anchoredTargets: Set<String> = []
        for c in checkpoints {
            for a in bySize[c.size] ?? [] where a.type == EventType.anchorRecorded {
                let target = a.body["target"]?.stringValue ?? ""
                guard !anchoredTargets.contains(target) else { continue }
                anchoredTargets.insert(target)
                let reply = try await a.payloadDigest.asyncMap { try await log.payload(digest: $0) } ?? nil
                var o = try await link(c)
                o["type"] = "stamp-hash"
                o["target"] = s(target)
                o["anchoredHash"] = a.body["anchoredHash"] ?? .null
                o["kid"] = a.body["kid"] ?? .null
                o["publicKey"] = a.body["publicKey"] ?? .null
                o["attestedAt"] = a.body["attestedAt"] ?? .null
                o["reply"] = reply.flatMap { try? JSONParser.parse($0) } ?? .null
                o["ledgerIndex"] = .number(Double(a.index))
                anchors.append(.object(o))
            }
        }
        if let c = checkpoints.first(where: { !(cosignatures[$0.size] ?? []).isEmpty }) {
            var o = try await link(c)
            o["type"] = "witness-cosignatures"
            o["witnesses"] = .array((cosignatures[c.size] ?? []).map { s($0.witness) })
            anchors.append(.object(o))
        }
        return (timestamps, anchors)
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
