public import CERKit
public import LedgerCore
public import LedgerStore

/// Generating, rotating and revoking the node's signing keys: the private key goes to a file, the
/// public key and every status change are ledger events on `key:<kid>`, each authorised by a signature
/// (docs/entry-format.md, "Key events"): the first key is pinned (its fingerprint goes to the trust file
/// and to every server and auditor), a rotation is signed by the key it retires, a revocation by an
/// active key; an offline root key (`root`) may authorise any of them, which is how a lost key is replaced.
public struct NodeKeyAdministration: Sendable {
    public let nodeId: String
    public let store: NodeKeyStore
    public let log: PostgresEventLog
    /// Anchors configured besides the trust file.
    public let anchors: TrustAnchors
    public let clock: @Sendable () -> Int64

    public init(
        nodeId: String, store: NodeKeyStore, log: PostgresEventLog, anchors: TrustAnchors = TrustAnchors(),
        clock: @escaping @Sendable () -> Int64 = PostgresEventLog.wallClock
    ) {
        self.nodeId = nodeId
        self.store = store
        self.log = log
        self.anchors = anchors
        self.clock = clock
    }

    /// Everything the trust file and the configuration pin.
    public func effectiveAnchors() throws -> TrustAnchors { try store.trustAnchors().union(anchors) }

    /// The authorised keys, the ignored key events, and which private keys this machine holds.
    public func list() async throws -> (history: KeyHistory, anchors: TrustAnchors, localKids: Set<String>) {
        let anchors = try effectiveAnchors()
        let events = try await log.keyEvents()
        return (NodeKeyHistory.history(events: events, anchors: anchors, nodeId: nodeId), anchors, Set(store.kids()))
    }

    /// Creates and activates a key when none is active, and pins it in the trust file (a root key, when
    /// given, authorises it instead). Returns the key and its fingerprint.
    public func generate(kid requested: String? = nil, root: Ed25519SigningKey? = nil) async throws -> (key: KeyHistory.Key, fingerprint: String) {
        try requirePinned(root)
        let (history, anchors, _) = try await list()
        if let active = history.activeKey {
            throw LedgerServerError(.conflict, "key \(active.kid) is already active; use `evidence-ledger keys rotate` to replace it")
        }
        if anchors.isEmpty, root == nil, let earlier = history.ignored.first(where: { $0.type == NodeKeyHistory.activated }) {
            throw LedgerServerError(
                .conflict,
                "the ledger already has key events (entry \(earlier.index) activates \(earlier.kid ?? "a key")) but nothing is pinned here: run `evidence-ledger keys pin KID` where that key's file is, or give --pinned-key")
        }
        let kid = requested ?? Self.nextKid(after: history)
        let signing = try newKey(kid)
        if root == nil {
            // Pinned before it is used, so that this machine's servers accept it.
            do { try store.trust(TrustAnchors(pinnedKeys: [KeyFingerprint.of(signing.publicKey)])) } catch {
                store.destroy(kid: kid)
                throw error
            }
        }
        let now = clock()
        let body = NodeKeyHistory.activationBody(kid: kid, key: signing, validFrom: now, nodeId: nodeId, authorizer: root.map { .root($0) })
        let entry = try await append([activation(kid, body)], destroyingOnFailure: kid)
        return (try await authorised(kid, after: entry), KeyFingerprint.of(signing.publicKey))
    }

    /// Activates a new key and retires the active one in one atomic append. The retiring key signs both
    /// events (its private key must be here), or a root key does. The retired key stays published and keeps
    /// verifying what it signed; its validity ends `overlapSeconds` from now so that servers which have not
    /// yet re-read the keys still sign inside it. Its private key is kept for the overlap, during which it
    /// co-signs checkpoints; servers destroy it when the overlap ends.
    public func rotate(kid requested: String? = nil, overlapSeconds: Int64 = 60, root: Ed25519SigningKey? = nil) async throws
        -> (retired: String?, activated: KeyHistory.Key)
    {
        try requirePinned(root)
        let (history, _, _) = try await list()
        guard let old = history.activeKey else {
            throw LedgerServerError(.conflict, "no key is active; use `evidence-ledger keys generate` (with --authorize-with ROOT_KEY_FILE when keys existed before)")
        }
        let authorizer: NodeKeyHistory.Authorizer
        if let root {
            authorizer = .root(root)
        } else {
            guard let held = try store.load(kid: old.kid), held.publicKey == old.publicKey else {
                throw LedgerServerError(
                    .forbidden,
                    "a rotation is signed by the key it retires, and the private key of \(old.kid) is not in \(store.directory); run it where that key is, or authorise it with --authorize-with ROOT_KEY_FILE")
            }
            authorizer = .node(kid: old.kid, key: held)
        }
        let kid = requested ?? Self.nextKid(after: history)
        let signing = try newKey(kid)
        let now = clock()
        let group = [
            AppendRequest(
                subject: NodeKeyHistory.subject(kid: old.kid), type: NodeKeyHistory.retired,
                body: NodeKeyHistory.retirementBody(
                    kid: old.kid, validTo: now + overlapSeconds * 1000, nodeId: nodeId, successor: kid, authorizer: authorizer)),
            activation(kid, NodeKeyHistory.activationBody(kid: kid, key: signing, validFrom: now, nodeId: nodeId, supersedes: old.kid, authorizer: authorizer)),
        ]
        let entry = try await append(group, destroyingOnFailure: kid)
        if overlapSeconds <= 0 { store.destroy(kid: old.kid) }
        return (old.kid, try await authorised(kid, after: entry))
    }

