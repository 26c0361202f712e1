public import CERKit
import Foundation
public import LedgerCore
public import LedgerProjections
public import LedgerStore
public import Logging
import Synchronization

/// The retention worker: answers deletion requests in bounded batches. For each pending request (from the
/// certificates read model) it either erases the record's payloads, or defers (a legal hold, the minimum
/// floor) and says so in the log. Erasure appends first, deletes after: one all-or-nothing group of
/// `payload.purged` entries (one per payload, naming the request that authorised it), the record's
/// `cer.lifecycle_changed` to `deleted` and `deletion.completed`, each under an idempotency key; then the
/// payload rows (bytes and salt) are deleted. A kill between the two is reconciled at the next run (purge
/// entries whose payload is still there), and servers sharing the work append each entry once.
public final class RetentionWorker: Sendable {
    let log: PostgresEventLog
    let projections: ProjectionRunner
    public let floorDays: Int
    let batch: Int
    let metrics: ServerMetrics?
    /// Rewrites closed partitions that held erased payloads (the owner's connection), when given.
    let maintenance: PayloadMaintenance?
    /// Most pages of candidates each policy's pass reads in one run (the next run goes on from there).
    let policyPages: Int
    private let totals = Mutex((erased: 0, deferred: 0, denied: 0, reconciled: 0, archived: 0, reviews: 0))
    /// Where each policy's pass through its candidates stopped (by policy entry), so that a run that stops
    /// after `maxPages` pages goes on from there next time instead of starting again.
    private let cursors = Mutex([Int64: Int64]())

    public init(
        log: PostgresEventLog, projections: ProjectionRunner, floorDays: Int, batch: Int = 100, metrics: ServerMetrics? = nil,
        maintenance: PayloadMaintenance? = nil, policyPages: Int = 20
    ) {
        self.maintenance = maintenance
        self.policyPages = policyPages
        self.log = log
        self.projections = projections
        self.floorDays = floorDays
        self.batch = batch
        self.metrics = metrics
    }

    public struct Report: Sendable, Equatable {
        /// Purged payloads whose bytes were still stored and are now deleted.
        public var reconciled = 0
        /// Records erased (requests completed).
        public var erased = 0
        /// Payloads deleted for them.
        public var purged = 0
        /// Requests deferred (a new `deletion.deferred` entry).
        public var deferred = 0
        /// Requests denied by a locked retention policy (a new `deletion.denied` entry).
        public var denied = 0
        /// Requests still pending after this run.
        public var pending = 0
        /// Payload partitions rewritten so that erased bytes left the files, and those still open.
        public var rewritten: [String] = []
        public var waiting: [String] = []
        /// What expired policies did.
        public var expiry = Expiry()
        /// Why the partition maintenance failed this run, if it did.
        public var maintenanceProblem: String?
    }

