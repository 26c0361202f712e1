public import CERKit
import Foundation
public import LedgerCore
public import LedgerStore
public import Logging
import Synchronization

/// Asks witnesses (c2sp.org/tlog-witness) to cosign the node's latest checkpoint, and stores the
/// cosignatures they send (append-only, `ledger_cosignatures`). A witness is configured as
/// `NAME+KEYID+KEY@URL` (its cosignature verifier key and its submission prefix). The node remembers
/// each witness's latest cosigned size in memory; when it does not know it (a restart) or the witness
/// has moved on, the witness's 409 names its size and the node proves consistency from there. A witness
/// that holds another tree at the node's size (a split view), or refuses the node's proof, is reported:
/// logged as an error, counted in `/metrics`, and shown in `GET /v1/log`.
public final class CheckpointWitnesses: Sendable {
    public struct Witness: Sendable, Equatable {
        public var verifier: NoteVerifier
        /// The submission prefix: `add-checkpoint` is appended.
        public var url: String

        /// Parses `<name>+<key id>+<base64(0x04 || key)>@<url>`.
        public init(parsing spec: String) throws(SignedNoteError) {
            guard let plus = spec.lastIndex(of: "+"), let at = spec[plus...].firstIndex(of: "@") else {
                throw SignedNoteError("a witness is <name>+<key id>+<key>@<url>")
            }
            let key = try NoteVerifier(parsing: String(spec[..<at]))
            guard key.type == NoteVerifier.cosignatureV1 else { throw SignedNoteError("a witness key has type 0x04 (a tlog cosignature key)") }
            let url = String(spec[spec.index(after: at)...])
            guard url.hasPrefix("http://") || url.hasPrefix("https://"), URL(string: url) != nil else {
                throw SignedNoteError("the witness URL \(url.prefix(80)) is not an http:// or https:// URL")
            }
            verifier = key
            self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
    }

    /// What the node knows of one witness.
    public struct Status: Sendable {
        public var witness: Witness
        /// The latest size the witness said it cosigned (nil: not asked yet).
        public var knownSize: Int64?
        public var lastCosignedSize: Int64?
        public var lastProblem: String?
        public var splitView = false
        public var refusals = 0
    }

    public let witnesses: [Witness]
    public let quorum: Int
    let log: PostgresEventLog
    let timeout: Duration
    let logger: Logger
    let metrics: ServerMetrics?
    private let states: Mutex<[Status]>

    public init(witnesses: [Witness], quorum: Int, log: PostgresEventLog, timeout: Duration, logger: Logger, metrics: ServerMetrics?) {
        self.witnesses = witnesses
        self.quorum = quorum
        self.log = log
        self.timeout = timeout
        self.logger = logger
        self.metrics = metrics
        states = Mutex(witnesses.map { Status(witness: $0) })
    }

    public var status: [Status] { states.withLock { $0 } }

    /// Asks every witness that has not cosigned the latest checkpoint yet. Returns how many witnesses
    /// have cosigned it now.
    @discardableResult
    public func witnessLatest() async throws -> Int {
        guard let checkpoint = try await log.latestCheckpoint(), checkpoint.size > 0 else { return 0 }
        let have = Set((try await log.cosignatures(sizes: [checkpoint.size])[checkpoint.size] ?? []).map(\.witness))
        var cosigned = 0
        for (i, witness) in witnesses.enumerated() {
            if have.contains(witness.verifier.name) {
                cosigned += 1
                continue
            }
            if try await ask(i, witness, checkpoint) { cosigned += 1 }
        }
        if cosigned < quorum {
            logger.warning(
                "the latest checkpoint lacks its witness quorum",
                metadata: ["ledger.size": "\(checkpoint.size)", "ledger.cosigned": "\(cosigned)", "ledger.quorum": "\(quorum)"])
        }
        metrics?.witnessed(size: checkpoint.size, cosigned: cosigned, quorum: quorum)
        return cosigned
    }

