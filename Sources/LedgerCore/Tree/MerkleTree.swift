import CERKit

/// RFC 6962 / RFC 9162 Merkle tree computations over leaf hashes (pure; the reference for stored trees).
extension Merkle {
    /// The root of the tree over `leafHashes` (RFC 6962 §2.1 MTH); the empty tree's root is SHA-256("").
    public static func root(_ leafHashes: ArraySlice<[UInt8]>) -> [UInt8] {
        switch leafHashes.count {
        case 0: return ProtocolHash.sha256([])
        case 1: return leafHashes.first!
        default:
            let k = largestPowerOfTwo(below: leafHashes.count)
            let s = leafHashes.startIndex
            return nodeHash(root(leafHashes[s..<(s + k)]), root(leafHashes[(s + k)...]))
        }
    }

    /// The root of the tree over `leafHashes`.
    public static func root(_ leafHashes: [[UInt8]]) -> [UInt8] { root(leafHashes[...]) }

    /// The audit path of leaf `index` in the tree over `leafHashes` (RFC 6962 §2.1.1 PATH).
    public static func inclusionProof(index: Int, leafHashes: [[UInt8]]) -> [[UInt8]]? {
        guard index >= 0, index < leafHashes.count else { return nil }
        return path(index, leafHashes[...])
    }

    static func path(_ m: Int, _ d: ArraySlice<[UInt8]>) -> [[UInt8]] {
        guard d.count > 1 else { return [] }
        let k = largestPowerOfTwo(below: d.count)
        let s = d.startIndex
        if m < k { return path(m, d[s..<(s + k)]) + [root(d[(s + k)...])] }
        return path(m - k, d[(s + k)...]) + [root(d[s..<(s + k)])]
    }

    /// The consistency proof between the first `oldSize` leaves and all of `leafHashes` (RFC 6962 §2.1.2 PROOF).
    public static func consistencyProof(oldSize: Int, leafHashes: [[UInt8]]) -> [[UInt8]]? {
        guard oldSize >= 0, oldSize <= leafHashes.count else { return nil }
        guard oldSize > 0, oldSize < leafHashes.count else { return [] }
        return subproof(oldSize, leafHashes[...], true)
    }

    static func subproof(_ m: Int, _ d: ArraySlice<[UInt8]>, _ b: Bool) -> [[UInt8]] {
        let n = d.count
        if m == n { return b ? [] : [root(d)] }
        let k = largestPowerOfTwo(below: n)
        let s = d.startIndex
        if m <= k { return subproof(m, d[s..<(s + k)], b) + [root(d[(s + k)...])] }
        return subproof(m - k, d[(s + k)...], false) + [root(d[s..<(s + k)])]
    }

    /// Largest power of two strictly less than `n` (n ≥ 2).
    static func largestPowerOfTwo(below n: Int) -> Int {
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    /// RFC 9162 §2.1.3.2: true when `proof` shows that `leafHash` is leaf `index` of the tree of `size` with `root`.
    public static func verifyInclusion(index: Int, size: Int, leafHash: [UInt8], proof: [[UInt8]], root: [UInt8]) -> Bool {
        guard index >= 0, index < size, leafHash.count == 32, root.count == 32, proof.allSatisfy({ $0.count == 32 }) else { return false }
        var fn = index, sn = size - 1
        var r = leafHash
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// RFC 9162 §2.1.4.2: true when `proof` shows the tree of `size2` with `root2` extends the tree of
    /// `size1` with `root1`. Equal sizes need an empty proof and equal roots. A check from the empty tree
    /// proves nothing and is refused, as transparency-dev/merkle does.
    public static func verifyConsistency(size1: Int, size2: Int, proof: [[UInt8]], root1: [UInt8], root2: [UInt8]) -> Bool {
        guard size1 >= 1, size1 <= size2 else { return false }
        if size1 == size2 { return proof.isEmpty && root1 == root2 }
        guard root2.count == 32, root1.count == 32, let (fr, sr) = consistencyRoots(size1: size1, size2: size2, proof: proof, oldRoot: root1)
        else { return false }
        return fr == root1 && sr == root2
    }

    /// The two roots a consistency proof from `size1` to `size2` (1 ≤ size1 < size2) leads to (RFC 9162
    /// §2.1.4.2). When `size1` is a power of two the old root is itself the first step, `oldRoot`, and
    /// is returned unchanged. Nil when the proof has the wrong shape.
    public static func consistencyRoots(size1: Int, size2: Int, proof: [[UInt8]], oldRoot: [UInt8]?) -> (old: [UInt8], new: [UInt8])? {
        guard size1 >= 1, size1 < size2, !proof.isEmpty, proof.allSatisfy({ $0.count == 32 }) else { return nil }
        var path = proof
        if size1 & (size1 - 1) == 0 {  // an exact power of two: the old root is a node
            guard let oldRoot, oldRoot.count == 32 else { return nil }
            path.insert(oldRoot, at: 0)
        }
        var fn = size1 - 1, sn = size2 - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0], sr = path[0]
        for c in path.dropFirst() {
            if sn == 0 { return nil }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 ? (fr, sr) : nil
    }
}
