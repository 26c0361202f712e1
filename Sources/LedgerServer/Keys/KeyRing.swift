public import CERKit
public import LedgerCore
public import LedgerStore
import Synchronization

/// The node's keys as the authorised key events make them (`NodeKeyHistory`, checked against the trust
/// anchors held outside the database), plus the private key of the active one (from its file). Every
/// server process re-reads the key events periodically, so a rotation made anywhere reaches all; an
/// unauthorised key event is ignored and reported. A key the ledger revokes has its local file destroyed.
public final class KeyRing: Sendable {
    /// A key able to sign now.
    public struct Signer: Sendable {
        public var kid: String
        public var key: Ed25519SigningKey
    }

    /// What the ring knows at one moment.
    public struct Snapshot: Sendable {
        /// The authorised keys and the key events that were ignored.
        public var history: KeyHistory
        public var manifest: NodeKeyManifest
        public var signer: Signer?
        /// Retired keys still inside their overlap whose private key this machine holds: they co-sign
        /// checkpoints, so verifiers that know only the old key keep trusting the log during a rotation.
        public var cosigners: [Signer] = []
        /// The keys that sign a checkpoint: the active one, then the co-signers.
        public var checkpointSigners: [Signer] { (signer.map { [$0] } ?? []) + cosigners }
        /// The published manifest document and its strong ETag.
        public var document: [UInt8]
        public var etag: String
        /// Why the active key cannot sign (its file is missing or unreadable), if so.
        public var signerProblem: String?
    }

    public let nodeId: String
    public let store: NodeKeyStore
    /// What authorises key events.
    public let anchors: TrustAnchors
    private let log: PostgresEventLog
    private let state: Mutex<Snapshot>
    private let clock: @Sendable () -> Int64

    public init(
        nodeId: String, store: NodeKeyStore, anchors: TrustAnchors, log: PostgresEventLog,
        clock: @escaping @Sendable () -> Int64 = PostgresEventLog.wallClock
    ) {
        self.clock = clock
        self.nodeId = nodeId
        self.store = store
        self.anchors = anchors
        self.log = log
        state = Mutex(Self.snapshot(KeyHistory(anchors: anchors, nodeId: nodeId), nodeId: nodeId, signer: nil, problem: "keys not loaded yet"))
    }

    public var current: Snapshot { state.withLock { $0 } }

    /// Re-reads the key events and loads the active key's private key if it changed.
    @discardableResult
    public func refresh() async throws -> Snapshot {
        // Incremental: only the events after the last one folded are read and verified, in pages, so a
        // flood of inserted key rows costs each server one pass, not one per refresh.
        let previous = current
        var history = previous.history
        while true {
            let page = try await log.keyEvents(after: history.lastIndex, limit: 10_000)
            history.fold(page)
            if page.count < 10_000 { break }
        }
        let manifest = history.manifest(nodeId: nodeId)
        for key in history.keys where key.isRevoked { store.destroy(kid: key.kid) }
        var signer: Signer? = nil
        var problem: String? = nil
        if let kid = manifest.activeKid, let publicKey = manifest.keys.first(where: { $0.kid == kid })?.publicKey {
            if let held = previous.signer, held.kid == kid {
                signer = held
            } else {
                do {
                    if let key = try store.load(kid: kid) {
                        if key.publicKey == publicKey {
                            signer = Signer(kid: kid, key: key)
                        } else {
                            problem = "the key file for \(kid) does not match the public key the ledger recorded for it"
                        }
                    } else {
                        problem = "no private key file for the active key \(kid) in \(store.directory)"
                    }
                } catch {
                    problem = error.description
                }
            }
        } else if anchors.isEmpty {
            problem = "no trust anchor is configured, so no key event counts: give the first key's fingerprint (printed by `evidence-ledger keys generate`) with --pinned-key or LEDGER_PINNED_KEYS, or run `evidence-ledger keys pin KID` where its key file is"
        } else if history.keys.isEmpty, let first = history.ignored.first {
            problem = "no key event is authorised by the pinned keys (\(first)); check --pinned-key"
        } else {
            problem = "the node has no active signing key; run `evidence-ledger keys generate`"
        }
        var next = Self.snapshot(history, nodeId: nodeId, signer: signer, problem: problem)
        next.cosigners = cosigners(manifest, previous: previous)
        // Two refreshes may race (the periodic one, one before a checkpoint); the further one wins.
        return state.withLock { current in
            if next.history.lastIndex >= current.history.lastIndex { current = next }
            return current
        }
    }

    /// Loads the retired keys still inside their overlap; destroys the private keys of those past it.
    private func cosigners(_ manifest: NodeKeyManifest, previous: Snapshot) -> [Signer] {
        let now = clock()
        var out: [Signer] = []
        for key in manifest.keys where key.kid != manifest.activeKid && !key.isRevoked {
            guard let validTo = key.validTo, let publicKey = key.publicKey else { continue }
            if validTo <= now {
                store.destroy(kid: key.kid)
                continue
            }
            if let held = previous.cosigners.first(where: { $0.kid == key.kid }) {
                out.append(held)
            } else if let loaded = try? store.load(kid: key.kid), loaded.publicKey == publicKey {
                out.append(Signer(kid: key.kid, key: loaded))
            }
        }
        return out
    }

    static func snapshot(_ history: KeyHistory, nodeId: String, signer: Signer?, problem: String?) -> Snapshot {
        let manifest = history.manifest(nodeId: nodeId)
        let document = (try? CanonicalJSON.encode(manifest.document(), profile: .nexartV1)) ?? Array("{}".utf8)
        let etag = "\"" + String(Hex.encode(ProtocolHash.sha256(document)).prefix(32)) + "\""
        return Snapshot(
            history: history, manifest: manifest, signer: signer, document: document, etag: etag, signerProblem: signer == nil ? problem : nil)
    }

    /// The signer, or a 503 naming why there is none.
    public func requireSigner() throws(LedgerServerError) -> Signer {
        let snapshot = current
        guard let signer = snapshot.signer else {
            throw LedgerServerError(.noActiveKey, snapshot.signerProblem ?? "the node has no active signing key")
        }
        return signer
    }
}
