import CERKit

/// A stored node of the log's tree: the root of the perfect subtree over leaves
/// `[index << level, (index + 1) << level)`. Level 0 nodes are the leaf hashes themselves.
public struct MerkleNodeID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var level: Int
    public var index: Int64

    public init(level: Int, index: Int64) {
        self.level = level
        self.index = index
    }

    public static func < (a: Self, b: Self) -> Bool { (a.level, a.index) < (b.level, b.index) }
    public var description: String { "node \(level)/\(index)" }
}

/// The compact range of a tree: the roots of the perfect subtrees that cover its leaves, largest (leftmost)
/// first, one per set bit of the size. Appending leaves to it yields every node they complete, so a
/// sequencer can store the tree as it grows without reading it back.
public struct MerkleFrontier: Sendable, Equatable {
    public private(set) var size: Int64
    /// (level, hash) of each covering subtree, left to right; levels strictly decrease.
    public private(set) var subtrees: [(level: Int, hash: [UInt8])]

    public static func == (a: Self, b: Self) -> Bool {
        a.size == b.size && a.subtrees.count == b.subtrees.count
            && zip(a.subtrees, b.subtrees).allSatisfy { $0.level == $1.level && $0.hash == $1.hash }
    }

    public init() {
        size = 0
        subtrees = []
    }

    /// The frontier of a tree of `size` leaves, given the hashes of `MerkleFrontier.nodes(size:)`.
    public init?(size: Int64, hashes: [MerkleNodeID: [UInt8]]) {
        var subtrees: [(level: Int, hash: [UInt8])] = []
        for id in Self.nodes(size: size) {
            guard let hash = hashes[id], hash.count == 32 else { return nil }
            subtrees.append((id.level, hash))
        }
        self.size = size
        self.subtrees = subtrees
    }

    /// The nodes that make up the frontier of a tree of `size` leaves.
    public static func nodes(size: Int64) -> [MerkleNodeID] {
        precondition(size >= 0)
        var ids: [MerkleNodeID] = []
        var start: Int64 = 0
        for level in stride(from: 62, through: 0, by: -1) where size & (Int64(1) << level) != 0 {
            ids.append(MerkleNodeID(level: level, index: start >> level))
            start += Int64(1) << level
        }
        return ids
    }

    /// Appends one leaf; returns the interior nodes (level ≥ 1) it completes, lowest first.
    public mutating func append(leafHash: [UInt8]) -> [(id: MerkleNodeID, hash: [UInt8])] {
        var completed: [(id: MerkleNodeID, hash: [UInt8])] = []
        var level = 0
        var hash = leafHash
        var position = size  // index of the current node at `level`
        while let last = subtrees.last, last.level == level {
            subtrees.removeLast()
            hash = Merkle.nodeHash(last.hash, hash)
            level += 1
            position >>= 1
            completed.append((MerkleNodeID(level: level, index: position), hash))
        }
        subtrees.append((level, hash))
        size += 1
        return completed
    }

    /// The tree's root (RFC 6962 MTH); SHA-256 of nothing for the empty tree.
    public var root: [UInt8] {
        guard var r = subtrees.last?.hash else { return ProtocolHash.sha256([]) }
        for s in subtrees.dropLast().reversed() { r = Merkle.nodeHash(s.hash, r) }
        return r
    }
}

/// Proofs computed from stored perfect-subtree nodes rather than from all leaves. Each algorithm runs
/// twice: once to learn which nodes it needs (the structure never depends on hash values), then with
/// them. A proof for a tree of n leaves needs at most about 2·log2(n) nodes.
extension Merkle {
    public struct MissingNode: Error, Sendable, CustomStringConvertible {
        public var id: MerkleNodeID
        public init(id: MerkleNodeID) { self.id = id }
        public var description: String { "the tree has no stored \(id)" }
    }

    /// The nodes needed to compute what `body` computes.
    public static func nodesNeeded(_ body: ((MerkleNodeID) throws -> [UInt8]) throws -> Void) -> [MerkleNodeID] {
        var needed = Set<MerkleNodeID>()
        let zero = [UInt8](repeating: 0, count: 32)
        try? body { id in
            needed.insert(id)
            return zero
        }
        return needed.sorted()
    }

