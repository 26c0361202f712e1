import Foundation
import CERKit
import HTTPTypes
import Hummingbird
import LedgerCore
import LedgerProjections
import LedgerStore

/// Provenance by certificate hash, run chains and project bundles (docs/http-api.md).
struct ProjectionRoutes: Sendable {
    let queries: LedgerQueries
    let projects: ProjectService
    let attestation: AttestationService
    let accounts: AccountStore
    let reader: RequestReader
    let publicReader: RequestReader
    let publicGate: AdmissionGate
    let publicWorkers: LowPriorityPool
    let expensiveGate: AdmissionGate
    let billing: Billing
    let idempotency: IdempotencyKeys
    let visibilityLimiter: RateLimiter
    let maxSteps: Int
    let clock: @Sendable () -> Int64
    let log: PostgresEventLog

    func register(on router: Router<LedgerRequestContext>) {
        router.get("/v1/provenance/:hash") { request, context in try await provenance(request, context) }
        router.get("/v1/runs/:runId") { request, context in try await run(request, context) }
        router.post("/v1/project-bundle/register") { request, context in try await registerProject(request, context) }
        router.post("/api/register/project-bundle") { request, context in try await registerProject(request, context) }
        router.post("/v1/project-bundle/verify") { request, _ in try await verifyProject(request) }
        router.get("/api/project-bundles/:hash") { request, context in try await projectBundle(request, context) }
        router.post("/v1/project-bundles/:hash/visibility") { request, context in try await setProjectVisibility(request, context) }
    }

    /// Every event for a certificate hash that the caller may see, in ledger order, a page at a time
    /// (`limit`, `after` = the last ledgerIndex of the previous page), with the subject's chain checked over
    /// all its entries. Events of other accounts' private records are counted, not shown; links to
    /// projects are shown only for projects the caller may see. `?proofs=true` adds every shown event's
    /// inclusion proof against the latest checkpoint, read in one round trip.
    func provenance(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let hash = try RequestReader.certificateHash(context)
        let principal = try await context.auth.optionalAccount()
        let q = QueryParameters(request)
        let withProofs = try q.flag("proofs")
        let limit = try q.get("limit", default: 100, in: 1...Self.maxProvenancePage)
        let after = try q.get("after", default: -1, in: -1...Int.max)
        return try await expensiveGate.withPermit {
            let p = try await queries.provenance(certificateHash: hash)
            let records = AttestationService.fold(p.entries)
            // A hidden record is its owner's alone, whatever its visibility.
            let visible = Set(records.filter { $0.isPublic || $0.entry.account == principal?.accountId }.compactMap(\.entry.account))
            let allShown = p.entries.filter { e in e.account.map(visible.contains) ?? true }
            guard !allShown.isEmpty else { throw LedgerServerError(.notFound, "No record visible to this caller for this certificate hash") }
            let page = Array(allShown.lazy.filter { $0.index > Int64(after) }.prefix(limit))
            let url = attestation.identity.publicURL
            var events = page.map { Self.entryJSON($0, publicURL: url) }
            var checkpointNote: JSONValue = .null
            if withProofs, let checkpoint = try await log.latestCheckpoint() {
                // Each event's inclusion proof against the latest checkpoint (events newer than it get none yet).
                checkpointNote = .string(JSONString(String(decoding: try await log.cosignedNote(checkpoint), as: UTF8.self)))
                let covered = page.map(\.index).filter { $0 < checkpoint.size }
                let proofs = try await log.inclusionProofs(indexes: covered, size: checkpoint.size)
                for (i, e) in page.enumerated() {
                    guard let proof = proofs[e.index] else { continue }
                    events[i]["inclusionProof"] = [
                        "treeSize": .number(Double(checkpoint.size)), "proof": .array(proof.map { .string(JSONString(Base64.encode($0))) }),
                    ]
                }
            }
            var links: [JSONValue] = []
            var projectVisible: [String: Bool] = [:]  // one read per project, however many links name it
            for l in p.links {
                if l.kind == "project" {
                    if projectVisible[l.ref] == nil {
                        let project = try await projects.project(projectHash: l.ref)
                        projectVisible[l.ref] = project.map { $0.visibility == .public || (principal != nil && $0.entry.account == principal?.accountId) } ?? true
                    }
                    if projectVisible[l.ref] == false { continue }
                }
                links.append([
                    "kind": .string(JSONString(l.kind)), "ref": .string(JSONString(l.ref)), "ledgerIndex": .number(Double(l.entry.index)),
                    "type": .string(JSONString(l.entry.type)),
                ])
            }
            let hasMore = allShown.contains { $0.index > (page.last?.index ?? Int64(after)) }
            var recordsJSON: [JSONValue] = []
            for r in records where r.entry.account.map(visible.contains) ?? false {
                var o: JSONObject = [
                    "account": .string(JSONString(r.entry.account ?? "")), "visibility": .string(JSONString(r.visibility.rawValue)),
                    "ledgerIndex": .number(Double(r.entry.index)), "type": .string(JSONString(r.entry.type)),
                    "hasBundle": .bool(r.entry.payloadDigest != nil), "lifecycle": .string(JSONString(r.lifecycle.rawValue)),
                    "purged": .bool(r.record?.purged ?? false),
                ]
                // Timestamps and anchors of the record, each linked to it by an inclusion proof.
                let evidence = try await RecordEvidence.collect(log: log, attestation: r.entry, subjectEntries: p.entries)
                o["trustedTimestamps"] = .array(evidence.trustedTimestamps)
                o["anchors"] = .array(evidence.anchors)
                recordsJSON.append(.object(o))
            }
            let body: JSONValue = [
                "certificateHash": .string(JSONString(hash)),
                "records": .array(recordsJSON),
                "events": .array(events.map(JSONValue.object)), "checkpoint": checkpointNote,
                "hiddenEvents": .number(Double(p.entries.count - allShown.count)),
                "page": [
                    "limit": .number(Double(limit)), "after": after >= 0 ? .number(Double(after)) : .null,
                    "next": hasMore ? .number(Double(page.last!.index)) : .null,
                ],
                "links": .array(links),
                "chain": [
                    "intact": .bool(p.chainProblems.isEmpty), "entries": .number(Double(p.entries.count)),
                    "problems": .array(p.chainProblems.map { .string(JSONString($0.description)) }),
                ],
            ]
            return JSONResponse.make(body: body)
        }
    }

