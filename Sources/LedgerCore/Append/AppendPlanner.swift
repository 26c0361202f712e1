public import CERKit

/// Computes an entry's body once its index and time are known (for example a receipt that carries
/// the ledger index); runs inside the batch, so it must be quick and must not block.
public struct BodyFinalizer: Sendable {
    public let make: @Sendable (_ index: Int64, _ recordedAt: Int64) throws -> JSONValue
    public init(_ make: @escaping @Sendable (_ index: Int64, _ recordedAt: Int64) throws -> JSONValue) { self.make = make }
}

/// One unit of metered usage an append consumes: the sequencer admits it only while the account has
/// quota left in `period` and the credential is still active, in the same transaction as the append.
public struct Charge: Sendable, Equatable, Hashable {
    public var account: String
    /// The API key the request was made with (a revoked key is refused at append time).
    public var credentialId: Int64
    /// First day of the billing month, `YYYY-MM-01`.
    public var period: String
    public init(account: String, credentialId: Int64, period: String) {
        self.account = account
        self.credentialId = credentialId
        self.period = period
    }
}

/// A unique claim made with an append: within `scope`, `key` belongs to the first `value` appended
/// with it; a later append claiming it for another value is refused (the sequencer checks under the
/// head lock and records the claim in the same transaction).
public struct Claim: Sendable, Equatable, Hashable {
    public var scope: String
    public var key: String
    public var value: String
    public init(scope: String, key: String, value: String) {
        self.scope = scope
        self.key = key
        self.value = value
    }
}

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
    /// When set, replaces `body` with a body computed from the assigned index and time.
    public var finalizer: BodyFinalizer?
    /// Metered usage this append consumes, if any.
    public var charge: Charge?
    /// Unique claims this append makes (an executionId, an Idempotency-Key), if any.
    public var claims: [Claim]
    /// The first claim (most appends make at most one).
    public var claim: Claim? {
        get { claims.first }
        set { claims = newValue.map { [$0] } ?? [] }
    }

    public init(
        subject: String, type: String, account: String? = nil, body: JSONValue = .object(JSONObject()), payload: [UInt8]? = nil,
        idempotencyKey: String? = nil, expectedSubjectVersion: Int64? = nil, finalizer: BodyFinalizer? = nil, charge: Charge? = nil,
        claim: Claim? = nil
    ) {
        self.subject = subject
        self.type = type
        self.account = account
        self.body = body
        self.payload = payload
        self.idempotencyKey = idempotencyKey
        self.expectedSubjectVersion = expectedSubjectVersion
        self.finalizer = finalizer
        self.charge = charge
        self.claims = claim.map { [$0] } ?? []
    }

    public static func == (a: AppendRequest, b: AppendRequest) -> Bool {
        a.subject == b.subject && a.type == b.type && a.account == b.account && a.body == b.body && a.payload == b.payload
            && a.idempotencyKey == b.idempotencyKey && a.expectedSubjectVersion == b.expectedSubjectVersion
            && (a.finalizer == nil) == (b.finalizer == nil) && a.charge == b.charge
            && a.claims == b.claims
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
    /// Refused: malformed, not admitted, a claim conflict, or refused with its group.
    case rejected(AppendRefusal)
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
    /// `groupSizes` splits the requests into consecutive all-or-nothing groups (default: one each):
    /// when one member is refused, no member of its group is appended. `rejections[i]`, when set,
    /// refuses request i before anything else (admission decided by the caller).
    public static func plan(
        requests: [AppendRequest], size: Int64, subjects: [String: SubjectHead], existing: [IdempotencyKey: LedgerEntry],
        payloadDigests: [[UInt8]?], recordedAt: Int64, groupSizes: [Int]? = nil, rejections: [AppendRefusal?] = []
    ) -> (outcomes: [AppendOutcome], newSize: Int64) {
        var next = size
        var heads = subjects
        var seen = existing
        var outcomes: [AppendOutcome] = []
        outcomes.reserveCapacity(requests.count)
        var start = 0
        for groupSize in groupSizes ?? Array(repeating: 1, count: requests.count) {
            let saved = (next, heads, seen)
            var failed = false
            for i in start..<(start + groupSize) {
                let outcome: AppendOutcome
                if i < rejections.count, let reason = rejections[i] {
                    outcome = .rejected(reason)
                } else {
                    outcome = planOne(
                        requests[i], payloadDigest: i < payloadDigests.count ? payloadDigests[i] : nil, recordedAt: recordedAt,
                        next: &next, heads: &heads, seen: &seen)
                }
                switch outcome {
                case .appended, .existing: break
                case .versionConflict, .rejected: failed = true
                }
                outcomes.append(outcome)
            }
            if failed && groupSize > 1 {
                (next, heads, seen) = saved
                for i in start..<(start + groupSize) {
                    switch outcomes[i] {
                    case .appended, .existing: outcomes[i] = .rejected(.refusedWithGroup)
                    case .versionConflict, .rejected: break
                    }
                }
            }
            start += groupSize
        }
        return (outcomes, next)
    }

    private static func planOne(
        _ request: AppendRequest, payloadDigest: [UInt8]?, recordedAt: Int64, next: inout Int64, heads: inout [String: SubjectHead],
        seen: inout [IdempotencyKey: LedgerEntry]
    ) -> AppendOutcome {
        if let problem = request.validationProblem() { return .rejected(.invalid(problem)) }
        let idKey = request.idempotencyKey.map { IdempotencyKey(subject: request.subject, type: request.type, key: $0) }
        if let idKey, let entry = seen[idKey] { return .existing(entry) }
        let head = heads[request.subject] ?? SubjectHead(count: 0, lastLeaf: nil)
        if let expected = request.expectedSubjectVersion, expected != head.count {
            return .versionConflict(subject: request.subject, expected: expected, actual: head.count)
        }
        var body = request.body
        if let finalizer = request.finalizer {
            do {
                body = try finalizer.make(next, recordedAt)
            } catch {
                return .rejected(.invalid("the entry's body could not be completed: \(error)"))
            }
            var checked = request
            checked.body = body
            if let problem = checked.validationProblem() { return .rejected(.invalid(problem)) }
        }
        do {
            let entry = try LedgerEntry(
                index: next, subject: request.subject, subjectIndex: head.count, type: request.type, account: request.account,
                recordedAt: recordedAt, body: body, payloadDigest: payloadDigest, prevSubjectLeaf: head.lastLeaf,
                idempotencyKey: request.idempotencyKey)
            next += 1
            heads[request.subject] = SubjectHead(count: head.count + 1, lastLeaf: entry.leafHash)
            if let idKey { seen[idKey] = entry }
            return .appended(entry)
        } catch {
            return .rejected(.invalid("body has no canonical form: \(error.message)"))
        }
    }
}