    /// Revokes a key: verifiers refuse everything it signed, and every server destroys its private key.
    /// Signed by an active key held here (the revoked one itself included) or by a root key.
    public func revoke(kid: String, reason: String, root: Ed25519SigningKey? = nil) async throws {
        try requirePinned(root)
        let (history, _, localKids) = try await list()
        guard let key = history.key(kid) else { throw LedgerServerError(.notFound, "the ledger has no authorised key \(kid)") }
        if key.isRevoked { throw LedgerServerError(.conflict, "key \(kid) is already revoked") }
        let authorizer: NodeKeyHistory.Authorizer
        if let root {
            authorizer = .root(root)
        } else {
            let candidates = history.keys.filter { $0.isActive && localKids.contains($0.kid) }
            guard let signer = try candidates.lazy.compactMap({ k -> (String, Ed25519SigningKey)? in
                guard let held = try store.load(kid: k.kid), held.publicKey == k.publicKey else { return nil }
                return (k.kid, held)
            }).first else {
                throw LedgerServerError(
                    .forbidden, "a revocation is signed by an active key, and no active key's private key is in \(store.directory); use --authorize-with ROOT_KEY_FILE")
            }
            authorizer = .node(kid: signer.0, key: signer.1)
        }
        _ = try await log.append(AppendRequest(
            subject: NodeKeyHistory.subject(kid: kid), type: NodeKeyHistory.revoked,
            body: NodeKeyHistory.revocationBody(kid: kid, revokedAt: clock(), reason: reason, nodeId: nodeId, authorizer: authorizer)))
        store.destroy(kid: kid)
    }

    /// Restates, signed by a pinned root key, every key event written before key events were signed
    /// (no `authorization`), in ledger order and in one atomic append, so that a ledger from before
    /// pinning keeps its keys' history: retirements and revocations included. Events adopted already are
    /// skipped. Trusts the database as it is now: run it once, right after upgrading. Returns the indices
    /// of the events restated.
    public func adopt(root: Ed25519SigningKey) async throws -> [Int64] {
        try requirePinned(root)
        let events = try await log.keyEvents()
        let ignored = Set(NodeKeyHistory.history(events: events, anchors: try effectiveAnchors(), nodeId: nodeId).ignored.map(\.index))
        var group: [AppendRequest] = []
        var indices: [Int64] = []
        // Only what the fold ignores (a pinned first key's activation is authorised without a signature),
        // only unsigned events (a signed event that does not count is not the past's, it is an intrusion).
        for event in events where ignored.contains(event.index) && event.body["authorization"] == nil && event.body["proofOfPossession"] == nil {
            guard let body = NodeKeyHistory.adoptionBody(of: event, nodeId: nodeId, root: root) else { continue }
            if let named = event.body["nodeId"]?.stringValue, named != nodeId { continue }
            group.append(AppendRequest(subject: event.subject, type: event.type, body: body))
            indices.append(event.index)
        }
        if !group.isEmpty { _ = try await log.append(group: group) }
        return indices
    }

    private func newKey(_ kid: String) throws -> Ed25519SigningKey {
        if let problem = NodeKeyHistory.kidProblem(kid) { throw LedgerServerError(.badRequest, problem) }
        return try store.generate(kid: kid)
    }

    private func activation(_ kid: String, _ body: JSONValue) -> AppendRequest {
        AppendRequest(subject: NodeKeyHistory.subject(kid: kid), type: NodeKeyHistory.activated, body: body, expectedSubjectVersion: 0)
    }

    /// Appends the group; on any failure the new key's file is destroyed (nothing half-made remains).
    private func append(_ group: [AppendRequest], destroyingOnFailure kid: String) async throws -> LedgerEntry {
        do {
            return try await log.append(group: group).last!.entry
        } catch let refusal as AppendRefusal {
            store.destroy(kid: kid)
            if case .versionConflict = refusal { throw LedgerServerError(.conflict, "the ledger already has a key \(kid); key ids are never reused") }
            throw LedgerServerError(.badRequest, refusal.description)
        } catch {
            store.destroy(kid: kid)
            throw error
        }
    }

    /// The key as the fold sees it once its activation is in: proves the events just written are authorised.
    private func authorised(_ kid: String, after entry: LedgerEntry) async throws -> KeyHistory.Key {
        let (history, _, _) = try await list()
        if let key = history.key(kid) { return key }
        let reason = history.ignored.last { $0.kid == kid }?.reason ?? "it is not in the ledger"
        throw LedgerServerError(
            .conflict, "the ledger recorded key \(kid) at entry \(entry.index), but the trust anchors here do not authorise it: \(reason)")
    }

    /// Refuses a root key this machine does not pin: servers and auditors would ignore what it signs.
    private func requirePinned(_ root: Ed25519SigningKey?) throws {
        guard let root else { return }
        let fingerprint = KeyFingerprint.of(root.publicKey)
        guard try effectiveAnchors().rootKeys.contains(fingerprint) else {
            throw LedgerServerError(
                .forbidden, "the root key \(fingerprint) is not pinned here: add it with --root-key, LEDGER_ROOT_KEYS or a `root` line in \(store.trustPath), on every server too")
        }
    }

    /// `k1`, `k2`, …: one more than the highest numbered kid the ledger has seen, authorised or not.
    static func nextKid(after history: KeyHistory) -> String {
        let kids = history.keys.map(\.kid) + history.ignored.compactMap(\.kid)
        // Kids of inserted rows can be anything: numbers past a million are not ours.
        let numbers = kids.compactMap { k -> Int? in k.hasPrefix("k") ? Int(k.dropFirst()).flatMap { $0 < 1_000_000 ? $0 : nil } : nil }
        return "k\((numbers.max() ?? 0) + 1)"
    }
}
