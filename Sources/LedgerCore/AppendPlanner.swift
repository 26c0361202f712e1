import CERKit

/// A request to append one event.
public struct AppendRequest: Sendable, Equatable {
    public var subject: String
    public var type: String
    public var account: String?
    public var body: JSONValue
    /// Payload bytes stored beside the entry (deletable later); only their salted digest is in the leaf.
    public var payload: [UInt8]?
    /// Retries with the same key (per subject and type) return the original entry.
    public var idempotencyKey: String?
    /// When set, the append succeeds only if the subject has exactly this many entries.
    public var expectedSubjectVersion: Int64?

    public init(
        subject: String, type: String, account: String? = nil, body: JSONValue = .object(JSONObject()), payload: [UInt8]? = nil,
        idempotencyKey: String? = nil, expectedSubjectVersion: Int64? = nil
    ) {
        self.subject = subject
        self.type = type
        self.account = account
        self.body = body
        self.payload = payload
        self.idempotencyKey = idempotencyKey
        self.expectedSubjectVersion = expectedSubjectVersion
    }

    /// Top-level body members that would carry raw execution content; the ledger refuses them.
    public static let forbiddenBodyKeys: Set<String> = ["prompt", "input", "output"]

    /// Why the request cannot be appended as given, or nil.
    public func validationProblem() -> String? {
        if subject.isEmpty || subject.utf8.count > 512 { return "subject must be 1 to 512 bytes" }
        if !subject.contains(":") { return "subject must have a kind prefix such as cer:, run:, project:, key: or account:" }
        if type.isEmpty || type.utf8.count > 128 { return "type must be 1 to 128 bytes" }
        if let key = idempotencyKey, key.isEmpty || key.utf8.count > 256 { return "idempotency key must be 1 to 256 bytes" }
        guard let object = body.objectValue else { return "body must be a JSON object" }
        if let raw = object.keys.first(where: Self.forbiddenBodyKeys.contains) {
            return "body must not carry raw execution content (\(raw)); store it as a payload"
        }
        if let expected = expectedSubjectVersion, expected < 0 { return "expected subject version must not be negative" }
        return nil
    }
}

/// The last entry of a subject, as the sequencer reads it under the head lock.
public struct SubjectHead: Sendable, Equatable {
    public var count: Int64
    public var lastLeaf: [UInt8]?
    public init(count: Int64, lastLeaf: [UInt8]?) {
        self.count = count
        self.lastLeaf = lastLeaf
    }
}

/// What became of one request in a batch.
public enum AppendOutcome: Sendable, Equatable {
    /// A new entry to insert.
    case appended(LedgerEntry)
    /// An idempotent retry: the entry that already holds this key.
    case existing(LedgerEntry)
    /// The subject's version was not the expected one.
    case versionConflict(subject: String, expected: Int64, actual: Int64)
    /// The request is malformed.
    case rejected(String)
}

/// Decides a batch of appends from the log's state (pure; the sequencer does the I/O).
public enum AppendPlanner {
    /// Key of the idempotency index.
    public struct IdempotencyKey: Hashable, Sendable {
        public var subject: String
        public var type: String
        public var key: String
        public init(subject: String, type: String, key: String) {
            self.subject = subject
            self.type = type
            self.key = key
        }
    }

    /// Plans `requests` in order: dense indexes from `size`, subject chains from `subjects`, retries
    /// answered from `existing`. `payloadDigests[i]` is the salted digest of request i's payload.
    public static func plan(
        requests: [AppendRequest], size: Int64, subjects: [String: SubjectHead], existing: [IdempotencyKey: LedgerEntry],
        payloadDigests: [[UInt8]?], recordedAt: Int64
    ) -> (outcomes: [AppendOutcome], newSize: Int64) {
        var next = size
        var heads = subjects
        var seen = existing
        var outcomes: [AppendOutcome] = []
        outcomes.reserveCapacity(requests.count)
        for (i, request) in requests.enumerated() {
            if let problem = request.validationProblem() {
                outcomes.append(.rejected(problem))
                continue
            }
            let idKey = request.idempotencyKey.map { IdempotencyKey(subject: request.subject, type: request.type, key: $0) }
            if let idKey, let entry = seen[idKey] {
                outcomes.append(.existing(entry))
                continue
            }
            let head = heads[request.subject] ?? SubjectHead(count: 0, lastLeaf: nil)
            if let expected = request.expectedSubjectVersion, expected != head.count {
                outcomes.append(.versionConflict(subject: request.subject, expected: expected, actual: head.count))
                continue
            }
            do {
                let entry = try LedgerEntry(
                    index: next, subject: request.subject, subjectIndex: head.count, type: request.type, account: request.account,
                    recordedAt: recordedAt, body: request.body, payloadDigest: i < payloadDigests.count ? payloadDigests[i] : nil,
                    prevSubjectLeaf: head.lastLeaf, idempotencyKey: request.idempotencyKey)
                next += 1
                heads[request.subject] = SubjectHead(count: head.count + 1, lastLeaf: entry.leafHash)
                if let idKey { seen[idKey] = entry }
                outcomes.append(.appended(entry))
            } catch {
                outcomes.append(.rejected("body has no canonical form: \(error.message)"))
            }
        }
        return (outcomes, next)
    }
}
