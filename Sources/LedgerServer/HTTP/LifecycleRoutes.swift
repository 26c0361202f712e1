import CERKit
import HTTPTypes
import Hummingbird
import LedgerCore
import LedgerProjections
import LedgerStore

/// Record lifecycle: owners archive, hide, restore and ask for erasure of their records and read their
/// lifecycle; the operator applies and releases legal holds and reads pending retention work.
struct LifecycleRoutes: Sendable {
    let lifecycle: LifecycleService
    let queries: LedgerQueries
    let dataSubjects: DataSubjectSecret
    let reader: RequestReader
    let limiter: RateLimiter
    let floorDays: Int
    let clock: @Sendable () -> Int64

    func register(on router: Router<LedgerRequestContext>) {
        router.post("/v1/records/:hash/lifecycle") { request, context in try await change(request, context) }
        router.post("/v1/records/:hash/deletion") { request, context in try await requestDeletion(request, context) }
        router.get("/v1/records/:hash/lifecycle") { request, context in try await read(request, context) }
        router.post("/v1/runs/:runId/deletion") { request, context in
            try await requestGroupDeletion(.run(context.parameters.get("runId") ?? ""), request, context)
        }
        router.post("/v1/project-bundles/:hash/deletion") { request, context in
            try await requestGroupDeletion(.project(context.parameters.get("hash") ?? ""), request, context)
        }
        router.post("/v1/data-subjects/deletion") { request, context in
            // The reference is personal data: it travels in the body, never in a URL that logs would keep.
            let principal = try await context.auth.account()
            let (body, _) = try await reader.object(request)
            guard let reference = try body.string("dataSubject") else { throw LedgerServerError(.invalidRequest, "dataSubject is required") }
            try DataSubjects.check(reference)
            let reason = try Self.reason(body)
            try limiter.requireAdmission(principal.accountId, now: clock(), what: "record changes")
            let digest = try dataSubjects.subjects().digest(account: principal.accountId, reference: reference)
            return try await groupDeletionResponse(.dataSubject(digest: digest), account: principal.accountId, reason: reason, actor: "owner")
        }
        let admin = router.group("/v1/admin")
        admin.post("/deletions") { request, context in try await adminDeletion(request, context) }
        admin.get("/legal-holds") { _, context in
            try context.auth.requireAdmin()
            let book = try await lifecycle.holds()
            return JSONResponse.make(body: ["holds": .array(book.active.values.sorted { $0.appliedIndex < $1.appliedIndex }.map(Self.json))])
        }
        admin.post("/legal-holds") { request, context in
            try context.auth.requireAdmin()
            let (body, _) = try await reader.object(request)
            guard let caseId = try body.string("caseId") else { throw LedgerServerError(.invalidRequest, "caseId is required") }
            guard let account = try body.string("account"), !account.isEmpty else { throw LedgerServerError(.invalidRequest, "account is required") }
            guard let scope = LegalHold.Scope(rawValue: try body.string("scope") ?? "record") else {
                throw LedgerServerError(.invalidField, "scope must be \"record\", \"run\", \"project\" or \"account\"")
            }
            let target = try LegalHold.targetMember(scope).flatMap { scope == .record ? nil : try body.string($0) }
            let entry = try await lifecycle.applyHold(
                holdId: try body.string("holdId"), caseId: caseId, scope: scope, account: account, certificateHash: try body.string("certificateHash"),
                target: target, reason: try Self.reason(body), actor: "admin")
            return JSONResponse.make(status: .created, body: Self.entryJSON(entry))
        }
        admin.post("/legal-holds/:id/release") { request, context in
            try context.auth.requireAdmin()
            let body = try await optionalObject(request)
            let entry = try await lifecycle.releaseHold(holdId: context.parameters.get("id") ?? "", reason: try Self.reason(body), actor: "admin")
            return JSONResponse.make(body: Self.entryJSON(entry))
        }
        admin.get("/retention/policies") { _, context in
            try context.auth.requireAdmin()
            return JSONResponse.make(body: ["policies": .array(try await lifecycle.policies().all.map(Self.json))])
        }
        admin.post("/retention/policies") { request, context in
            try context.auth.requireAdmin()
            let (body, _) = try await reader.object(request)
            guard let account = try body.string("account"), !account.isEmpty else { throw LedgerServerError(.invalidRequest, "account is required") }
            guard let c = RetentionPolicy.Class(rawValue: try body.string("class") ?? "") else {
                throw LedgerServerError(.invalidField, "class must be short, standard, long or permanent")
            }
            guard let action = RetentionPolicy.Action(rawValue: try body.string("action") ?? "") else {
                throw LedgerServerError(.invalidField, "action must be archive, delete, review or export-delete")
            }
            guard let mode = RetentionPolicy.Mode(rawValue: try body.string("mode") ?? "governance") else {
                throw LedgerServerError(.invalidField, "mode must be governance or locked")
            }
            let window = try body.integer("windowDays")
            if let window, !(1...36_500).contains(window) { throw LedgerServerError(.invalidField, "windowDays is from 1 to 36500") }
            let policy = RetentionPolicy(
                account: account, project: try body.string("project"), application: try body.string("application"), surface: try body.string("surface"),
                policyClass: c, windowDays: window.map { Int($0) }, action: action, mode: mode)
            let (entry, set) = try await lifecycle.setPolicy(policy, reason: try Self.reason(body), actor: "admin")
            return JSONResponse.make(status: entry == nil ? .ok : .created, body: Self.json(set))
        }
        admin.get("/retention") { _, context in
            try context.auth.requireAdmin()
            let pending = try await lifecycle.log.pool.withConnection { c in
                try c.query("""
                    SELECT certificate_hash, account, deletion_requested_idx FROM proj_certificate_records
                    WHERE deletion_requested_idx IS NOT NULL ORDER BY deletion_requested_idx LIMIT 1000
                    """).rows.map { r throws(LedgerStoreError) -> JSONValue in
                    ["certificateHash": .string(JSONString(try r.text(0))), "account": .string(JSONString(try r.text(1))),
                     "requestIndex": .number(Double(try r.int64(2)))]
                }
            }
            let reviews = try await lifecycle.log.pool.withConnection { c in
                try c.query("""
                    SELECT e.subject, e.account, e.idx, e.body::jsonb->>'policy' FROM ledger_entries e
                    JOIN proj_certificate_records r ON 'cer:' || r.certificate_hash = e.subject AND r.account = e.account AND r.lifecycle <> 'deleted'
                    WHERE e.type = 'retention.review_required' ORDER BY e.idx LIMIT 1000
                    """).rows.map { r throws(LedgerStoreError) -> JSONValue in
                    ["certificateHash": .string(JSONString(Subject.certificateHash(of: try r.text(0)) ?? "")), "account": r[1].map { .string(JSONString($0)) } ?? .null,
                     "ledgerIndex": .number(Double(try r.int64(2))), "policyIndex": r[3].flatMap(Double.init).map { .number($0) } ?? .null]
                }
            }
            let expiring: [JSONValue] = try await lifecycle.expiring(now: clock()).map { x in
                var o = Self.json(x.policy).objectValue ?? [:]
                o["expired"] = .number(Double(x.expired))
                o["nextExpiry"] = x.nextExpiry.map { .string(JSONString(Timestamp.iso8601(milliseconds: $0))) } ?? .null
                return .object(o)
            }
            return JSONResponse.make(body: [
                "floorDays": .number(Double(floorDays)), "pendingDeletions": .array(pending), "reviewRequired": .array(reviews),
                "policies": .array(expiring),
            ])
        }
    }

