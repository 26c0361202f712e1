public import CERKit
public import LedgerCore
public import LedgerStore
import Logging
import ServiceLifecycle

/// Signs checkpoints of the log: every `interval` while the tree grew, and on demand. A checkpoint is a
/// c2sp.org/tlog-checkpoint body (origin, size, base64 root) in a c2sp.org/signed-note signed by the
/// active key and by every retired key still inside its overlap. Checkpoints are stored append-only,
/// one per tree size; processes that race to sign the same size keep the first.
public final class CheckpointSigner: Sendable {
    public let origin: String
    let log: PostgresEventLog
    let keys: KeyRing
    let clock: @Sendable () -> Int64

    public init(origin: String, log: PostgresEventLog, keys: KeyRing, clock: @escaping @Sendable () -> Int64 = PostgresEventLog.wallClock) {
        self.origin = origin
        self.log = log
        self.keys = keys
        self.clock = clock
    }

    /// The signed-note verifier keys of every key the node has used, for this log's origin.
    public func verifierKeys(_ manifest: NodeKeyManifest) -> [(kid: String, status: String, verifier: NoteVerifier)] {
        manifest.keys.compactMap { k in k.publicKey.map { (k.kid, k.status, NoteVerifier(name: origin, publicKey: $0)) } }
    }

    /// Signs and stores a checkpoint of the current tree unless the latest checkpoint already has its
    /// size; returns the checkpoint of the current size either way.
    @discardableResult
    public func checkpoint() async throws -> StoredCheckpoint {
        let frontier = try await log.frontier()
        if let existing = try await log.checkpoint(size: frontier.size) { return existing }
        let signers = try keys.current.checkpointSigners.map { try NoteSigner(name: origin, key: $0.key) }
        guard !signers.isEmpty else { throw LedgerServerError(.noActiveKey, keys.current.signerProblem ?? "the node has no active signing key") }
        let body = Checkpoint(origin: origin, size: UInt64(frontier.size), rootHash: frontier.root)
        let note = try SignedNote.sign(text: body.text, signers: signers)
        let stored = StoredCheckpoint(size: frontier.size, rootHash: frontier.root, note: note, signedAt: clock())
        if try await log.storeCheckpoint(stored) { return stored }
        return try await log.checkpoint(size: frontier.size) ?? stored
    }
}