    /// One run at `now` (epoch ms): reconcile, then the oldest pending requests, at most `batch` of each.
    public func run(now: Int64) async throws -> Report {
        var report = Report()
        report.reconciled = try await reconcile()
        // The read models the work is found from (records, and projects for the project scopes), at the head.
        try await projections.catchUp(only: "certificates", wait: true)
        try await projections.catchUp(only: "projects", wait: true)
        let batch = self.batch
        let due = try await log.pool.withConnection { c in
            try c.query("""
                SELECT certificate_hash, account, deletion_requested_idx FROM proj_certificate_records
                WHERE deletion_requested_idx IS NOT NULL ORDER BY deletion_requested_idx LIMIT \(batch)
                """).rows.map { r throws(LedgerStoreError) in (try r.text(0), try r.text(1), try r.int64(2)) }
        }
        // In chunks: the holds as they are at the chunk's start (a hold applied during a long run counts from
        // the next chunk), its records answered concurrently (the writer commits their groups together),
        // then their payloads deleted in one statement.
        for chunk in stride(from: 0, to: due.count, by: Self.chunk).map({ Array(due[$0..<min($0 + Self.chunk, due.count)]) }) {
            let appendedBefore = log.statistics.appended
            let started = ContinuousClock.now
            let book = try await LifecycleService(log: log).holds()
            let policies = try await LifecycleService(log: log).policies()
            let outcomes = try await withThrowingTaskGroup(of: Outcome.self) { group in
                var next = chunk.makeIterator()
                var running = 0
                var results: [Outcome] = []
                func add() {
                    guard let (hash, account, request) = next.next() else { return }
                    running += 1
                    group.addTask { try await self.answer(hash: hash, account: account, request: request, holds: book, policies: policies, now: now) }
                }
                for _ in 0..<Self.concurrency { add() }
                while running > 0, let outcome = try await group.next() {
                    running -= 1
                    results.append(outcome)
                    add()
                }
                return results
            }
            var digests: [[UInt8]] = []
            for outcome in outcomes {
                switch outcome {
                case .erased(let d):
                    report.erased += 1
                    report.purged += d.count
                    digests += d
                case .deferred(let isNew): if isNew { report.deferred += 1 }
                case .denied(let isNew): if isNew { report.denied += 1 }
                case .nothing: break
                }
            }
            try await log.erasePayloads(digests: digests)
            // Background work yields to appends: when others appended through this process's writer during the
            // chunk, the worker rests long enough to take at most `backgroundShare` of the time.
            let own = outcomes.reduce(0) { n, o in
                switch o {
                case .erased(let d): return n + d.count + 2
                case .deferred(let isNew), .denied(let isNew): return n + (isNew ? 1 : 0)
                case .nothing: return n
                }
            }
            if log.statistics.appended - appendedBefore > own, Self.backgroundShare < 1 {
                try await Task.sleep(for: (ContinuousClock.now - started) * ((1 - Self.backgroundShare) / Self.backgroundShare))
            }
        }
        report.expiry = try await expire(now: now, maxPages: policyPages)
        if let maintenance {
            // The rewrite needs the login role (it owns the tables); its failure leaves the erasures done and is reported.
            do {
                let done = try await log.pool.withConnection { _ in try maintenance.run(now: now) }
                report.rewritten = done.rewritten
                report.waiting = done.waiting
            } catch {
                report.maintenanceProblem = "\(error)"
            }
        }
        try await projections.catchUp(only: "certificates", wait: true)
        report.pending = try await log.pool.withConnection { c in
            Int(try c.query("SELECT count(*) FROM proj_certificate_records WHERE deletion_requested_idx IS NOT NULL").single("pending").int64(0))
        }
        let t = totals.withLock { t in
            t.erased += report.erased + report.expiry.erased
            t.deferred += report.deferred + report.expiry.deferred
            t.denied += report.denied
            t.archived += report.expiry.archived
            t.reviews += report.expiry.reviews
            t.reconciled += report.reconciled
            return t
        }
        metrics?.retention(
            pending: report.pending, erased: t.erased, deferred: t.deferred, denied: t.denied, reconciled: t.reconciled, archived: t.archived,
            reviews: t.reviews)
        return report
    }

    /// Records per chunk, and answered at once within one.
    static let chunk = 256
    static let concurrency = 16
    /// The share of the time the worker takes while other appends flow through the same writer.
    static let backgroundShare = 0.1

    enum Outcome: Sendable {
        /// Appended the purge group; the payloads to delete once the chunk's groups are in.
        case erased([[UInt8]])
        case deferred(isNew: Bool)
        case denied(isNew: Bool)
        case nothing
    }

    /// What authorises an erasure: a pending deletion request, or an expired retention policy.
    enum Authority: Sendable {
        case request(Int64)
        case policy(RetentionPolicy)

        var index: Int64 {
            switch self {
            case .request(let i): return i
            case .policy(let p): return p.index
            }
        }
        var type: String {
            switch self {
            case .request: return EventType.deletionRequested
            case .policy: return EventType.retentionPolicySet
            }
        }
        /// The idempotency key's stem, unique per authority and account.
        func key(_ account: String) -> String {
            switch self {
            case .request(let i): return "\(i)"
            case .policy(let p): return "policy\(p.index):\(account)"
            }
        }
    }