    func requestGroupDeletion(_ group: LifecycleService.RecordGroup, _ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let principal = try await context.auth.account()
        let body = try await optionalObject(request)
        let reason = try Self.reason(body)
        try limiter.requireAdmission(principal.accountId, now: clock(), what: "record changes")
        return try await groupDeletionResponse(group, account: principal.accountId, reason: reason, actor: "owner")
    }

    func groupDeletionResponse(_ group: LifecycleService.RecordGroup, account: String, reason: String?, actor: String) async throws -> Response {
        let done = try await lifecycle.requestDeletion(of: group, account: account, reason: reason, actor: actor, queries: queries)
        return JSONResponse.make(status: done.requested.isEmpty ? .ok : .accepted, body: [
            "status": "requested", "group": group.json, "account": .string(JSONString(account)),
            "requested": .array(done.requested.map { ["certificateHash": $0.body["certificateHash"] ?? .null, "requestIndex": .number(Double($0.index))] }),
            "alreadyPending": .number(Double(done.pending)), "alreadyDeleted": .number(Double(done.deleted)),
        ])
    }

    /// An administrator's deletion request for an account's record, run or project.
    func adminDeletion(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        try context.auth.requireAdmin()
        let (body, _) = try await reader.object(request)
        guard let account = try body.string("account"), !account.isEmpty else { throw LedgerServerError(.invalidRequest, "account is required") }
        let reason = try Self.reason(body)
        let named = [try body.string("certificateHash"), try body.string("runId"), try body.string("projectHash"), try body.string("dataSubject")]
        guard named.compactMap({ $0 }).count == 1 else {
            throw LedgerServerError(.invalidRequest, "name exactly one of certificateHash, runId, projectHash and dataSubject")
        }
        if let reference = named[3] {
            try DataSubjects.check(reference)
            let digest = try dataSubjects.subjects().digest(account: account, reference: reference)
            return try await groupDeletionResponse(.dataSubject(digest: digest), account: account, reason: reason, actor: "admin")
        }
        if let hash = named[0] {
            let (entry, isNew) = try await lifecycle.requestDeletion(certificateHash: hash, account: account, reason: reason, actor: "admin")
            return JSONResponse.make(status: isNew ? .accepted : .ok, body: [
                "certificateHash": .string(JSONString(hash)), "status": "requested", "requestIndex": .number(Double(entry.index)), "replayed": .bool(!isNew),
            ])
        }
        let group: LifecycleService.RecordGroup = named[1].map { .run($0) } ?? .project(named[2]!)
        return try await groupDeletionResponse(group, account: account, reason: reason, actor: "admin")
    }

