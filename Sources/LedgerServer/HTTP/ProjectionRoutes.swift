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
    let log: PostgresEventLog

    func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/provenance/:hash") { request, context in try await provenance(request, context) }
        router.get("/v1/runs/:runId") { request, context in try await run(request, context) }
        router.post("/v1/project-bundle/register") { request, _ in try await registerProject(request) }
        router.post("/api/register/project-bundle") { request, _ in try await registerProject(request) }
        router.post("/v1/project-bundle/verify") { request, _ in try await verifyProject(request) }
        router.get("/api/project-bundles/:hash") { _, context in try await projectBundle(context) }
    }

    /// The caller's account when an API key is sent (a bad key is a 401), nil for an anonymous caller.
    func optionalPrincipal(_ request: Request) async throws -> Principal? {
        guard request.headers[.authorization] != nil else { return nil }
        return try await accounts.authenticate(rawKey: try AttestationRoutes.bearer(request))
    }

    static func entryJSON(_ e: LedgerEntry, publicURL: String) -> JSONObject {
        [
            "ledgerIndex": .number(Double(e.index)), "subject": .string(JSONString(e.subject)), "subjectIndex": .number(Double(e.subjectIndex)),
            "type": .string(JSONString(e.type)), "account": e.account.map { .string(JSONString($0)) } ?? .null,
            "recordedAt": .string(JSONString(Timestamp.iso8601(milliseconds: e.recordedAt))), "body": e.body,
            "leafHash": .string(JSONString(Base64.encode(e.leafHash))), "hasPayload": .bool(e.payloadDigest != nil),
            "inclusionProofUrl": .string(JSONString(publicURL + "/v1/log/proof/inclusion?index=\(e.index)")),
        ]
    }

    /// Every event for a certificate hash that the caller may see, in ledger order, with the subject's
    /// chain checked over all its entries. Events of other accounts' private records are counted, not shown.
    func provenance(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let hash = try RequestReader.certificateHash(context)
        let principal = try await optionalPrincipal(request)
        let p = try await queries.provenance(certificateHash: hash)
        let records = AttestationService.fold(p.entries)
        let visible = Set(records.filter { $0.visibility == .public || $0.entry.account == principal?.accountId }.compactMap(\.entry.account))
        let shown = p.entries.filter { e in e.account.map(visible.contains) ?? true }
        guard !shown.isEmpty else { throw LedgerServerError(.notFound, "No record visible to this caller for this certificate hash") }
        let url = attestation.identity.publicURL
        var events = shown.map { Self.entryJSON($0, publicURL: url) }
        var checkpointNote: JSONValue = .null
        if request.uri.queryParameters.get("proofs") == "true", let checkpoint = try await log.latestCheckpoint() {
            // Each event's inclusion proof against the latest checkpoint (events newer than it get none yet).
            checkpointNote = .string(JSONString(String(decoding: checkpoint.note, as: UTF8.self)))
            for (i, e) in shown.enumerated() where e.index < checkpoint.size {
                let p = try await log.inclusionProof(index: e.index, size: checkpoint.size)
                events[i]["inclusionProof"] = [
                    "treeSize": .number(Double(checkpoint.size)), "proof": .array(p.proof.map { .string(JSONString(Base64.encode($0))) }),
                ]
            }
        }
        let body: JSONValue = [
            "certificateHash": .string(JSONString(hash)),
            "records": .array(records.filter { $0.entry.account.map(visible.contains) ?? false }.map { r in
                [
                    "account": .string(JSONString(r.entry.account ?? "")), "visibility": .string(JSONString(r.visibility.rawValue)),
                    "ledgerIndex": .number(Double(r.entry.index)), "type": .string(JSONString(r.entry.type)),
                    "hasBundle": .bool(r.entry.payloadDigest != nil),
                ]
            }),
            "events": .array(events.map(JSONValue.object)), "checkpoint": checkpointNote,
            "hiddenEvents": .number(Double(p.entries.count - shown.count)),
            "links": .array(p.links.map { l in
                ["kind": .string(JSONString(l.kind)), "ref": .string(JSONString(l.ref)), "ledgerIndex": .number(Double(l.entry.index)),
                 "type": .string(JSONString(l.entry.type))]
            }),
            "chain": [
                "intact": .bool(p.chainProblems.isEmpty), "entries": .number(Double(p.entries.count)),
                "problems": .array(p.chainProblems.map { .string(JSONString($0.description)) }),
            ],
        ]
        return JSONResponse.make(body: body)
    }

    /// A run: its steps in order, the RunSummary and the chain's state. The caller's own run only.
    func run(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let principal = try await accounts.authenticate(rawKey: try AttestationRoutes.bearer(request))
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

    func registerProject(_ request: Request) async throws -> Response {
        let principal = try await accounts.authenticate(rawKey: AttestationRoutes.bearer(request))
        let (value, bytes) = try await reader.json(request)
        let registration = try await projects.register(bundle: value, payload: bytes, principal: principal)
        return JSONResponse.make(body: projects.response(registration))
    }

    func verifyProject(_ request: Request) async throws -> Response {
        let (value, _) = try await reader.json(request)
        let r = ProjectBundle.verify(value["bundle"].flatMap { $0.objectValue != nil ? $0 : nil } ?? value)
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

    /// `{proof, bundle, nodeReceipt}` for a registered projectHash (public, like NexArt's lookup).
    func projectBundle(_ context: BasicRequestContext) async throws -> Response {
        let hash = try RequestReader.certificateHash(context)
        guard let entry = try await projects.registration(projectHash: hash) else {
            throw LedgerServerError(.notFound, "No project bundle registered with this projectHash")
        }
        let bundle = try await attestation.bundle(of: entry)
        let b = entry.body
        return JSONResponse.make(body: [
            "proof": [
                "projectHash": b["projectHash"] ?? .null, "projectBundleId": b["projectBundleId"] ?? .null,
                "registrationId": b["registrationId"] ?? .null, "registeredAt": b["registeredAt"] ?? .null,
                "ledgerIndex": .number(Double(entry.index)), "leafHash": .string(JSONString(Base64.encode(entry.leafHash))),
                "inclusionProofUrl": .string(JSONString(attestation.identity.publicURL + "/v1/log/proof/inclusion?index=\(entry.index)")),
            ],
            "bundle": bundle ?? .null, "nodeReceipt": b["nodeReceipt"] ?? .null,
        ])
    }
}