    func answer(hash: String, account: String, request: Int64, holds: HoldBook, policies: PolicyBook, now: Int64) async throws -> Outcome {
        try await erase(hash: hash, account: account, authority: .request(request), holds: holds, policies: policies, now: now)
    }

    /// What the record of `account` belongs to: its runs, application and surface from its entries, the
    /// account's registered projects that list it from the read models.
    func scope(hash: String, account: String, entries: [LedgerEntry]) async throws -> RecordScope {
        try await Self.scope(log: log, hash: hash, account: account, entries: entries)
    }

    static func scope(log: PostgresEventLog, hash: String, account: String, entries: [LedgerEntry]) async throws -> RecordScope {
        let projects = try await log.pool.withConnection { c in
            try c.query("""
                SELECT DISTINCT l.ref FROM proj_certificate_links l JOIN ledger_entries e ON e.idx = l.idx AND e.account = \(account)
                WHERE l.certificate_hash = \(hash) AND l.kind = 'project' ORDER BY l.ref
                """).rows.map { r throws(LedgerStoreError) in try r.text(0) }
        }
        return RecordScope.of(account: account, certificateHash: hash, entries: entries, projects: projects)
    }

    func erase(hash: String, account: String, authority: Authority, holds: HoldBook, policies: PolicyBook, now: Int64) async throws -> Outcome {
        let subject = Subject.certificate(hash)
        let entries = try await log.entries(subject: subject).entries
        guard let owned = AttestationService.fold(entries).first(where: { $0.entry.account == account }), let record = owned.record,
            record.lifecycle != .deleted
        else { return .nothing }
        if case .request(let request) = authority, record.deletionRequested != request { return .nothing }  // answered meanwhile
        let first = entries.first { $0.index == record.firstIndex }
        let scope = try await scope(hash: hash, account: account, entries: entries)
        let holding = holds.holding(scope)
        // A locked policy covering the record keeps it, whichever scope governs: a request is denied, and a
        // narrower policy's expiry waits for it (deferred).
        let locked = policies.lock(scope)
        var decision = ErasureDecision.decide(recordedAt: first?.recordedAt ?? now, now: now, floorDays: floorDays, holds: holding, policy: locked)
        if case .policy = authority, case .denied(let reason, let until) = decision { decision = .deferred(reason: reason, until: until) }
        if case .denied(let reason, let until) = decision, case .request(let request) = authority {
            var body = JSONObject()
            body["certificateHash"] = .string(JSONString(hash))
            body["request"] = .number(Double(request))
            body["reason"] = .string(JSONString(reason))
            body["policy"] = locked.map { .number(Double($0.index)) } ?? .null
            body["until"] = until.map { .string(JSONString(Timestamp.iso8601(milliseconds: $0))) } ?? .null
            let result = try await log.append(AppendRequest(
                subject: subject, type: EventType.deletionDenied, account: account, body: .object(body), idempotencyKey: "denied:\(request)"))
            if case .appended = result { return .denied(isNew: true) }
            return .denied(isNew: false)
        }
        if case .deferred(let reason, let until) = decision {
            let lockKeeps = locked.map { $0.mode == .locked && !$0.hasExpired(recordedAt: first?.recordedAt ?? now, now: now) } ?? false
            let kind = lockKeeps ? "locked:\(locked!.index)" : holding.first.map { "hold:\($0.holdId)" } ?? "floor"
            var body = JSONObject()
            body["certificateHash"] = .string(JSONString(hash))
            switch authority {
            case .request(let i): body["request"] = .number(Double(i))
            case .policy(let p): body["policy"] = .number(Double(p.index))
            }
            body["reason"] = .string(JSONString(reason))
            body["until"] = until.map { .string(JSONString(Timestamp.iso8601(milliseconds: $0))) } ?? .null
            let result = try await log.append(AppendRequest(
                subject: subject, type: EventType.deletionDeferred, account: account, body: .object(body),
                idempotencyKey: "deferred:\(authority.key(account)):\(kind)"))
            if case .appended = result { return .deferred(isNew: true) }
            return .deferred(isNew: false)
        }
        // Erase: the bundles the account's attestations of this record carry (timestamp tokens and other
        // evidence are over hashes and stay, so that they still verify).
        let payloads = entries.filter { $0.account == account && $0.payloadDigest != nil && $0.type != EventType.cerTimestamped }
        var group: [AppendRequest] = payloads.map { e in
            var body = JSONObject()
            body["certificateHash"] = .string(JSONString(hash))
            body["entryIndex"] = .number(Double(e.index))
            body["payloadDigest"] = .string(JSONString(Hex.encode(e.payloadDigest!)))
            body["authority"] = ["type": .string(JSONString(authority.type)), "index": .number(Double(authority.index))]
            body["floorDays"] = .number(Double(floorDays))
            return AppendRequest(subject: subject, type: EventType.payloadPurged, account: account, body: .object(body), idempotencyKey: "purge:\(e.index)")
        }
        var changed = JSONObject()
        changed["certificateHash"] = .string(JSONString(hash))
        changed["from"] = .string(JSONString(record.lifecycle.rawValue))
        changed["to"] = "deleted"
        changed["action"] = "delete"
        switch authority {
        case .request(let i): changed["reason"] = .string(JSONString("deletion request at entry \(i)"))
        case .policy(let p): changed["reason"] = .string(JSONString("retention policy at entry \(p.index) expired"))
        }
        changed["authority"] = ["type": .string(JSONString(authority.type)), "index": .number(Double(authority.index))]
        changed["actor"] = "retention-worker"
        group.append(AppendRequest(
            subject: subject, type: EventType.cerLifecycleChanged, account: account, body: .object(changed), idempotencyKey: "deleted:\(account)"))
        if case .request(let request) = authority {
            var completed = JSONObject()
            completed["certificateHash"] = .string(JSONString(hash))
            completed["request"] = .number(Double(request))
            completed["purgedEntries"] = .array(payloads.map { .number(Double($0.index)) })
            group.append(AppendRequest(
                subject: subject, type: EventType.deletionCompleted, account: account, body: .object(completed), idempotencyKey: "completed:\(request)"))
        }
        _ = try await log.append(group: group)
        return .erased(payloads.compactMap(\.payloadDigest))
    }