    /// One witness, one checkpoint: at most three rounds (the first may learn the witness's size).
    func ask(_ i: Int, _ witness: Witness, _ checkpoint: StoredCheckpoint) async throws -> Bool {
        var tried: Set<Int64> = []
        for _ in 0..<3 {
            let old = min(states.withLock { $0[i].knownSize } ?? 0, checkpoint.size)
            tried.insert(old)
            let proof = old > 0 && old < checkpoint.size ? try await log.consistencyProof(from: old, to: checkpoint.size).proof : []
            let request = AddCheckpointRequest(oldSize: UInt64(old), proof: proof, checkpoint: checkpoint.note)
            let reply: OutboundHTTP.Reply
            do {
                reply = try await OutboundHTTP.send(
                    "POST", witness.url + "/add-checkpoint", body: request.body, headers: [("Content-Type", "text/plain; charset=utf-8")],
                    timeout: timeout, maxReplyBytes: 64 * 1024)
            } catch {
                report(i, "could not reach the witness: \(error)", refusal: false)
                return false
            }
            let text = String(decoding: reply.body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            switch reply.status {
            case 200:
                let lines = Self.cosignatureLines(reply.body, checkpoint: checkpoint, witness: witness.verifier)
                guard !lines.isEmpty else {
                    report(i, "the witness answered 200 without a cosignature that verifies with its key", refusal: true)
                    return false
                }
                try await log.storeCosignatures(lines.map {
                    StoredCosignature(size: checkpoint.size, witness: witness.verifier.name, keyId: witness.verifier.keyId, line: $0, receivedAt: PostgresEventLog.wallClock())
                })
                states.withLock {
                    $0[i].knownSize = checkpoint.size
                    $0[i].lastCosignedSize = checkpoint.size
                    $0[i].lastProblem = nil
                }
                return true
            case 409:
                guard let size = Int64(text), size >= 0 else {
                    report(i, "the witness answered 409 without its size (\(text.prefix(120)))", refusal: true)
                    return false
                }
                if size > checkpoint.size {
                    // Another process of this node may have a newer checkpoint witnessed; the next run asks with it.
                    states.withLock { $0[i].knownSize = size }
                    report(i, "the witness has cosigned a tree of \(size) entries, larger than this checkpoint of \(checkpoint.size)", refusal: true)
                    return false
                }
                if tried.contains(size) {
                    // It holds a checkpoint of this size whose root differs from ours, or refuses our old size again.
                    let splitView = size == checkpoint.size || size == old
                    report(i, "the witness refuses the checkpoint of \(checkpoint.size) entries (it holds size \(size)): \(splitView ? "a split view: it cosigned another tree" : "no progress")", refusal: true, splitView: splitView)
                    return false
                }
                states.withLock { $0[i].knownSize = size }
            case 422 where old > 0:
                // Our own consistency proof from the witness's size fails only if the tree it cosigned at that
                // size is not a prefix of ours: a fork.
                report(i, "the witness refuses the proof from its size \(old) to \(checkpoint.size): a split view, the tree it cosigned at \(old) entries is not a prefix of this log (\(text.prefix(160)))", refusal: true, splitView: true)
                return false
            default:
                report(i, "the witness refused the checkpoint of \(checkpoint.size) entries with HTTP \(reply.status): \(text.prefix(200))", refusal: true)
                return false
            }
        }
        report(i, "the witness did not cosign after three rounds", refusal: true)
        return false
    }

    func report(_ i: Int, _ problem: String, refusal: Bool, splitView: Bool = false) {
        let (name, repeated) = states.withLock { s -> (String, Bool) in
            let repeated = s[i].lastProblem == problem
            s[i].lastProblem = problem
            if refusal { s[i].refusals += 1 }
            if splitView { s[i].splitView = true }
            return (s[i].witness.verifier.name, repeated)
        }
        metrics?.witnessRefusal(witness: name, splitView: splitView, counts: refusal)
        // The same problem at every interval is logged once, until it changes or the witness cosigns again.
        if repeated { return }
        if splitView {
            logger.critical("witness reports a split view", metadata: ["ledger.witness": "\(name)", "ledger.problem": "\(problem)"])
        } else {
            logger.error("witness did not cosign", metadata: ["ledger.witness": "\(name)", "ledger.problem": "\(problem)"])
        }
    }

    /// The lines of a 200 answer that are cosignatures by `witness` over `checkpoint` and verify.
    static func cosignatureLines(_ body: [UInt8], checkpoint: StoredCheckpoint, witness: NoteVerifier) -> [String] {
        var lines: [String] = []
        for raw in body.split(separator: 0x0A) {
            let line = Array(raw) + [0x0A]
            guard let note = try? SignedNote(parsing: checkpoint.note + line), let own = note.signatures.last,
                own.name == witness.name, own.keyId == witness.keyId
            else { continue }
            // The note's own signatures are ignored (not the witness's keys); only the new line counts.
            let verification = SignedNote(text: note.text, signatures: [own]).verify(with: [witness])
            if verification.isOpen { lines.append(String(decoding: line, as: UTF8.self)) }
        }
        return lines
    }

    /// The periodic service: after the checkpointer, every `interval`.
    public func service(interval: Duration) -> PeriodicService {
        PeriodicService(every: interval, logger: logger, what: "ask the witnesses to cosign the latest checkpoint", startsAfterInterval: true) {
            try await self.witnessLatest()
        }
    }
}