    /// A JSON object body, or an empty object when the request has none (no content type, no bytes).
    func optionalObject(_ request: Request) async throws -> JSONObject {
        guard request.headers[.contentType] == nil else { return try await reader.object(request).object }
        let buffer = try await request.body.collect(upTo: 1024)
        guard buffer.readableBytes == 0 else {
            throw LedgerServerError(.unsupportedMediaType, "send the body as application/json, or send none")
        }
        return JSONObject()
    }

    static func reason(_ body: JSONObject) throws -> String? {
        guard let reason = try body.string("reason") else { return nil }
        guard reason.utf8.count <= 1000 else { throw LedgerServerError(.invalidField, "reason is at most 1000 bytes") }
        return reason
    }

    func change(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let principal = try await context.auth.account()
        let hash = try RequestReader.certificateHash(context)
        let (body, _) = try await reader.object(request)
        guard let raw = try body.string("action"), let action = LifecycleAction(rawValue: raw), action != .delete else {
            throw LedgerServerError(.invalidRequest, "action must be \"archive\", \"hide\" or \"restore\" (erasure: POST /v1/records/{hash}/deletion)")
        }
        let reason = try Self.reason(body)
        try limiter.requireAdmission(principal.accountId, now: clock(), what: "record changes")
        let change = try await lifecycle.change(action, certificateHash: hash, account: principal.accountId, reason: reason, actor: "owner")
        return JSONResponse.make(body: [
            "certificateHash": .string(JSONString(hash)), "from": .string(JSONString(change.from.rawValue)), "state": .string(JSONString(change.to.rawValue)),
            "changed": .bool(change.changed), "ledgerIndex": .number(Double(change.entry.index)),
        ])
    }