    // MARK: Expiry

    public struct Expiry: Sendable, Equatable {
        public var archived = 0
        public var erased = 0
        public var purged = 0
        public var deferred = 0
        public var reviews = 0
    }

    /// Applies every policy in force: records of its scope whose window has elapsed, and that no narrower
    /// policy takes, are archived, erased (holds and the floor still defer it) or flagged for review, once
    /// each. Pages through each policy's candidates (oldest first, `batch` at a time, at most `maxPages`
    /// pages a run, the next run going on where this one stopped).
    public func expire(now: Int64, maxPages: Int = 20) async throws -> Expiry {
        let book = try await LifecycleService(log: log).policies()
        var expiry = Expiry()
        for policy in book.all {
            guard let window = policy.windowDays else { continue }
            let cutoff = now - Int64(window) * 86_400_000
            // Records a narrower policy of the account takes are not this one's candidates.
            let narrower = book.narrower(than: policy)
            let takenProjects = narrower.compactMap(\.project), takenApps = narrower.compactMap(\.application)
            let takenSurfaces = narrower.compactMap(\.surface)
            let scope = policy.scopeName, target = policy.project ?? policy.application ?? policy.surface ?? ""
            let archiveKey = "expired:\(policy.index):\(policy.account)", reviewKey = "review:\(policy.index):\(policy.account)"
            var cursor = cursors.withLock { $0[policy.index] } ?? -1
            for _ in 0..<maxPages {
                let batch = self.batch, after = cursor, action = policy.action.rawValue
                let page = try await log.pool.withConnection { c in
                    try c.query("""
                        SELECT r.certificate_hash, r.first_idx, r.lifecycle, r.app_id, r.execution_surface,
                               ARRAY(SELECT l.ref FROM proj_certificate_links l JOIN ledger_entries p ON p.idx = l.idx AND p.account = r.account
                                     WHERE l.certificate_hash = r.certificate_hash AND l.kind = 'project')
                        FROM proj_certificate_records r JOIN ledger_entries e ON e.idx = r.first_idx
                        WHERE r.account = \(policy.account) AND r.lifecycle <> 'deleted' AND r.deletion_requested_idx IS NULL
                          AND e.recorded_at < to_timestamp(\(cutoff)::bigint / 1000.0) AND r.first_idx > \(after)
                          AND CASE \(scope)::text
                                WHEN 'project' THEN EXISTS (SELECT 1 FROM proj_certificate_links l
                                     JOIN ledger_entries p ON p.idx = l.idx AND p.account = r.account
                                     WHERE l.certificate_hash = r.certificate_hash AND l.kind = 'project' AND l.ref = \(target))
                                WHEN 'application' THEN r.app_id = \(target)
                                WHEN 'surface' THEN r.execution_surface = \(target)
                                ELSE true END
                          AND NOT coalesce(r.execution_surface, '') = ANY(\(textArray: takenSurfaces)::text[])
                          AND NOT coalesce(r.app_id, '') = ANY(\(textArray: takenApps)::text[])
                          AND NOT EXISTS (SELECT 1 FROM proj_certificate_links l
                               JOIN ledger_entries p ON p.idx = l.idx AND p.account = r.account
                               WHERE l.certificate_hash = r.certificate_hash AND l.kind = 'project' AND l.ref = ANY(\(textArray: takenProjects)::text[]))
                          AND (\(action)::text <> 'archive' OR (r.lifecycle = 'active' AND NOT EXISTS (SELECT 1 FROM ledger_entries x
                               WHERE x.subject = 'cer:' || r.certificate_hash AND x.type = 'cer.lifecycle_changed' AND x.idempotency_key = \(archiveKey))))
                          AND NOT EXISTS (SELECT 1 FROM ledger_entries x WHERE x.subject = 'cer:' || r.certificate_hash
                               AND x.type = 'retention.review_required' AND x.idempotency_key = \(reviewKey))
                        ORDER BY r.first_idx LIMIT \(batch)
                        """).rows.map { r throws(LedgerStoreError) -> (hash: String, first: Int64, lifecycle: String, scope: RecordScope) in
                        let projects = (r[5] ?? "{}").trimmingCharacters(in: CharacterSet(charactersIn: "{}")).split(separator: ",").map(String.init)
                        let hash = try r.text(0)
                        return (hash, try r.int64(1), try r.text(2),
                                RecordScope(account: policy.account, certificateHash: hash, projects: projects, application: r[3], surface: r[4]))
                    }
                }
                guard let last = page.last else {
                    cursor = -1
                    break
                }
                cursor = page.count < batch ? -1 : last.first
                let holds = try await LifecycleService(log: log).holds()
                var digests: [[UInt8]] = []
                for candidate in page {
                    let hash = candidate.hash
                    // The narrower scope wins; among several projects, the one that keeps records longest.
                    guard book.effective(candidate.scope)?.index == policy.index else { continue }
                    switch policy.action {
                    case .archive:
                        guard candidate.lifecycle == LifecycleState.active.rawValue else { continue }
                        if try await archive(hash: hash, account: policy.account, policy: policy) { expiry.archived += 1 }
                    case .delete:
                        switch try await erase(hash: hash, account: policy.account, authority: .policy(policy), holds: holds, policies: book, now: now) {
                        case .erased(let d):
                            expiry.erased += 1
                            expiry.purged += d.count
                            digests += d
                        case .deferred(let isNew): if isNew { expiry.deferred += 1 }
                        case .denied, .nothing: break
                        }
                    case .review, .exportThenDelete:
                        var body = JSONObject()
                        body["certificateHash"] = .string(JSONString(hash))
                        body["policy"] = .number(Double(policy.index))
                        body["action"] = .string(JSONString(policy.action.rawValue))
                        let result = try await log.append(AppendRequest(
                            subject: Subject.certificate(hash), type: EventType.retentionReviewRequired, account: policy.account, body: .object(body),
                            idempotencyKey: reviewKey))
                        if case .appended = result { expiry.reviews += 1 }
                    }
                }
                try await log.erasePayloads(digests: digests)
                if cursor == -1 { break }
            }
            cursors.withLock { $0[policy.index] = cursor }
        }
        return expiry
    }

