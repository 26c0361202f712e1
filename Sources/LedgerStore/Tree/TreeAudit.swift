import CERKit
import LedgerCore

/// The tree half of `ledger verify`: rebuilds the tree from the leaves as they stream past, compares
/// every node it completes with the stored one, and checks each checkpoint against the rebuilt root
/// at its size, against its own signature, and against the next checkpoint (a consistency proof).
/// Trusted checkpoints (held outside the database) are checked the same way: their root must be the
/// root of the log's first entries, and the log must not be shorter than they are.
struct TreeAudit {
    private(set) var frontier = MerkleFrontier()
    /// False from the first missing or misplaced leaf on (the entry audit names it); node checks stop.
    private(set) var isAligned = true
    private(set) var nodesChecked: Int64 = 0
    let checkpoints: [StoredCheckpoint]
    private var nextCheckpoint = 0
    private var completed: [(id: MerkleNodeID, hash: [UInt8])] = []
    private let keys: KeyHistory
    private let origin: String
    /// Trusted checkpoints by size, with the name they are reported under.
    private let trusted: [(name: String, checkpoint: Checkpoint)]
    private var nextTrusted = 0
    var problems: [LedgerProblem] = []
    /// What does not make the log broken but an auditor should know.
    var warnings: [LedgerProblem] = []
    /// Stored checkpoints that opened with a valid key and whose root is the log's.
    private var proven: Set<Int64> = []
    /// Stored checkpoints signed only by keys that no longer count for them.
    private var noLongerCounting: [(size: Int64, what: String)] = []

    init(checkpoints: [StoredCheckpoint], keys: KeyHistory, origin: String, trusted: [(name: String, note: [UInt8])] = []) {
        self.checkpoints = checkpoints
        self.keys = keys
        self.origin = origin
        var opened: [(name: String, checkpoint: Checkpoint)] = []
        var problems: [LedgerProblem] = []
        for t in trusted {
            do {
                opened.append((t.name, try keys.openCheckpoint(t.note, origin: origin, lastEntryTime: nil)))
            } catch {
                // Still compared: the auditor holds it, but its signature is reported.
                if let body = try? Checkpoint(parsing: SignedNote(parsing: t.note).text) { opened.append((t.name, body)) }
                problems.append(LedgerProblem(index: nil, what: "trusted checkpoint \(t.name): \(error)"))
            }
        }
        self.trusted = opened.sorted { $0.checkpoint.size < $1.checkpoint.size }
        self.problems = problems
        checkRootsReached(lastEntryTime: nil)
    }

    /// Feeds entries in index order.
    mutating func add(_ leaves: [(index: Int64, leafHash: [UInt8], recordedAt: Int64)]) {
        for (index, leaf, recordedAt) in leaves where isAligned {
            guard index == frontier.size else {
                isAligned = false
                problems.append(LedgerProblem(index: index, what: "the tree cannot be rebuilt past a missing entry; tree checks stopped here"))
                return
            }
            completed += frontier.append(leafHash: leaf)
            checkRootsReached(lastEntryTime: recordedAt)
        }
    }

    /// The nodes completed since the last call, to be compared with the stored ones.
    mutating func takeCompleted() -> [(id: MerkleNodeID, hash: [UInt8])] {
        defer { completed = [] }
        return completed
    }

    mutating func compare(_ expected: [(id: MerkleNodeID, hash: [UInt8])], _ stored: [MerkleNodeID: [UInt8]]) {
        for (id, hash) in expected {
            nodesChecked += 1
            switch stored[id] {
            case nil: problems.append(LedgerProblem(index: nil, what: "tree \(id) is missing"))
            case let h? where h != hash:
                problems.append(LedgerProblem(
                    index: nil, what: "tree \(id) does not match the leaves it covers", expected: Hex.encode(hash), found: Hex.encode(h)))
            default: break
            }
        }
    }