    func requestDeletion(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let principal = try await context.auth.account()
        let hash = try RequestReader.certificateHash(context)
        let body = try await optionalObject(request)
        let reason = try Self.reason(body)
        try limiter.requireAdmission(principal.accountId, now: clock(), what: "record changes")
        let (entry, isNew) = try await lifecycle.requestDeletion(certificateHash: hash, account: principal.accountId, reason: reason, actor: "owner")
        return JSONResponse.make(status: isNew ? .accepted : .ok, body: [
            "certificateHash": .string(JSONString(hash)), "status": "requested", "requestIndex": .number(Double(entry.index)), "replayed": .bool(!isNew),
        ])
    }

    /// The caller's record's lifecycle: its state, whether its payload was purged, the pending request,
    /// the holds over it, and every lifecycle event of the account on it.
    func read(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let principal = try await context.auth.account()
        let hash = try RequestReader.certificateHash(context)
        let entries = try await lifecycle.log.entries(subject: Subject.certificate(hash)).entries
        guard let owned = AttestationService.fold(entries).first(where: { $0.entry.account == principal.accountId }) else {
            throw LedgerServerError(.notFound, "No record found for this certificate hash")
        }
        let kinds: Set<String> = [
            EventType.cerLifecycleChanged, EventType.deletionRequested, EventType.deletionDeferred, EventType.deletionCompleted, EventType.deletionDenied,
            EventType.payloadPurged, EventType.retentionReviewRequired,
        ]
        let events = entries.filter { $0.account == principal.accountId && kinds.contains($0.type) }
        let scope = try await RetentionWorker.scope(log: lifecycle.log, hash: hash, account: principal.accountId, entries: entries)
        let holds = try await lifecycle.holds(account: principal.accountId).holding(scope)
        let policy = try await lifecycle.policies().effective(scope)
        return JSONResponse.make(body: [
            "certificateHash": .string(JSONString(hash)), "state": .string(JSONString(owned.lifecycle.rawValue)),
            "purged": .bool(owned.record?.purged ?? false),
            "deletionRequested": owned.record?.deletionRequested.map { .number(Double($0)) } ?? .null,
            "holds": .array(holds.map { ["holdId": .string(JSONString($0.holdId)), "caseId": .string(JSONString($0.caseId)), "scope": .string(JSONString($0.scope.rawValue))] }),
            "retentionPolicy": policy.map(Self.json) ?? .null,
            "events": .array(events.map(Self.entryJSON)),
        ])
    }

    static func entryJSON(_ e: LedgerEntry) -> JSONValue {
        [
            "ledgerIndex": .number(Double(e.index)), "type": .string(JSONString(e.type)),
            "recordedAt": .string(JSONString(Timestamp.iso8601(milliseconds: e.recordedAt))), "body": e.body,
        ]
    }

    static func json(_ p: RetentionPolicy) -> JSONValue {
        [
            "account": .string(JSONString(p.account)), "scope": .string(JSONString(p.scopeName)), "project": p.project.map { .string(JSONString($0)) } ?? .null,
            "application": p.application.map { .string(JSONString($0)) } ?? .null, "surface": p.surface.map { .string(JSONString($0)) } ?? .null,
            "class": .string(JSONString(p.policyClass.rawValue)), "windowDays": p.windowDays.map { .number(Double($0)) } ?? .null,
            "action": .string(JSONString(p.action.rawValue)), "mode": .string(JSONString(p.mode.rawValue)), "ledgerIndex": .number(Double(p.index)),
        ]
    }

    static func json(_ h: LegalHold) -> JSONValue {
        [
            "holdId": .string(JSONString(h.holdId)), "caseId": .string(JSONString(h.caseId)), "scope": .string(JSONString(h.scope.rawValue)),
            "account": .string(JSONString(h.account)), "certificateHash": h.certificateHash.map { .string(JSONString($0)) } ?? .null,
            "runId": h.scope == .run ? h.target.map { .string(JSONString($0)) } ?? .null : .null,
            "projectHash": h.scope == .project ? h.target.map { .string(JSONString($0)) } ?? .null : .null,
            "appliedIndex": .number(Double(h.appliedIndex)),
        ]
    }
}
