import CERKit
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
import LedgerCore
import LedgerProjections
import LedgerStore

/// The NexArt-compatible node endpoints and the record lookups.
struct AttestationRoutes: Sendable {
    let configuration: ServerConfiguration
    let attestation: AttestationService
    let accounts: AccountStore
    let usage: UsageRecorder
    let billing: Billing
    let idempotency: IdempotencyKeys
    let reader: RequestReader
    /// The anonymous verification routes' smaller body limit.
    let publicReader: RequestReader
    /// Anonymous verifications admitted at once (reading their body included).
    let publicGate: AdmissionGate
    /// Where anonymous verifications run: at the lowest CPU priority.
    let publicWorkers: LowPriorityPool
    /// Visibility changes per account and minute.
    let visibilityLimiter: RateLimiter
    let queries: LedgerQueries
    let dataSubjects: DataSubjectSecret
    let clock: @Sendable () -> Int64

    func register(on router: Router<LedgerRequestContext>) {
        router.post("/api/attest") { request, context in try await attest(request, context, endpoint: "/api/attest") }
        router.post("/api/stamp") { request, context in try await attest(request, context, endpoint: "/api/stamp") }
        router.post("/api/stamp-hash") { request, context in try await stampHash(request, context) }
        router.post("/v1/cer/ai/certify") { request, context in try await certify(request, context, persist: true) }
        router.post("/v1/cer/ai/create") { request, context in try await certify(request, context, persist: false) }
        router.post("/v1/cer/verify") { request, context in try await verify(request, context) }
        router.get("/v1/resolve/cer/:hash") { request, context in try await resolve(request, context) }
        router.get("/api/proofs/:hash") { request, context in try await proof(request, context) }
        router.get("/api/proofs") { request, context in try await proofs(request, context) }
        router.post("/v1/records/:hash/visibility") { request, context in try await setVisibility(request, context) }
    }

    // MARK: Authentication and quota

    func billable(
        _ request: Request, _ context: LedgerRequestContext, endpoint: String,
        _ operation: (Principal, Charge?) async throws -> (response: Response, meter: MeterReading?)
    ) async throws -> Response {
        try await billing.billable(request, context, endpoint: endpoint, operation)
    }

    func recordUsage(_ principal: Principal, _ endpoint: String, status: Int, started: Int64, error: String?) {
        billing.recordUsage(principal, endpoint, status: status, started: started, error: error)
    }

    static func visibility(_ request: Request, body: JSONObject? = nil) throws -> Visibility {
        let fromBody = try body?.string("visibility")
        let raw = request.uri.queryParameters.get("visibility").map { String($0) } ?? fromBody
        guard let raw else { return .private }
        guard let v = Visibility(rawValue: raw) else { throw LedgerServerError(.invalidRequest, "visibility must be \"private\" or \"public\"") }
        return v
    }

    // MARK: Attest and certify

    /// The data-subject references an attestation names (`X-Data-Subject`, repeatable), checked.
    static func dataSubjectReferences(_ request: Request) throws -> [String] {
        let references = request.headers[values: HTTPField.Name(DataSubjects.header)!]
        guard references.count <= DataSubjects.maxPerRecord else {
            throw LedgerServerError(.invalidField, "a record names at most \(DataSubjects.maxPerRecord) data subjects (\(DataSubjects.header))")
        }
        for r in references { try DataSubjects.check(r) }
        return references
    }

