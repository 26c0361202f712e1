public import CERKit
import LedgerCore
public import LedgerStore

/// Generating, rotating and revoking the node's signing keys: the private key goes to a file, the
/// public key and every status change are ledger events on `key:<kid>`.
public struct NodeKeyAdministration: Sendable {
    public let nodeId: String
    public let store: NodeKeyStore
    public let log: PostgresEventLog
    public let clock: @Sendable () -> Int64

    public init(nodeId: String, store: NodeKeyStore, log: PostgresEventLog, clock: @escaping @Sendable () -> Int64 = PostgresEventLog.wallClock) {
        self.nodeId = nodeId
        self.store = store
        self.log = log
        self.clock = clock
    }

    /// Every key the ledger knows, with whether this machine holds its private key.
    public func list() async throws -> (manifest: NodeKeyManifest, localKids: Set<String>) {
        let events = try await log.keyEvents()
        return (NodeKeyHistory.manifest(nodeId: nodeId, events: events), Set(store.kids()))
    }

    /// Creates and activates the first key. Refuses when a key is already active (use `rotate`).
    public func generate(kid requested: String? = nil) async throws -> NodeKeyManifest.Key {
        let (manifest, _) = try await list()
        if let active = manifest.activeKid {
            throw LedgerServerError(.conflict, "key \(active) is already active; use `evidence-ledger keys rotate` to replace it")
        }
        return try await activate(kid: requested ?? Self.nextKid(after: manifest), retiring: nil)
    }

    /// Activates a new key and retires the active one in one atomic append. The retired key stays
    /// published and keeps verifying what it signed; its validity ends `overlapSeconds` from now so
    /// that servers which have not yet re-read the keys still sign inside it. Its private key is kept for
    /// the overlap, during which it co-signs checkpoints; servers destroy it when the overlap ends.
    public func rotate(kid requested: String? = nil, overlapSeconds: Int64 = 60) async throws -> (retired: String?, activated: NodeKeyManifest.Key) {
        let (manifest, _) = try await list()
        let old = manifest.activeKid
        let key = try await activate(kid: requested ?? Self.nextKid(after: manifest), retiring: old.map { ($0, overlapSeconds) })
        if let old, overlapSeconds <= 0 { store.destroy(kid: old) }
        return (old, key)
    }

    /// Revokes a key: verifiers refuse everything it signed. Its private key is destroyed.
    public func revoke(kid: String, reason: String) async throws {
        let (manifest, _) = try await list()
        guard let key = manifest.keys.first(where: { $0.kid == kid }) else {
            throw LedgerServerError(.notFound, "the ledger has no key \(kid)")
        }
        if key.isRevoked { throw LedgerServerError(.conflict, "key \(kid) is already revoked") }
        _ = try await log.append(AppendRequest(
            subject: NodeKeyHistory.subject(kid: kid), type: NodeKeyHistory.revoked,
            body: NodeKeyHistory.revocationBody(kid: kid, revokedAt: clock(), reason: reason)))
        store.destroy(kid: kid)
    }

    private func activate(kid: String, retiring: (kid: String, overlapSeconds: Int64)?) async throws -> NodeKeyManifest.Key {
        if let problem = NodeKeyHistory.kidProblem(kid) { throw LedgerServerError(.badRequest, problem) }
        let signing = try store.generate(kid: kid)
        let now = clock()
        var group: [AppendRequest] = []
        if let retiring {
            group.append(AppendRequest(
                subject: NodeKeyHistory.subject(kid: retiring.kid), type: NodeKeyHistory.retired,
                body: NodeKeyHistory.retirementBody(kid: retiring.kid, validTo: now + retiring.overlapSeconds * 1000)))
        }
        group.append(AppendRequest(
            subject: NodeKeyHistory.subject(kid: kid), type: NodeKeyHistory.activated,
            body: NodeKeyHistory.activationBody(kid: kid, publicKey: signing.publicKey, validFrom: now, nodeId: nodeId),
            expectedSubjectVersion: 0))
        do {
            _ = try await log.append(group: group)
        } catch let refusal as AppendRefusal {
            store.destroy(kid: kid)
            if case .versionConflict = refusal { throw LedgerServerError(.conflict, "the ledger already has a key \(kid); key ids are never reused") }
            throw LedgerServerError(.badRequest, refusal.description)
        } catch {
            store.destroy(kid: kid)
            throw error
        }
        return NodeKeyManifest.Key(
            kid: kid, algorithm: "Ed25519", status: "active", isRevoked: false, validFrom: now, validTo: nil, publicKey: signing.publicKey,
            formatProblem: nil)
    }

    /// `k1`, `k2`, …: one more than the highest numbered kid so far.
    static func nextKid(after manifest: NodeKeyManifest) -> String {
        let numbers = manifest.keys.compactMap { k -> Int? in k.kid.hasPrefix("k") ? Int(k.kid.dropFirst()) : nil }
        return "k\((numbers.max() ?? 0) + 1)"
    }
}