    /// The hash of leaves `[lo, hi)` as RFC 6962 defines it for a subtree of the tree.
    public static func rangeHash(_ lo: Int64, _ hi: Int64, node: (MerkleNodeID) throws -> [UInt8]) rethrows -> [UInt8] {
        let width = hi - lo
        precondition(width >= 1)
        if width & (width - 1) == 0 {
            let level = width.trailingZeroBitCount
            precondition(lo % width == 0, "RFC 6962 subtrees are aligned")
            return try node(MerkleNodeID(level: level, index: lo >> level))
        }
        let k = Int64(largestPowerOfTwo(below: Int(width)))
        return nodeHash(try rangeHash(lo, lo + k, node: node), try rangeHash(lo + k, hi, node: node))
    }

    /// The root of the tree of `size` leaves.
    public static func root(size: Int64, node: (MerkleNodeID) throws -> [UInt8]) rethrows -> [UInt8] {
        size == 0 ? ProtocolHash.sha256([]) : try rangeHash(0, size, node: node)
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 6962 §2.1.1), or nil when
    /// the index is not in the tree.
    public static func inclusionProof(index: Int64, size: Int64, node: (MerkleNodeID) throws -> [UInt8]) rethrows -> [[UInt8]]? {
        guard index >= 0, index < size else { return nil }
        return try storedPath(index, 0, size, node)
    }

    static func storedPath(_ m: Int64, _ lo: Int64, _ hi: Int64, _ node: (MerkleNodeID) throws -> [UInt8]) rethrows -> [[UInt8]] {
        guard hi - lo > 1 else { return [] }
        let k = Int64(largestPowerOfTwo(below: Int(hi - lo)))
        if m < lo + k { return try storedPath(m, lo, lo + k, node) + [try rangeHash(lo + k, hi, node: node)] }
        return try storedPath(m, lo + k, hi, node) + [try rangeHash(lo, lo + k, node: node)]
    }

    /// The consistency proof from the tree of `oldSize` leaves to the tree of `newSize` (RFC 6962
    /// §2.1.2), or nil when the sizes are not 0 ≤ old ≤ new. Empty when old is 0 or equals new.
    public static func consistencyProof(oldSize: Int64, newSize: Int64, node: (MerkleNodeID) throws -> [UInt8]) rethrows -> [[UInt8]]? {
        guard oldSize >= 0, oldSize <= newSize else { return nil }
        guard oldSize > 0, oldSize < newSize else { return [] }
        return try storedSubproof(oldSize, 0, newSize, true, node)
    }

    static func storedSubproof(
        _ m: Int64, _ lo: Int64, _ hi: Int64, _ b: Bool, _ node: (MerkleNodeID) throws -> [UInt8]
    ) rethrows -> [[UInt8]] {
        if lo + m == hi { return b ? [] : [try rangeHash(lo, hi, node: node)] }
        let k = Int64(largestPowerOfTwo(below: Int(hi - lo)))
        if m <= k { return try storedSubproof(m, lo, lo + k, b, node) + [try rangeHash(lo + k, hi, node: node)] }
        return try storedSubproof(m - k, lo + k, hi, false, node) + [try rangeHash(lo, lo + k, node: node)]
    }

    /// Every interior node (level ≥ 1) of the tree over `leafHashes` that is complete, by id: what a
    /// store must hold for a tree of that size. For audits and tests.
    public static func completeNodes(_ leafHashes: [[UInt8]]) -> [MerkleNodeID: [UInt8]] {
        var nodes: [MerkleNodeID: [UInt8]] = [:]
        var level = leafHashes
        var height = 0
        while level.count >= 2 {
            height += 1
            var next: [[UInt8]] = []
            next.reserveCapacity(level.count / 2)
            for i in stride(from: 0, to: level.count - 1, by: 2) {
                let h = nodeHash(level[i], level[i + 1])
                nodes[MerkleNodeID(level: height, index: Int64(i / 2))] = h
                next.append(h)
            }
            level = next
        }
        return nodes
    }
}