    /// Archives an active record whose policy expired (once per policy).
    func archive(hash: String, account: String, policy: RetentionPolicy) async throws -> Bool {
        // Decided on the log as it is now, not on the read model: an owner may have hidden it meanwhile.
        let entries = try await log.entries(subject: Subject.certificate(hash)).entries
        guard AttestationService.fold(entries).first(where: { $0.entry.account == account })?.lifecycle == .active else { return false }
        var body = JSONObject()
        body["certificateHash"] = .string(JSONString(hash))
        body["from"] = "active"
        body["to"] = "archived"
        body["action"] = "archive"
        body["reason"] = .string(JSONString("retention policy at entry \(policy.index) expired"))
        body["authority"] = ["type": .string(JSONString(EventType.retentionPolicySet)), "index": .number(Double(policy.index))]
        body["actor"] = "retention-worker"
        var request = AppendRequest(
            subject: Subject.certificate(hash), type: EventType.cerLifecycleChanged, account: account, body: .object(body),
            idempotencyKey: "expired:\(policy.index):\(account)")
        request.expectedSubjectVersion = Int64(entries.count)
        do {
            if case .appended = try await log.append(request) { return true }
        } catch AppendRefusal.versionConflict {
            // The record changed since it was read: the next run decides again.
        }
        return false
    }