    private mutating func checkRootsReached(lastEntryTime: Int64?) {
        while nextTrusted < trusted.count, trusted[nextTrusted].checkpoint.size <= UInt64(frontier.size) {
            let (name, c) = trusted[nextTrusted]
            nextTrusted += 1
            guard c.size == UInt64(frontier.size) else { continue }
            if c.rootHash != frontier.root {
                problems.append(LedgerProblem(
                    index: nil, what: "trusted checkpoint \(name) (\(c.size) entries): its root is not the root of the log's first \(c.size) entries",
                    expected: Hex.encode(c.rootHash), found: Hex.encode(frontier.root)))
            }
        }
        while nextCheckpoint < checkpoints.count, checkpoints[nextCheckpoint].size <= frontier.size {
            let c = checkpoints[nextCheckpoint]
            nextCheckpoint += 1
            guard c.size == frontier.size else { continue }
            let signed = checkSignature(c, lastEntryTime: lastEntryTime)
            let root = frontier.root
            if signed, c.rootHash == root { proven.insert(c.size) }
            if c.rootHash != root {
                problems.append(LedgerProblem(
                    index: nil, what: "checkpoint \(c.size): its root is not the root of the log's first \(c.size) entries",
                    expected: Hex.encode(root), found: Hex.encode(c.rootHash)))
            }
        }
    }

    /// The note must be readable, agree with the stored columns, and carry a signature by a key valid
    /// for it under the configured origin.
    @discardableResult
    private mutating func checkSignature(_ c: StoredCheckpoint, lastEntryTime: Int64?) -> Bool {
        let name = "checkpoint \(c.size)"
        let body: Checkpoint
        do {
            body = try Checkpoint(parsing: SignedNote(parsing: c.note).text)
        } catch {
            problems.append(LedgerProblem(index: nil, what: "\(name): the stored note cannot be read: \(error)"))
            return false
        }
        if body.size != UInt64(c.size) || body.rootHash != c.rootHash {
            problems.append(LedgerProblem(index: nil, what: "\(name): the signed body's size or root differs from the stored columns"))
        }
        do {
            _ = try keys.openCheckpoint(c.note, origin: origin, lastEntryTime: lastEntryTime)
            return true
        } catch where error.signedOnlyByKeysThatNoLongerCount {
            noLongerCounting.append((c.size, "\(name): \(error)"))
        } catch {
            problems.append(LedgerProblem(index: nil, what: "\(name): \(error)"))
        }
        return false
    }

    /// Checks what needs the whole log: checkpoints beyond the rebuilt tree, and consistency proofs
    /// (from the stored nodes) between each two consecutive checkpoints.
    mutating func checkConsistency(_ log: PostgresEventLog) async throws {
        for c in checkpoints where c.size > frontier.size && isAligned {
            problems.append(LedgerProblem(index: nil, what: "checkpoint \(c.size) is beyond the log's \(frontier.size) entries"))
            checkSignature(c, lastEntryTime: nil)
        }
        // A genuine checkpoint whose keys stopped counting (a revoked key, a key retired before its
        // entries) proves nothing; when a later checkpoint by a valid key proves the same tree, the log is
        // still intact and the old one is only worth a warning.
        for (size, what) in noLongerCounting {
            if let later = proven.filter({ $0 > size }).min() {
                warnings.append(LedgerProblem(index: nil, what: "\(what); checkpoint \(later), by a key valid for it, proves the same entries"))
            } else {
                problems.append(LedgerProblem(index: nil, what: "\(what), and no later checkpoint by a valid key proves its entries"))
            }
        }
        for (name, c) in trusted[nextTrusted...] where !isAligned {
            problems.append(LedgerProblem(
                index: nil, what: "trusted checkpoint \(name) (\(c.size) entries) could not be compared: the log could not be rebuilt that far"))
        }
        for (name, c) in trusted where c.size > UInt64(frontier.size) && isAligned {
            problems.append(LedgerProblem(
                index: nil,
                what: "the log has \(frontier.size) entries but trusted checkpoint \(name) shows it had \(c.size): entries were removed from its end (the log was rolled back)"))
        }
        for (a, b) in zip(checkpoints, checkpoints.dropFirst()) where a.size >= 1 {
            do {
                let proof = try await log.consistencyProof(from: a.size, to: b.size).proof
                if !Merkle.verifyConsistency(size1: Int(a.size), size2: Int(b.size), proof: proof, root1: a.rootHash, root2: b.rootHash) {
                    problems.append(LedgerProblem(index: nil, what: "checkpoints \(a.size) and \(b.size) are not consistent"))
                }
            } catch let error as TreeRangeError {
                problems.append(LedgerProblem(index: nil, what: "checkpoints \(a.size) and \(b.size): \(error)"))
            } catch let error as LedgerStoreError where error.code == .database {
                problems.append(LedgerProblem(index: nil, what: "checkpoints \(a.size) and \(b.size): \(error.message)"))
            }
        }
    }
}
