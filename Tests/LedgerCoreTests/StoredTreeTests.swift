import CERKit
import LedgerCore
import LedgerTesting
import Testing

/// The stored-tree algorithms (frontier, proofs from perfect-subtree nodes) against the reference
/// implementation over all leaves, which the shared RFC 6962 vectors check in MerkleVectorTests.
@Suite struct StoredTreeTests {
    static let leaves = (0..<3000).map { i in Merkle.leafHash(Array("entry \(i)".utf8)) }

    /// The nodes a store holds for the first `size` leaves: level 0 from the leaves, the rest from the frontier.
    static func storedNodes(size: Int) -> (nodes: [MerkleNodeID: [UInt8]], frontier: MerkleFrontier) {
        var frontier = MerkleFrontier()
        var nodes: [MerkleNodeID: [UInt8]] = [:]
        for (i, leaf) in leaves.prefix(size).enumerated() {
            nodes[MerkleNodeID(level: 0, index: Int64(i))] = leaf
            for (id, hash) in frontier.append(leafHash: leaf) {
                #expect(nodes[id] == nil, "\(id) completed twice")
                nodes[id] = hash
            }
        }
        return (nodes, frontier)
    }

    @Test func theFrontierEmitsExactlyTheCompleteNodesAndTheRoot() {
        for size in [0, 1, 2, 3, 7, 8, 9, 255, 256, 257, 1000, 3000] {
            let (nodes, frontier) = Self.storedNodes(size: size)
            let tree = Array(Self.leaves.prefix(size))
            let interior = nodes.filter { $0.key.level > 0 }
            #expect(interior == Merkle.completeNodes(tree), "size \(size)")
            #expect(frontier.size == Int64(size))
            #expect(frontier.root == Merkle.root(tree), "size \(size)")
            // Reloading the frontier from stored nodes gives the same frontier.
            #expect(MerkleFrontier(size: Int64(size), hashes: nodes) == frontier)
            #expect(frontier.subtrees.count == size.nonzeroBitCount)
        }
    }

    @Test func proofsFromStoredNodesEqualTheReferenceAndVerify() throws {
        var random = SeededGenerator(seed: 0xC0FFEE)
        func next(_ bound: Int) -> Int { random.next(bound) }
        let (nodes, _) = Self.storedNodes(size: Self.leaves.count)
        let lookup: (MerkleNodeID) throws -> [UInt8] = { id in
            guard let h = nodes[id] else { throw Merkle.MissingNode(id: id) }
            return h
        }
        for _ in 0..<400 {
            let size = next(Self.leaves.count) + 1
            let tree = Array(Self.leaves.prefix(size))
            let root = try Merkle.root(size: Int64(size), node: lookup)
            #expect(root == Merkle.root(tree))
            let index = next(size)
            let proof = try Merkle.inclusionProof(index: Int64(index), size: Int64(size), node: lookup)
            #expect(proof == Merkle.inclusionProof(index: index, leafHashes: tree))
            #expect(Merkle.verifyInclusion(index: index, size: size, leafHash: tree[index], proof: proof ?? [], root: root))
            let needed = Merkle.nodesNeeded { node in _ = try Merkle.inclusionProof(index: Int64(index), size: Int64(size), node: node) }
            #expect(needed.count <= 2 * (Int64(size).bitWidth - Int64(size).leadingZeroBitCount) + 1, "O(log n) reads")

            let old = next(size) + 1
            let consistency = try Merkle.consistencyProof(oldSize: Int64(old), newSize: Int64(size), node: lookup)
            #expect(consistency == Merkle.consistencyProof(oldSize: old, leafHashes: tree), "\(old) → \(size)")
            let oldRoot = try Merkle.root(size: Int64(old), node: lookup)
            #expect(Merkle.verifyConsistency(size1: old, size2: size, proof: consistency ?? [], root1: oldRoot, root2: root))
            if var bad = consistency, !bad.isEmpty {
                bad[next(bad.count)][7] ^= 0x10
                #expect(!Merkle.verifyConsistency(size1: old, size2: size, proof: bad, root1: oldRoot, root2: root))
            }
        }
    }

    /// The property: in random trees of up to a few thousand leaves, every inclusion proof and
    /// every consistency proof between any two sizes verifies; any altered hash or index fails.
    @Test func everyProofOfRandomTreesVerifiesAndEveryAlterationFails() throws {
        var random = SeededGenerator(seed: 0xBADC0DE)
        func next(_ bound: Int) -> Int { random.next(bound) }
        let (nodes, _) = Self.storedNodes(size: Self.leaves.count)
        let lookup: (MerkleNodeID) -> [UInt8] = { nodes[$0]! }
        for size in [1, 2, 5, 64, 100, next(3000) + 1] {
            let root = Merkle.root(size: Int64(size), node: lookup)
            for index in 0..<size {
                let proof = Merkle.inclusionProof(index: Int64(index), size: Int64(size), node: lookup)!
                let leaf = Self.leaves[index]
                #expect(Merkle.verifyInclusion(index: index, size: size, leafHash: leaf, proof: proof, root: root))
                if size > 1 {
                    #expect(!Merkle.verifyInclusion(index: (index + 1 + next(size - 1)) % size, size: size, leafHash: leaf, proof: proof, root: root))
                }
                if !proof.isEmpty {
                    var bad = proof
                    bad[next(bad.count)][next(32)] ^= UInt8(1 << next(8))
                    #expect(!Merkle.verifyInclusion(index: index, size: size, leafHash: leaf, proof: bad, root: root))
                }
            }
            for old in 1...size {
                let oldRoot = Merkle.root(size: Int64(old), node: lookup)
                let proof = Merkle.consistencyProof(oldSize: Int64(old), newSize: Int64(size), node: lookup)!
                #expect(Merkle.verifyConsistency(size1: old, size2: size, proof: proof, root1: oldRoot, root2: root))
                if !proof.isEmpty {
                    var bad = proof
                    bad[next(bad.count)][next(32)] ^= UInt8(1 << next(8))
                    #expect(!Merkle.verifyConsistency(size1: old, size2: size, proof: bad, root1: oldRoot, root2: root))
                    #expect(!Merkle.verifyConsistency(size1: old == 1 ? 2 : old - 1, size2: size, proof: proof, root1: oldRoot, root2: root))
                }
            }
        }
    }

    @Test func aMissingNodeIsReportedNotInvented() {
        var (nodes, _) = Self.storedNodes(size: 300)
        nodes[MerkleNodeID(level: 5, index: 1)] = nil  // covers leaves 32..<64: a sibling on leaf 0's path
        #expect(throws: Merkle.MissingNode.self) {
            _ = try Merkle.inclusionProof(index: 0, size: 300, node: { id in
                guard let h = nodes[id] else { throw Merkle.MissingNode(id: id) }
                return h
            })
        }
    }
}