    /// Deletes the payloads of purge entries whose bytes are still stored (a kill between the append and
    /// the delete, or another server's unfinished run). Returns how many.
    public func reconcile() async throws -> Int {
        let batch = self.batch
        return try await log.pool.withConnection { c in
            Int(try c.query("""
                WITH d AS (
                    DELETE FROM ledger_payloads WHERE digest IN (
                        SELECT p.digest FROM ledger_entries e
                        JOIN ledger_payloads p ON p.digest = decode(e.body::jsonb->>'payloadDigest', 'hex')
                        WHERE e.type = 'payload.purged' LIMIT \(batch))
                    RETURNING tableoid::regclass::text AS part),
                     r AS (INSERT INTO ledger_payload_rewrites (partition) SELECT DISTINCT part FROM d
                           ON CONFLICT (partition) DO UPDATE SET requested_at = clock_timestamp())
                SELECT count(*) FROM d
                """).single("the reconciliation").int64(0))
        }
    }

    public func service(interval: Duration, logger: Logger) -> PeriodicService {
        PeriodicService(every: interval, logger: logger, what: "answer deletion requests", startsAfterInterval: true) {
            let report = try await self.run(now: PostgresEventLog.wallClock())
            if report.erased + report.deferred + report.denied + report.reconciled + report.rewritten.count + report.expiry.archived
                + report.expiry.erased + report.expiry.reviews > 0
            {
                logger.notice(
                    "retention run", metadata: ["ledger.erased": "\(report.erased)", "ledger.deferred": "\(report.deferred)", "ledger.denied": "\(report.denied)",
                        "ledger.reconciled": "\(report.reconciled)", "ledger.pending": "\(report.pending)",
                        "ledger.rewritten": "\(report.rewritten.joined(separator: ","))", "ledger.archived": "\(report.expiry.archived)",
                        "ledger.expired": "\(report.expiry.erased)", "ledger.reviews": "\(report.expiry.reviews)"])
            }
            if let problem = report.maintenanceProblem {
                logger.error("could not rewrite the partitions of erased payloads", metadata: ["ledger.problem": "\(problem)"])
            }
        }
    }
}
