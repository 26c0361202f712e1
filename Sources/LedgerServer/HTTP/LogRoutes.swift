import CERKit
import HTTPTypes
import Hummingbird
import LedgerCore
import LedgerStore

/// The verifiable log: checkpoints, entries and proofs (docs/entry-format.md has the exact bytes).
/// Proofs come as JSON, or as text (c2sp.org/tlog-proof for inclusion) with `Accept: text/plain` or
/// `?format=text`.
struct LogRoutes: Sendable {
    let log: PostgresEventLog
    let checkpointer: CheckpointSigner
    let keys: KeyRing
    let accounts: AccountStore
    let adminToken: String?
    let witnesses: CheckpointWitnesses?

    func register(on router: Router<LedgerRequestContext>) {
        router.get("/v1/log") { _, _ in try await info() }
        router.get("/v1/log/checkpoint") { request, _ in try await latestCheckpoint(request) }
        router.get("/v1/log/checkpoints") { request, _ in try await checkpoints(request) }
        router.get("/v1/log/entries/:index") { request, context in try await entry(request, context) }
        router.get("/v1/log/keys") { request, _ in try await keyHistory(request) }
        router.get("/v1/log/proof/inclusion") { request, _ in try await inclusion(request) }
        router.get("/v1/log/proof/consistency") { request, _ in try await consistency(request) }
        router.post("/v1/admin/log/checkpoint") { _, context in
            try context.auth.requireAdmin()
            return JSONResponse.make(body: Self.json(try await checkpointer.checkpoint()))
        }
    }

    static let textHeaders = [("Cache-Control", "no-cache")]

    static func wantsText(_ request: Request) -> Bool {
        if let format = request.uri.queryParameters.get("format") { return format == "text" }
        guard let accept = request.headers[.accept] else { return false }
        return accept.contains("text/plain") && !accept.contains("application/json")
    }

    func info() async throws -> Response {
        let size = try await log.size()
        let latest = try await log.latestCheckpoint()
        let latestCosignatures = try await log.cosignatures(sizes: latest.map { [$0.size] } ?? [])
        let verifiers: [JSONValue] = checkpointer.verifierKeys(keys.current.manifest).map { k in
            ["kid": .string(JSONString(k.kid)), "status": .string(JSONString(k.status)), "verifierKey": .string(JSONString(k.verifier.encoded))]
        }
        return JSONResponse.make(body: [
            "origin": .string(JSONString(checkpointer.origin)), "size": .number(Double(size)),
            "latestCheckpoint": latest.map { Self.json($0, cosignatures: latestCosignatures[$0.size] ?? []) } ?? .null, "verifierKeys": .array(verifiers),
            "hashAlgorithm": "SHA-256 (RFC 6962 / RFC 9162 §2.1)",
            "witnesses": witnesses.map { w in .array(w.status.map(Self.json)) } ?? .array([]),
            "witnessQuorum": witnesses.map { .number(Double($0.quorum)) } ?? .null,
        ])
    }

    /// The latest signed checkpoint, as the note itself (text/plain).
    func latestCheckpoint(_ request: Request) async throws -> Response {
        guard let latest = try await log.latestCheckpoint() else {
            throw LedgerServerError(.notFound, "no checkpoint has been signed yet; retry in a few seconds")
        }
        return JSONResponse.bytes(try await log.cosignedNote(latest), contentType: "text/plain; charset=utf-8", headers: Self.textHeaders)
    }

    /// Checkpoints with a tree larger than `after`, oldest first.
    func checkpoints(_ request: Request) async throws -> Response {
        let q = QueryParameters(request)
        let after = try q.get("after", as: Int64.self) ?? -1
        let limit = try q.get("limit", default: 100, in: 1...1000)
        let page = try await log.checkpoints(after: after, limit: limit)
        let cosignatures = try await log.cosignatures(sizes: page.map(\.size))
        return JSONResponse.make(body: [
            "origin": .string(JSONString(checkpointer.origin)),
            "checkpoints": .array(page.map { Self.json($0, cosignatures: cosignatures[$0.size] ?? []) }),
            "next": page.count == limit ? .number(Double(page.last!.size)) : .null,
        ])
    }

    /// One entry: its fields and the exact bytes its leaf hash covers. Entries without an account (the
    /// node's key events) are public; an account's entries need its API key or the admin secret.
    func entry(_ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        guard let raw = context.parameters.get("index"), let index = Int64(raw), index >= 0, String(index) == raw else {
            throw LedgerServerError(.invalidRequest, "the entry index must be a non-negative decimal integer")
        }
        guard let entry = try await log.entry(index: index), try await mayRead(entry, context) else {
            throw LedgerServerError(.notFound, "no entry \(index) visible to this caller")
        }
        return JSONResponse.make(body: KeyHistoryDocument.entryJSON(entry))
    }