    /// Most events in one provenance page.
    static let maxProvenancePage = 1000

    /// A run: its steps in order, the RunSummary and the chain's state. The caller's own run only.
    func run(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let principal = try await context.auth.account()
        let raw = context.parameters.get("runId") ?? ""
        let runId = raw.removingPercentEncoding ?? raw
        guard !runId.isEmpty, runId.utf8.count <= 512 else { throw LedgerServerError(.invalidRequest, "the runId must be 1 to 512 bytes") }
        guard let status = try await queries.run(account: principal.accountId, runId: runId) else {
            throw LedgerServerError(.notFound, "No run \(runId) for this account")
        }
        let steps: [JSONValue] = status.steps.map { s in
            [
                "stepIndex": s.stepIndex.map { .number(Double($0)) } ?? .null, "certificateHash": .string(JSONString(s.certificateHash)),
                "prevStepHash": s.prevStepHash.map { .string(JSONString($0)) } ?? .null,
                "workflowId": s.workflowId.map { .string(JSONString($0)) } ?? .null, "ledgerIndex": .number(Double(s.ledgerIndex)),
            ]
        }
        return JSONResponse.make(body: [
            "runId": .string(JSONString(runId)), "workflowId": status.steps.first?.workflowId.map { .string(JSONString($0)) } ?? .null,
            "stepCount": .number(Double(status.steps.count)), "steps": .array(steps),
            "finalStepHash": status.finalStepHash.map { .string(JSONString($0)) } ?? .null,
            "status": [
                "state": .string(JSONString(status.state.rawValue)), "code": status.code.map { .string(JSONString($0)) } ?? .null,
                "brokenAtStep": status.brokenAt.map { .number(Double($0)) } ?? .null,
                "expected": status.expected.map { .string(JSONString($0)) } ?? .null,
                "found": status.found.map { .string(JSONString($0)) } ?? .null,
                "missingStepIndexes": .array(status.missingStepIndexes.map { .number(Double($0)) }),
                "conflictingStepIndexes": .array(status.conflictingStepIndexes.map { .number(Double($0)) }),
                "problems": .array(status.problems.map { .string(JSONString($0)) }),
            ],
        ])
    }

    /// Billable like an attestation: it signs a receipt and appends (decision 0012).
    func registerProject(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let visibility = try AttestationRoutes.visibility(request)
        return try await billing.billable(request, context, endpoint: "/v1/project-bundle/register") { principal, charge in
            let bytes = try await reader.body(request)
            let use = try IdempotencyKeys.use(request, account: principal.accountId, endpoint: "/v1/project-bundle/register", body: bytes)
            let replay: (LedgerEntry) async throws -> Response = { entry in
                JSONResponse.make(body: projects.response(ProjectService.Registration(entry: entry, isNew: false)))
            }
            return try await idempotency.run(use, replay: replay) { claims in
                try await expensiveGate.withPermit {
                    let value = try reader.parse(bytes)
                    let registration = try await projects.register(
                        bundle: value, payload: bytes, principal: principal, visibility: visibility, charge: charge, claims: claims)
                    return (JSONResponse.make(body: projects.response(registration)), registration.meter)
                }
            }
        }
    }

