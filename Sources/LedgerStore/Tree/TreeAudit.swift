import CERKit
import LedgerCore

/// The tree half of `ledger verify`: rebuilds the tree from the leaves as they stream past, compares
/// every node it completes with the stored one, and checks each checkpoint against the rebuilt root
/// at its size, against its own signature, and against the next checkpoint (a consistency proof).
struct TreeAudit {
    private(set) var frontier = MerkleFrontier()
    /// False from the first missing or misplaced leaf on (the entry audit names it); node checks stop.
    private(set) var isAligned = true
    private(set) var nodesChecked: Int64 = 0
    let checkpoints: [StoredCheckpoint]
    private var nextCheckpoint = 0
    private var completed: [(id: MerkleNodeID, hash: [UInt8])] = []
    private let publicKeys: [(kid: String, key: [UInt8])]
    var problems: [LedgerProblem] = []

    init(checkpoints: [StoredCheckpoint], keys: [LedgerEntry]) {
        self.checkpoints = checkpoints
        publicKeys = NodeKeyHistory.manifest(nodeId: "", events: keys).keys.compactMap { k in k.publicKey.map { (k.kid, $0) } }
        for c in checkpoints { checkSignature(c) }
        checkRootsReached()
    }

    /// Feeds leaves in index order.
    mutating func add(_ leaves: [(index: Int64, leafHash: [UInt8])]) {
        for (index, leaf) in leaves where isAligned {
            guard index == frontier.size else {
                isAligned = false
                problems.append(LedgerProblem(index: index, what: "the tree cannot be rebuilt past a missing entry; tree checks stopped here"))
                return
            }
            completed += frontier.append(leafHash: leaf)
            checkRootsReached()
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

    private mutating func checkRootsReached() {
        while nextCheckpoint < checkpoints.count, checkpoints[nextCheckpoint].size <= frontier.size {
            let c = checkpoints[nextCheckpoint]
            nextCheckpoint += 1
            guard c.size == frontier.size else { continue }
            let root = frontier.root
            if c.rootHash != root {
                problems.append(LedgerProblem(
                    index: nil, what: "checkpoint \(c.size): its root is not the root of the log's first \(c.size) entries",
                    expected: Hex.encode(root), found: Hex.encode(c.rootHash)))
            }
        }
    }

    private mutating func checkSignature(_ c: StoredCheckpoint) {
        let name = "checkpoint \(c.size)"
        let note: SignedNote, body: Checkpoint
        do {
            note = try SignedNote(parsing: c.note)
            body = try Checkpoint(parsing: note.text)
        } catch {
            problems.append(LedgerProblem(index: nil, what: "\(name): the stored note cannot be read: \(error)"))
            return
        }
        if body.size != UInt64(c.size) || body.rootHash != c.rootHash {
            problems.append(LedgerProblem(index: nil, what: "\(name): the signed body's size or root differs from the stored columns"))
        }
        let verifiers = publicKeys.map { NoteVerifier(name: body.origin, publicKey: $0.key) }
        let verification = note.verify(with: verifiers)
        if !verification.invalid.isEmpty {
            problems.append(LedgerProblem(index: nil, what: "\(name): the signature of \(verification.invalid.joined(separator: ", ")) does not verify"))
        } else if !verification.isOpen {
            problems.append(LedgerProblem(index: nil, what: "\(name): no signature by a key the ledger records"))
        }
    }

    /// Checks what needs the whole log: checkpoints beyond the rebuilt tree, and consistency proofs
    /// (from the stored nodes) between each two consecutive checkpoints.
    mutating func checkConsistency(_ log: PostgresEventLog) async throws {
        for c in checkpoints where c.size > frontier.size && isAligned {
            problems.append(LedgerProblem(index: nil, what: "checkpoint \(c.size) is beyond the log's \(frontier.size) entries"))
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