    func attest(_ request: Request, _ context: LedgerRequestContext, endpoint: String) async throws -> Response {
        let visibility = try Self.visibility(request)
        let references = try Self.dataSubjectReferences(request)
        return try await billable(request, context, endpoint: endpoint) { principal, charge in
            var digests: [String] = []
            if !references.isEmpty {
                let subjects = try dataSubjects.subjects()
                digests = Array(Set(references.map { subjects.digest(account: principal.accountId, reference: $0) })).sorted()
            }
            let bytes = try await reader.body(request)
            let use = try IdempotencyKeys.use(request, account: principal.accountId, endpoint: "/api/attest", body: bytes)
            return try await idempotency.run(use, replay: { entry in liveResponse(AttestationRecord(entry: entry, isNew: false), includeCer: false) }) { claims in
                let bundle = try reader.parse(bytes)
                let record = try await attestation.attest(
                    bundle: bundle, payload: bytes, principal: principal, charge: charge, visibility: visibility, claims: claims, dataSubjects: digests)
                return (liveResponse(record, includeCer: false), record.meter)
            }
        }
    }

    func certify(_ request: Request, _ context: LedgerRequestContext, persist: Bool) async throws -> Response {
        let endpoint = persist ? "/v1/cer/ai/certify" : "/v1/cer/ai/create"
        let build: ([UInt8]?) async throws -> (JSONObject, JSONObject) = { read in
            let bytes: [UInt8]
            if let read { bytes = read } else { bytes = try await reader.body(request) }
            let value = try reader.parse(bytes)
            guard let body = value.objectValue else { throw LedgerServerError(.invalidRequest, "the body must be a JSON object, not a \(value.typeName)") }
            let now = Timestamp.iso8601(milliseconds: clock())
            return (body, try CertifyRequest.parse(body, now: now))
        }
        guard persist else {
            let principal = try await context.auth.account()
            let (_, cer) = try await build(nil)
            let response = JSONResponse.make(body: [
                "ok": true, "bundle": .object(cer), "certificateHash": cer["certificateHash"]!, "bundleType": cer["bundleType"]!,
            ])
            recordUsage(principal, endpoint, status: 200, started: clock(), error: nil)
            return response
        }
        return try await billable(request, context, endpoint: endpoint) { principal, charge in
            let bytes = try await reader.body(request)
            let use = try IdempotencyKeys.use(request, account: principal.accountId, endpoint: endpoint, body: bytes)
            let replay: (LedgerEntry) async throws -> Response = { entry in
                liveResponse(AttestationRecord(entry: entry, isNew: false, bundle: try await attestation.bundle(of: entry)), includeCer: true)
            }
            return try await idempotency.run(use, replay: replay) { claims in
                let (body, cer) = try await build(bytes)
                let visibility = try Self.visibility(request, body: body)
                let canonical = try CanonicalJSON.encode(.object(cer), profile: .nexartV1)
                let record = try await attestation.attest(
                    bundle: .object(cer), payload: canonical, principal: principal, charge: charge, visibility: visibility, source: "certify",
                    claims: claims)
                var recorded = record
                // A replay answers with the bundle that was first recorded.
                if !record.isNew, let stored = try await attestation.bundle(of: record.entry) { recorded.bundle = stored }
                return (liveResponse(recorded, includeCer: true), record.meter)
            }
        }
    }

    func stampHash(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        try await billable(request, context, endpoint: "/api/stamp-hash") { principal, charge in
            let bytes = try await reader.body(request)
            let use = try IdempotencyKeys.use(request, account: principal.accountId, endpoint: "/api/stamp-hash", body: bytes)
            return try await idempotency.run(use, replay: { entry in stampHashResponse(AttestationRecord(entry: entry, isNew: false)) }) { claims in
                guard let body = try reader.parse(bytes).objectValue else { throw LedgerServerError(.invalidRequest, "the body must be a JSON object") }
                guard let hash = try body.string("certificateHash") else { throw LedgerServerError(.invalidRequest, "certificateHash is required") }
                let version = try body.string("protocolVersion")
                if let version, CanonicalizationProfile.forProtocolVersion(version) == nil {
                    throw LedgerServerError(.unsupportedProtocolVersion, "protocolVersion \(version.prefix(40)) is not supported (1.2.0, 1.3.0, 1.3.1)")
                }
                let record = try await attestation.stampHash(
                    certificateHash: hash, protocolVersion: version, principal: principal, charge: charge, claims: claims)
                return (stampHashResponse(record), record.meter)
            }
        }
    }