    /// Key events after `after` (at most `limit`, default 1000) with their leaf bytes, authorised or not
    /// (the reader folds them with its own pins); `next` pages on. For information, what this node's fold
    /// made of all of them.
    func keyHistory(_ request: Request) async throws -> Response {
        let q = QueryParameters(request)
        let after = try q.get("after", as: Int64.self) ?? -1
        let limit = try q.get("limit", default: 1000, in: 1...10_000)
        let events = try await log.keyEvents(after: after, limit: limit)
        var document = KeyHistoryDocument.document(nodeId: keys.nodeId, events: events).objectValue ?? JSONObject()
        document["next"] = events.count == limit ? .number(Double(events.last!.index)) : .null
        let history = keys.current.history
        document["keys"] = .array(history.keys.map { k in
            [
                "kid": .string(JSONString(k.kid)), "status": .string(JSONString(k.status)), "fingerprint": .string(JSONString(k.fingerprint)),
                "authorisedBy": .string(JSONString(k.authorisedBy)), "activationIndex": .number(Double(k.activationIndex)),
            ]
        })
        document["ignored"] = .array(history.ignored.map { .string(JSONString($0.description)) })
        document["ignoredCount"] = .number(Double(history.ignoredCount))
        return JSONResponse.make(body: .object(document))
    }

    /// An entry with an owner is shown to its owner and the operator only.
    func mayRead(_ entry: LedgerEntry, _ context: LedgerRequestContext) async throws -> Bool {
        guard let owner = entry.account else { return true }
        switch try await context.auth.caller() {
        case .admin: return true
        case .account(let principal): return principal.accountId == owner
        case .anonymous: return false
        }
    }

    /// `?index=&size=`: the inclusion proof of an entry. Without `size`, against the first checkpoint
    /// that covers the entry (404 until one is signed).
    func inclusion(_ request: Request) async throws -> Response {
        let q = QueryParameters(request)
        let index = try q.require("index", as: Int64.self)
        var checkpoint: StoredCheckpoint?
        let size: Int64
        if let given = try q.get("size", as: Int64.self) {
            size = given
        } else {
            guard let first = try await log.firstCheckpoint(covering: index) else {
                let head = try await log.size()
                if index >= head { throw LedgerServerError(.notFound, "the log has no entry \(index) (it has \(head))") }
                throw LedgerServerError(.notFound, "no checkpoint covers entry \(index) yet; retry in a few seconds")
            }
            checkpoint = first
            size = first.size
        }
        let (proof, root, leaf, signed) = try await log.inclusionProof(index: index, size: size)
        checkpoint = checkpoint ?? signed
        if let c = checkpoint { checkpoint?.note = try await log.cosignedNote(c) }
        if Self.wantsText(request) {
            guard let checkpoint else {
                throw LedgerServerError(.notFound, "no checkpoint was signed at size \(size); the text form needs one (omit size for the first covering checkpoint)")
            }
            var text = "c2sp.org/tlog-proof@v1\nindex \(index)\n"
            for h in proof { text += Base64.encode(h) + "\n" }
            text += "\n"
            return JSONResponse.bytes(Array(text.utf8) + checkpoint.note, contentType: "text/plain; charset=utf-8", headers: Self.textHeaders)
        }
        return JSONResponse.make(body: [
            "index": .number(Double(index)), "treeSize": .number(Double(size)), "leafHash": .string(JSONString(Base64.encode(leaf))),
            "rootHash": .string(JSONString(Base64.encode(root))), "proof": .array(proof.map { .string(JSONString(Base64.encode($0))) }),
            "checkpoint": checkpoint.map { .string(JSONString(String(decoding: $0.note, as: UTF8.self))) } ?? .null,
        ])
    }

    /// `?from=&to=`: the consistency proof between two tree sizes.
    func consistency(_ request: Request) async throws -> Response {
        let q = QueryParameters(request)
        let from = try q.require("from", as: Int64.self)
        let to = try q.require("to", as: Int64.self)
        var (proof, fromRoot, toRoot, fromCheckpoint, toCheckpoint) = try await log.consistencyProof(from: from, to: to)
        if let c = fromCheckpoint { fromCheckpoint?.note = try await log.cosignedNote(c) }
        if let c = toCheckpoint { toCheckpoint?.note = try await log.cosignedNote(c) }
        if Self.wantsText(request) {
            var text = "evidence-ledger/consistency-proof@v1\nold \(from)\nnew \(to)\n"
            for h in proof { text += Base64.encode(h) + "\n" }
            return JSONResponse.bytes(Array(text.utf8), contentType: "text/plain; charset=utf-8", headers: Self.textHeaders)
        }
        return JSONResponse.make(body: [
            "from": .number(Double(from)), "to": .number(Double(to)),
            "fromRootHash": .string(JSONString(Base64.encode(fromRoot))), "toRootHash": .string(JSONString(Base64.encode(toRoot))),
            "proof": .array(proof.map { .string(JSONString(Base64.encode($0))) }),
            "fromCheckpoint": fromCheckpoint.map { .string(JSONString(String(decoding: $0.note, as: UTF8.self))) } ?? .null,
            "toCheckpoint": toCheckpoint.map { .string(JSONString(String(decoding: $0.note, as: UTF8.self))) } ?? .null,
        ])
    }
}
