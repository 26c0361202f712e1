public import CERKit

/// One event in the ledger: a dense global index (the Merkle leaf index), its place in its subject's
/// chain, and the leaf hash of its canonical bytes.
public struct LedgerEntry: Sendable, Equatable {
    /// Version of the entry's canonical form (part of the hashed bytes).
    public static let formatVersion = 1

    public var index: Int64
    /// `cer:<hash>`, `run:<id>`, `project:<hash>`, `key:<kid>`, `account:<id>`, …
    public var subject: String
    /// Position within the subject (0-based, dense).
    public var subjectIndex: Int64
    public var type: String
    public var account: String?
    /// When the ledger recorded it, epoch milliseconds.
    public var recordedAt: Int64
    /// Metadata (a JSON object; never raw prompt/input/output).
    public var body: JSONValue
    /// Salted SHA-256 of a stored payload, when the event has one.
    public var payloadDigest: [UInt8]?
    /// Leaf hash of the subject's previous entry (nil for its first).
    public var prevSubjectLeaf: [UInt8]?
    public var idempotencyKey: String?
    public var leafHash: [UInt8]
    /// The body's canonical bytes (nexart-v1), exactly as they are stored and hashed.
    public private(set) var canonicalBody: [UInt8]

    /// Builds an entry and computes its leaf hash.
    public init(
        index: Int64, subject: String, subjectIndex: Int64, type: String, account: String?, recordedAt: Int64, body: JSONValue,
        payloadDigest: [UInt8]?, prevSubjectLeaf: [UInt8]?, idempotencyKey: String?
    ) throws(CanonicalizationError) {
        self.init(
            uncheckedIndex: index, subject: subject, subjectIndex: subjectIndex, type: type, account: account, recordedAt: recordedAt,
            body: body, payloadDigest: payloadDigest, prevSubjectLeaf: prevSubjectLeaf, idempotencyKey: idempotencyKey)
        self.canonicalBody = try CanonicalJSON.encode(body, profile: .nexartV1)
        self.leafHash = Merkle.leafHash(assembledBytes())
    }

    /// An entry as stored, with its stored leaf hash (audits recompute and compare it). The body's
    /// canonical bytes are recomputed from `body`.
    public static func unchecked(
        index: Int64, subject: String, subjectIndex: Int64, type: String, account: String?, recordedAt: Int64, body: JSONValue,
        payloadDigest: [UInt8]?, prevSubjectLeaf: [UInt8]?, idempotencyKey: String?, leafHash: [UInt8]
    ) -> LedgerEntry {
        var e = LedgerEntry(
            uncheckedIndex: index, subject: subject, subjectIndex: subjectIndex, type: type, account: account, recordedAt: recordedAt,
            body: body, payloadDigest: payloadDigest, prevSubjectLeaf: prevSubjectLeaf, idempotencyKey: idempotencyKey)
        e.canonicalBody = (try? CanonicalJSON.encode(body, profile: .nexartV1)) ?? []
        e.leafHash = leafHash
        return e
    }

    private init(
        uncheckedIndex index: Int64, subject: String, subjectIndex: Int64, type: String, account: String?, recordedAt: Int64,
        body: JSONValue, payloadDigest: [UInt8]?, prevSubjectLeaf: [UInt8]?, idempotencyKey: String?
    ) {
        self.index = index
        self.subject = subject
        self.subjectIndex = subjectIndex
        self.type = type
        self.account = account
        self.recordedAt = recordedAt
        self.body = body
        self.payloadDigest = payloadDigest
        self.prevSubjectLeaf = prevSubjectLeaf
        self.idempotencyKey = idempotencyKey
        self.leafHash = []
        self.canonicalBody = []
    }

    /// The exact bytes the leaf hash covers: canonical JSON (nexart-v1) of
    /// `{v, index, subject, subjectIndex, type, account, recordedAt, body, payloadDigest, prevSubjectLeaf, idempotencyKey}`
    /// with digests as lowercase hex (or null) and `recordedAt` as RFC 3339 with milliseconds.
    public func canonicalBytes() throws(CanonicalizationError) -> [UInt8] {
        var copy = self
        copy.canonicalBody = try CanonicalJSON.encode(body, profile: .nexartV1)
        return copy.assembledBytes()
    }

    /// The same bytes as `canonicalBytes()`, assembled around the already canonical body: the members
    /// are written in their canonical (sorted) order, each value by the canonical encoder.
    func assembledBytes() -> [UInt8] {
        func value(_ v: JSONValue) -> [UInt8] { (try? CanonicalJSON.encode(v, profile: .nexartV1)) ?? Array("null".utf8) }
        func s(_ v: String?) -> JSONValue { v.map { .string(JSONString($0)) } ?? .null }
        var out: [UInt8] = []
        out.reserveCapacity(canonicalBody.count + 512)
        func member(_ key: String, _ bytes: [UInt8], first: Bool = false) {
            out.append(first ? 0x7B : 0x2C)
            out.append(0x22)
            out.append(contentsOf: key.utf8)
            out.append(0x22)
            out.append(0x3A)
            out.append(contentsOf: bytes)
        }
        member("account", value(s(account)), first: true)
        member("body", canonicalBody)
        member("idempotencyKey", value(s(idempotencyKey)))
        member("index", value(.number(Double(index))))
        member("payloadDigest", value(s(payloadDigest.map(Hex.encode))))
        member("prevSubjectLeaf", value(s(prevSubjectLeaf.map(Hex.encode))))
        member("recordedAt", value(s(Timestamp.iso8601(milliseconds: recordedAt))))
        member("subject", value(s(subject)))
        member("subjectIndex", value(.number(Double(subjectIndex))))
        member("type", value(s(type)))
        member("v", value(.number(Double(Self.formatVersion))))
        out.append(0x7D)
        return out
    }

    /// The reference form of `canonicalBytes()`: the whole entry object through the canonical encoder.
    func referenceCanonicalBytes() throws(CanonicalizationError) -> [UInt8] {
        func s(_ v: String?) -> JSONValue { v.map { .string(JSONString($0)) } ?? .null }
        var o = JSONObject()
        o["v"] = .number(Double(Self.formatVersion))
        o["index"] = .number(Double(index))
        o["subject"] = s(subject)
        o["subjectIndex"] = .number(Double(subjectIndex))
        o["type"] = s(type)
        o["account"] = s(account)
        o["recordedAt"] = s(Timestamp.iso8601(milliseconds: recordedAt))
        o["body"] = body
        o["payloadDigest"] = s(payloadDigest.map(Hex.encode))
        o["prevSubjectLeaf"] = s(prevSubjectLeaf.map(Hex.encode))
        o["idempotencyKey"] = s(idempotencyKey)
        return try CanonicalJSON.encode(.object(o), profile: .nexartV1)
    }

    /// True when the stored leaf hash is the hash of the entry's canonical bytes.
    public var isLeafHashConsistent: Bool {
        guard let bytes = try? canonicalBytes() else { return false }
        return Merkle.leafHash(bytes) == leafHash
    }
}