    func stampHashResponse(_ record: AttestationRecord) -> Response {
        var o = liveResponse(record, includeCer: false, asObject: true)
        o["signatureB64Url"] = o["signature"]
        return JSONResponse.make(body: .object(o), headers: replayHeaders(record))
    }

    func replayHeaders(_ record: AttestationRecord) -> [(String, String)] {
        var h = [("X-Certificate-Hash", record.entry.body["certificateHash"]?.stringValue ?? ""), ("X-Ledger-Index", "\(record.entry.index)")]
        if !record.isNew { h.append(("X-Ledger-Replayed", "true")) }
        return h
    }

    func liveResponse(_ record: AttestationRecord, includeCer: Bool) -> Response {
        JSONResponse.make(body: .object(liveResponse(record, includeCer: includeCer, asObject: true)), headers: replayHeaders(record))
    }

    /// The live node's response shape (PROTOCOL.md §5.2), from the recorded entry, plus `ledger`.
    func liveResponse(_ record: AttestationRecord, includeCer: Bool, asObject: Bool) -> JSONObject {
        let b = record.entry.body
        let hash = b["certificateHash"] ?? .null
        var attestationSummary = JSONObject()
        attestationSummary["attestationId"] = b["attestationId"] ?? .null
        attestationSummary["attestedAt"] = b["attestedAt"] ?? .null
        if let t = b["bundleType"] { attestationSummary["bundleType"] = t }
        attestationSummary["certificateHash"] = hash
        attestationSummary["checks"] = b["checks"] ?? .array([])
        attestationSummary["nodeRuntimeHash"] = b["nodeRuntimeHash"] ?? .null
        attestationSummary["protocolVersion"] = b["protocolVersion"] ?? .null
        attestationSummary["requestId"] = b["attestationId"] ?? .null
        attestationSummary["verified"] = true
        var o = JSONObject()
        o["ok"] = true
        o["attestation"] = .object(attestationSummary)
        o["attestationId"] = b["attestationId"] ?? .null
        o["attestorKeyId"] = b["kid"] ?? .null
        if let t = b["bundleType"] { o["bundleType"] = t }
        o["certificateHash"] = hash
        o["issuedAt"] = b["attestedAt"] ?? .null
        o["attestedAt"] = b["attestedAt"] ?? .null
        o["kid"] = b["kid"] ?? .null
        o["nodeRuntimeHash"] = b["nodeRuntimeHash"] ?? .null
        o["protocolVersion"] = b["protocolVersion"] ?? .null
        o["receipt"] = b["receipt"] ?? .null
        o["signature"] = b["signature"] ?? .null
        o["timestamp"] = b["timestamp"] ?? ["provider": .string(JSONString(NodeIdentity.nodeName)), "status": "ok", "type": "node-issued"]
        if let envelope = b["verificationEnvelope"] {
            o["verificationEnvelope"] = envelope
            o["verificationEnvelopeSignature"] = b["verificationEnvelopeSignature"] ?? .null
        }
        o["verificationUrl"] = .string(JSONString(attestation.identity.resolveURL(certificateHash: hash.stringValue ?? "")))
        o["visibility"] = b["visibility"] ?? "private"
        if includeCer, let cer = record.bundle {
            o["cer"] = cer
            o["createdAt"] = cer["createdAt"] ?? .null
            o["requestId"] = b["attestationId"] ?? .null
        }
        o["ledger"] = [
            "index": .number(Double(record.entry.index)), "subject": .string(JSONString(record.entry.subject)),
            "leafHash": .string(JSONString(Hex.encode(record.entry.leafHash))),
            "recordedAt": .string(JSONString(Timestamp.iso8601(milliseconds: record.entry.recordedAt))),
            "replayed": .bool(!record.isNew),
            "inclusionProofUrl": .string(JSONString(attestation.identity.publicURL + "/v1/log/proof/inclusion?index=\(record.entry.index)")),
        ]
        return o
    }