    func verifyProject(_ request: Request) async throws -> Response {
        try publicReader.check(request)
        return try await publicGate.withPermit {
            let bytes = try await publicReader.body(request)
            let routes = self
            return try await publicWorkers.run { try routes.verifyProject(bytes) }
        }
    }

    func verifyProject(_ bytes: [UInt8]) throws -> Response {
        let value = try publicReader.parse(bytes)
        let artifact = value["bundle"].flatMap { $0.objectValue != nil ? $0 : nil } ?? value
        try AttestationRoutes.requireSteps(in: artifact, atMost: maxSteps)
        let r = ProjectBundle.verify(artifact)
        return JSONResponse.make(body: [
            "ok": .bool(r.ok), "code": .string(JSONString(r.code.rawValue)), "errors": .array(r.errors.map { .string(JSONString($0)) }),
            "projectHash": r.projectHash.map { .string(JSONString($0)) } ?? .null,
            "computedProjectHash": r.computedProjectHash.map { .string(JSONString($0)) } ?? .null,
            "projectHashValid": r.projectHashValid.map(JSONValue.bool) ?? .null, "structuralValid": .bool(r.structuralValid),
            "totalSteps": r.totalSteps.map { .number(Double($0)) } ?? .null, "passedSteps": .number(Double(r.passedSteps)),
            "failedSteps": .number(Double(r.failedSteps)),
            "steps": .array(r.steps.map { s in
                [
                    "stepId": .string(JSONString(s.stepId)), "sequence": s.sequence.map { .number(Double($0)) } ?? .null,
                    "executionId": s.executionId.map { .string(JSONString($0)) } ?? .null,
                    "certificateHash": s.certificateHash.map { .string(JSONString($0)) } ?? .null, "ok": .bool(s.ok),
                    "code": .string(JSONString(s.code.rawValue)), "errors": .array(s.errors.map { .string(JSONString($0)) }),
                ]
            }),
        ])
    }

    /// `{proof, bundle, nodeReceipt}` for a registered projectHash. The owner sees its bundle whole; anyone
    /// else only a published project, and without the embedded CERs of steps that are private to them
    /// (listed in `withheldSteps`).
    func projectBundle(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let hash = try RequestReader.certificateHash(context)
        let principal = try await context.auth.optionalAccount()
        guard let (entry, visibility) = try await projects.project(projectHash: hash),
            visibility == .public || (principal != nil && entry.account == principal?.accountId)
        else {
            throw LedgerServerError(.notFound, "No project bundle registered with this projectHash")
        }
        var bundle = try await attestation.bundle(of: entry)
        var withheld: [JSONValue] = []
        if entry.account != principal?.accountId, var b = bundle?.objectValue, var embedded = b["embeddedBundles"]?.objectValue {
            let registry = b["stepRegistry"]?.arrayValue ?? []
            let hashes = registry.compactMap { $0["certificateHash"]?.stringValue }
            let visible = try await queries.visibleCertificates(hashes, to: principal?.accountId)
            for s in registry {
                guard let stepId = s["stepId"]?.stringValue, embedded[stepId] != nil else { continue }
                if let h = s["certificateHash"]?.stringValue, visible.contains(h) { continue }
                embedded[stepId] = nil
                withheld.append(.string(JSONString(stepId)))
            }
            b["embeddedBundles"] = .object(embedded)
            bundle = .object(b)
        }
        let b = entry.body
        return JSONResponse.make(body: [
            "proof": [
                "projectHash": b["projectHash"] ?? .null, "projectBundleId": b["projectBundleId"] ?? .null,
                "registrationId": b["registrationId"] ?? .null, "registeredAt": b["registeredAt"] ?? .null,
                "ledgerIndex": .number(Double(entry.index)), "leafHash": .string(JSONString(Base64.encode(entry.leafHash))),
                "inclusionProofUrl": .string(JSONString(attestation.identity.publicURL + "/v1/log/proof/inclusion?index=\(entry.index)")),
            ],
            "bundle": bundle ?? .null, "nodeReceipt": b["nodeReceipt"] ?? .null,
            "visibility": .string(JSONString(visibility.rawValue)), "withheldSteps": .array(withheld),
        ])
    }

    func setProjectVisibility(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let principal = try await context.auth.account()
        let hash = try RequestReader.certificateHash(context)
        let visibility = try await reader.visibilityChange(request)
        try visibilityLimiter.requireAdmission(principal.accountId, now: clock(), what: "visibility changes")
        let change = try await projects.setVisibility(visibility, projectHash: hash, principal: principal)
        return JSONResponse.make(body: [
            "ok": true, "projectHash": .string(JSONString(hash)), "visibility": .string(JSONString(visibility.rawValue)),
            "ledgerIndex": .number(Double(change.entry.index)), "changed": .bool(change.changed),
        ])
    }
}
