public import CERKit
public import LedgerCore
public import LedgerStore
import Logging
import ServiceLifecycle

/// Signs checkpoints of the log: every `interval` while the tree grew, and on demand. A checkpoint is a
/// c2sp.org/tlog-checkpoint body (origin, size, base64 root) in a c2sp.org/signed-note signed by the
/// active key and by every retired key still inside its overlap. Checkpoints are stored append-only,
/// one per tree size; processes that race to sign the same size keep the first. Before signing, the
/// tree must be a consistent extension of the latest checkpoint this server remembers (`CheckpointMemory`,
/// outside the database); the new one is remembered once stored.
public final class CheckpointSigner: Sendable {
    public let origin: String
    let log: PostgresEventLog
    let keys: KeyRing
    /// The latest checkpoint signed from here, when a state directory is configured.
    public let memory: CheckpointMemory?
    let clock: @Sendable () -> Int64

    public init(
        origin: String, log: PostgresEventLog, keys: KeyRing, memory: CheckpointMemory?,
        clock: @escaping @Sendable () -> Int64 = PostgresEventLog.wallClock
    ) {
        self.origin = origin
        self.log = log
        self.keys = keys
        self.memory = memory
        self.clock = clock
    }

    /// Refuses (LOG_NOT_CONSISTENT, with a sentence) when the database's tree is not a consistent
    /// extension of the remembered checkpoint: shorter (entries removed from the end), a different root at
    /// the same size, or no consistency proof from it. Returns the remembered checkpoint's size.
    @discardableResult
    public func checkExtendsMemory(_ frontier: MerkleFrontier) async throws -> Int64? {
        guard let memory, let (_, remembered) = try memory.read() else { return nil }
        let path = memory.path
        let advice = "the log was rolled back, or this is another database; do not sign on it. If the database was replaced on purpose, move \(path) away"
        guard remembered.origin == origin else {
            throw LedgerServerError(.logNotConsistent, "\(path) remembers a checkpoint of origin \"\(remembered.origin)\", not \"\(origin)\"; \(advice)")
        }
        let size = Int64(clamping: remembered.size)
        if size == 0 { return size }
        guard frontier.size >= size else {
            throw LedgerServerError(
                .logNotConsistent,
                "the database's log has \(frontier.size) entries, but this server signed a checkpoint of \(size) entries (\(path)): \(advice)")
        }
        if frontier.size == size {
            guard frontier.root == remembered.rootHash else {
                throw LedgerServerError(.logNotConsistent, "the database's tree of \(size) entries has another root than the checkpoint in \(path): \(advice)")
            }
            return size
        }
        let proof = try await log.consistencyProof(from: size, to: frontier.size).proof
        guard Merkle.verifyConsistency(size1: Int(size), size2: Int(frontier.size), proof: proof, root1: remembered.rootHash, root2: frontier.root) else {
            throw LedgerServerError(
                .logNotConsistent,
                "the database's tree of \(frontier.size) entries does not extend the checkpoint of \(size) entries in \(path): \(advice)")
        }
        return size
    }

    /// The signed-note verifier keys of every key the node has used, for this log's origin.
    public func verifierKeys(_ manifest: NodeKeyManifest) -> [(kid: String, status: String, verifier: NoteVerifier)] {
        manifest.keys.compactMap { k in k.publicKey.map { (k.kid, k.status, NoteVerifier(name: origin, publicKey: $0)) } }
    }

    /// Signs and stores a checkpoint of the current tree unless the latest checkpoint already has its
    /// size; returns the checkpoint of the current size either way.
    @discardableResult
    public func checkpoint() async throws -> StoredCheckpoint {
        // The keys first: a rotation made elsewhere must not leave this server signing with a key that
        // no longer counts for what it signs.
        let snapshot = try await keys.refresh()
        let frontier = try await log.frontier()
        let remembered = try await checkExtendsMemory(frontier)
        if let existing = try await log.checkpoint(size: frontier.size) {
            // An idle log finds the checkpoint it remembers already: nothing to read or verify again.
            if remembered != existing.size { try await remember(existing, frontier, snapshot.history) }
            return existing
        }
        let signers = try snapshot.checkpointSigners.map { try NoteSigner(name: origin, key: $0.key) }
        guard !signers.isEmpty else { throw LedgerServerError(.noActiveKey, snapshot.signerProblem ?? "the node has no active signing key") }
        let body = Checkpoint(origin: origin, size: UInt64(frontier.size), rootHash: frontier.root)
        let note = try SignedNote.sign(text: body.text, signers: signers)
        let stored = StoredCheckpoint(size: frontier.size, rootHash: frontier.root, note: note, signedAt: clock())
        if try await log.storeCheckpoint(stored) {
            try memory?.remember(note, size: body.size)
            return stored
        }
        let kept = try await log.checkpoint(size: frontier.size) ?? stored
        try await remember(kept, frontier, snapshot.history)
        return kept
    }

    /// Remembers a checkpoint another process stored, once it opens with a key valid for it and is the
    /// tree's own: the table is writable by anyone with the application's credentials, and a forged row
    /// must neither become this server's memory nor pass silently.
    func remember(_ c: StoredCheckpoint, _ frontier: MerkleFrontier, _ history: KeyHistory) async throws {
        let lastEntryTime = c.size > 0 ? try await log.entry(index: c.size - 1)?.recordedAt : nil
        let body: Checkpoint
        do {
            body = try history.openCheckpoint(c.note, origin: origin, lastEntryTime: lastEntryTime)
        } catch {
            throw LedgerServerError(
                .logNotConsistent, "the stored checkpoint of \(c.size) entries does not open with the node's keys (\(error)): it was written without them")
        }
        guard body.size == UInt64(frontier.size), body.rootHash == frontier.root, c.rootHash == frontier.root else {
            throw LedgerServerError(.logNotConsistent, "the stored checkpoint of \(c.size) entries is not of the database's tree")
        }
        try memory?.remember(c.note, size: body.size)
    }
}