    // MARK: Verify (public, stateless)

    /// Anonymous and stateless. A request is admitted (or refused with 503 before its body is read), its
    /// body is read within the public limit, and it is parsed and verified on a lowest-priority thread, so
    /// anonymous work uses only CPU that tenants leave idle; the answer is bounded by the body's size.
    func verify(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        try publicReader.check(request)
        return try await publicGate.withPermit {
            let bytes = try await publicReader.body(request)
            // A run with too many steps is refused from a byte scan, before anything is parsed.
            if let count = RequestReader.topLevelArrayCount(bytes, exceeding: configuration.maxSteps), count > configuration.maxSteps {
                throw Self.tooManySteps(count, limit: configuration.maxSteps)
            }
            let reader = publicReader, maxSteps = configuration.maxSteps, keys = attestation.keys.current.manifest
            let body = try await publicWorkers.run { () throws -> [UInt8] in
                let value = try reader.parse(bytes)
                let artifact = value["bundle"].flatMap { $0.objectValue != nil ? $0 : nil } ?? value
                try Self.requireSteps(in: artifact, atMost: maxSteps)
                let report = ArtifactVerifier.verify(artifact, options: VerificationOptions(keys: keys))
                return VerifyResponse.make(report, budget: VerifyResponse.budget(requestBytes: bytes.count)).compactBytes()
            }
            return JSONResponse.bytes(body, contentType: "application/json; charset=utf-8")
        }
    }

    /// Refuses a run or project bundle with more steps than the server verifies per request (413).
    static func requireSteps(in artifact: JSONValue, atMost limit: Int) throws {
        let count: Int
        switch ArtifactVerifier.detect(artifact) {
        case .run: count = artifact.arrayValue?.count ?? artifact["bundles"]?.arrayValue?.count ?? 0
        case .projectBundle: count = artifact["stepRegistry"]?.arrayValue?.count ?? 0
        default: return
        }
        if count > limit { throw tooManySteps(count, limit: limit) }
    }

    static func tooManySteps(_ count: Int, limit: Int) -> LedgerServerError {
        LedgerServerError(
            .payloadTooLarge, "the artifact has \(count > limit ? "more than \(limit)" : "\(count)") steps; at most \(limit) are verified per request",
            details: ["TOO_MANY_STEPS"])
    }

    // MARK: Lookups

    func resolve(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let hash = try RequestReader.certificateHash(context)
        let subjectEntries = try await attestation.log.entries(subject: Subject.certificate(hash)).entries
        guard let record = AttestationService.publicRecord(AttestationService.fold(subjectEntries)) else {
            throw LedgerServerError(.notFound, "No public record for this certificate hash")
        }
        let bundle = try await attestation.bundle(of: record.entry)
        var body = ResolvedRecord.make(
            entry: record.entry, bundle: bundle, identity: attestation.identity, manifest: attestation.keys.current.manifest)
        let evidence = try await RecordEvidence.collect(log: attestation.log, attestation: record.entry, subjectEntries: subjectEntries)
        if var o = body.objectValue {
            // Its lifecycle: a deleted record answers with its hashes, receipt and proofs, and the purge
            // entries that erased its bundle, instead of the bundle.
            let purges = subjectEntries.filter { $0.type == EventType.payloadPurged && $0.account == record.entry.account }
            o["lifecycle"] = [
                "state": .string(JSONString(record.lifecycle.rawValue)),
                "purges": .array(purges.map { p in
                    ["ledgerIndex": .number(Double(p.index)), "entryIndex": p.body["entryIndex"] ?? .null, "authority": p.body["authority"] ?? .null]
                }),
            ]
            o["trustedTimestamps"] = .array(evidence.trustedTimestamps)
            o["anchors"] = .array(evidence.anchors)
            body = .object(o)
        }
        let bytes = body.compactBytes()
        let etag = "\"" + String(Hex.encode(ProtocolHash.sha256(bytes)).prefix(32)) + "\""
        let headers = [("ETag", etag), ("Cache-Control", "public, max-age=60")]
        if let match = request.headers[.ifNoneMatch], match.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag }) {
            return JSONResponse.bytes(status: .notModified, [], contentType: "application/json; charset=utf-8", headers: headers)
        }
        return JSONResponse.bytes(bytes, contentType: "application/json; charset=utf-8", headers: headers)
    }

    /// The caller's own record of a certificate (private ones included).
    func proof(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let principal = try await context.auth.account()
        let hash = try RequestReader.certificateHash(context)
        guard let record = try await attestation.records(certificateHash: hash).first(where: { $0.entry.account == principal.accountId && $0.entry.type == AttestationService.attested }) else {
            throw LedgerServerError(.notFound, "No proof found for this certificate hash")
        }
        var o = liveResponse(AttestationRecord(entry: record.entry, isNew: true, bundle: nil, meter: nil), includeCer: false, asObject: true)
        o["visibility"] = .string(JSONString(record.visibility.rawValue))
        o["lifecycle"] = .string(JSONString(record.lifecycle.rawValue))
        if var ledger = o["ledger"]?.objectValue {
            ledger["replayed"] = nil
            o["ledger"] = .object(ledger)
        }
        o["bundle"] = try await attestation.bundle(of: record.entry) ?? .null
        return JSONResponse.make(body: .object(o))
    }

    /// The caller's records, newest first. Archived and deleted records are left out unless asked for
    /// (`lifecycle=archived|deleted|hidden|active|all`, comma-separated), as NexArt's default queries leave out
    /// archived ones.
    func proofs(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let principal = try await context.auth.account()
        let q = QueryParameters(request)
        let limit = try q.get("limit", default: 50, in: 1...200)
        let offset = try q.get("offset", default: 0, in: 0...1_000_000)
        var lifecycles: [String]? = [LifecycleState.active.rawValue, LifecycleState.hidden.rawValue]
        if let raw = request.uri.queryParameters.get("lifecycle") {
            let asked = raw.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if asked == ["all"] {
                lifecycles = nil
            } else {
                guard !asked.isEmpty, asked.allSatisfy({ LifecycleState(rawValue: $0) != nil }) else {
                    throw LedgerServerError(.invalidField, "lifecycle is all, or a comma-separated list of active, archived, hidden and deleted")
                }
                lifecycles = asked
            }
        }
        let listed = try await queries.attestations(account: principal.accountId, lifecycles: lifecycles, limit: limit, offset: offset)
        let proofs: [JSONValue] = listed.map { (e, lifecycle) in
            [
                "certificateHash": e.body["certificateHash"] ?? .null, "bundleType": e.body["bundleType"] ?? .null,
                "attestationId": e.body["attestationId"] ?? .null, "attestedAt": e.body["attestedAt"] ?? .null,
                "source": e.body["source"] ?? .null, "executionId": e.body["executionId"] ?? .null,
                "ledgerIndex": .number(Double(e.index)), "lifecycle": .string(JSONString(lifecycle)),
            ]
        }
        return JSONResponse.make(body: [
            "proofs": .array(proofs), "count": .number(Double(proofs.count)), "limit": .number(Double(limit)), "offset": .number(Double(offset)),
        ])
    }

    func setVisibility(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let principal = try await context.auth.account()
        let hash = try RequestReader.certificateHash(context)
        let visibility = try await reader.visibilityChange(request)
        try visibilityLimiter.requireAdmission(principal.accountId, now: clock(), what: "visibility changes")
        let change = try await attestation.setVisibility(visibility, certificateHash: hash, principal: principal)
        return JSONResponse.make(body: [
            "ok": true, "certificateHash": .string(JSONString(hash)), "visibility": .string(JSONString(visibility.rawValue)),
            "ledgerIndex": .number(Double(change.entry.index)), "changed": .bool(change.changed),
        ])
    }
}
