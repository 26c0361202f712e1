import Synchronization
import CERKit
public import LedgerCore

/// A signed checkpoint as stored: the tree size, its root and the signed note (c2sp.org/signed-note
/// over a c2sp.org/tlog-checkpoint body).
public struct StoredCheckpoint: Sendable, Equatable {
    public var size: Int64
    public var rootHash: [UInt8]
    public var note: [UInt8]
    /// Milliseconds since the epoch.
    public var signedAt: Int64

    public init(size: Int64, rootHash: [UInt8], note: [UInt8], signedAt: Int64) {
        self.size = size
        self.rootHash = rootHash
        self.note = note
        self.signedAt = signedAt
    }
}

/// Why a proof cannot be made for the requested sizes.
public struct TreeRangeError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension PostgresEventLog {
    // MARK: The tree

    /// The tree at the current head: its size and compact range, read in one transaction.
    public func frontier() async throws -> MerkleFrontier {
        try await pool.withConnection { c in
            try c.withTransaction {
                try TreeStorage.loadFrontier(size: try c.headSize(), on: c)
            }
        }
    }

    /// Runs `compute` over stored nodes: first learns which nodes it needs, takes the high ones from the
    /// cache, then reads the rest in one statement together with the head (sizes beyond it are refused)
    /// and the checkpoints of `sizes`.
    func withStoredNodes<T: Sendable>(
        upTo size: Int64, checkpoints sizes: [Int64] = [], _ compute: @escaping @Sendable ((MerkleNodeID) throws -> [UInt8]) throws -> T
    ) async throws -> (value: T, checkpoints: [Int64: StoredCheckpoint]) {
        let needed = Merkle.nodesNeeded { node in _ = try compute(node) }
        var known: [MerkleNodeID: [UInt8]] = [:]
        nodeCache.withLock { cache in for id in needed { if let h = cache[id] { known[id] = h } } }
        let missing = needed.filter { known[$0] == nil }
        let (head, read, checkpoints) = try await pool.withConnection { c in try TreeStorage.readTree(missing, checkpoints: sizes, on: c) }
        guard size <= head else { throw TreeRangeError("the log has \(head) entries; a tree of \(size) does not exist yet") }
        let high = read.filter { $0.key.level >= Self.cachedNodeLevel }
        if !high.isEmpty {
            nodeCache.withLock { cache in
                if cache.count + high.count > Self.nodeCacheLimit { cache.removeAll(keepingCapacity: true) }
                cache.merge(high) { old, _ in old }
            }
        }
        known.merge(read) { old, _ in old }
        let nodes = known
        let value = try compute { id in
            guard let hash = nodes[id] else {
                throw LedgerStoreError(.database, "the log's tree has no stored \(id); run `evidence-ledger ledger verify`")
            }
            return hash
        }
        return (value, checkpoints)
    }

    /// The root of the tree of `size` leaves.
    public func root(size: Int64) async throws -> [UInt8] {
        guard size >= 0 else { throw TreeRangeError("a tree size is not negative") }
        return try await withStoredNodes(upTo: size) { node in try Merkle.root(size: size, node: node) }.value
    }

    /// The inclusion proof of entry `index` in the tree of `size` entries, with that tree's root and the
    /// checkpoint of that size if one was signed (one round trip).
    public func inclusionProof(
        index: Int64, size: Int64
    ) async throws -> (proof: [[UInt8]], root: [UInt8], leafHash: [UInt8], checkpoint: StoredCheckpoint?) {
        guard index >= 0, index < size else { throw TreeRangeError("index \(index) is not in a tree of \(size) entries (0 ≤ index < size)") }
        let (v, checkpoints) = try await withStoredNodes(upTo: size, checkpoints: [size]) { node in
            let proof = try Merkle.inclusionProof(index: index, size: size, node: node)!
            return (proof, try Merkle.root(size: size, node: node), try node(MerkleNodeID(level: 0, index: index)))
        }
        return (v.0, v.1, v.2, checkpoints[size])
    }

    /// The consistency proof from the tree of `from` entries to the tree of `to`, with both roots and the
    /// checkpoints of those sizes that were signed (one round trip).
    /// Inclusion proofs of several indexes in the tree of `size`, read in one round trip.
    public func inclusionProofs(indexes: [Int64], size: Int64) async throws -> [Int64: [[UInt8]]] {
        for index in indexes where index < 0 || index >= size {
            throw TreeRangeError("index \(index) is not in a tree of \(size) entries (0 ≤ index < size)")
        }
        guard !indexes.isEmpty else { return [:] }
        return try await withStoredNodes(upTo: size) { node in
            var proofs: [Int64: [[UInt8]]] = [:]
            for index in indexes { proofs[index] = try Merkle.inclusionProof(index: index, size: size, node: node)! }
            return proofs
        }.value
    }

    public func consistencyProof(
        from: Int64, to: Int64
    ) async throws -> (proof: [[UInt8]], fromRoot: [UInt8], toRoot: [UInt8], fromCheckpoint: StoredCheckpoint?, toCheckpoint: StoredCheckpoint?) {
        guard from >= 1, from <= to else { throw TreeRangeError("a consistency proof needs 1 ≤ from ≤ to (got from=\(from), to=\(to))") }
        let (v, checkpoints) = try await withStoredNodes(upTo: to, checkpoints: [from, to]) { node in
            let proof = try Merkle.consistencyProof(oldSize: from, newSize: to, node: node)!
            // Both roots follow from the proof (plus the old root itself when `from` is a power of two),
            // so they cost no reads of their own.
            let oldNode = from & (from - 1) == 0 ? try node(MerkleNodeID(level: from.trailingZeroBitCount, index: 0)) : nil
            if from < to, let roots = Merkle.consistencyRoots(size1: Int(from), size2: Int(to), proof: proof, oldRoot: oldNode) {
                return (proof, roots.old, roots.new)
            }
            return (proof, try Merkle.root(size: from, node: node), try Merkle.root(size: to, node: node))
        }
        return (v.0, v.1, v.2, checkpoints[from], checkpoints[to])
    }

    // MARK: Checkpoints

    /// Stores a signed checkpoint. Returns false when one for that size exists already (kept as it is).
    /// Refuses a root that is not the stored tree's root at that size.
    @discardableResult
    public func storeCheckpoint(_ checkpoint: StoredCheckpoint) async throws -> Bool {
        let root = try await root(size: checkpoint.size)
        guard root == checkpoint.rootHash else { throw TreeRangeError("the checkpoint's root is not the log's root at size \(checkpoint.size)") }
        let note = String(decoding: checkpoint.note, as: UTF8.self)
        return try await pool.withConnection { c in
            try c.execute("""
                INSERT INTO ledger_checkpoints (tree_size, root_hash, note, signed_at)
                VALUES (\(checkpoint.size), \(checkpoint.rootHash), \(note), to_timestamp(\(checkpoint.signedAt)::bigint / 1000.0))
                ON CONFLICT (tree_size) DO NOTHING
                """) == 1
        }
    }

    /// The checkpoint with the largest tree.
    public func latestCheckpoint() async throws -> StoredCheckpoint? {
        try await pool.withConnection { c in
            try TreeStorage.checkpoints(c.query("SELECT \(sql: TreeStorage.checkpointColumns) FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1")).first
        }
    }

    /// The checkpoint of exactly `size` entries, if one was signed.
    public func checkpoint(size: Int64) async throws -> StoredCheckpoint? {
        try await pool.withConnection { c in
            try TreeStorage.checkpoints(c.query("SELECT \(sql: TreeStorage.checkpointColumns) FROM ledger_checkpoints WHERE tree_size = \(size)")).first
        }
    }

    /// The first (smallest) checkpoint whose tree contains entry `index`.
    public func firstCheckpoint(covering index: Int64) async throws -> StoredCheckpoint? {
        try await pool.withConnection { c in
            try TreeStorage.checkpoints(c.query(
                "SELECT \(sql: TreeStorage.checkpointColumns) FROM ledger_checkpoints WHERE tree_size > \(index) ORDER BY tree_size LIMIT 1")).first
        }
    }

    /// Checkpoints with a tree larger than `after`, smallest first.
    public func checkpoints(after: Int64, limit: Int) async throws -> [StoredCheckpoint] {
        try await pool.withConnection { c in
            try TreeStorage.checkpoints(c.query(
                "SELECT \(sql: TreeStorage.checkpointColumns) FROM ledger_checkpoints WHERE tree_size > \(after) ORDER BY tree_size LIMIT \(limit)"))
        }
    }
}

/// The SQL of the stored tree: nodes of level ≥ 1 in `ledger_tree_nodes` (level 0 is the entries'
/// leaf hashes), signed checkpoints in `ledger_checkpoints`.
enum TreeStorage {
    static let checkpointColumns: SQLFragment = "tree_size, root_hash, note, (extract(epoch from signed_at) * 1000)::bigint"

    /// The checkpoint in `row` from column `o` (the `checkpointColumns`).
    static func checkpoint(_ row: PostgresRow, from o: Int = 0) throws(LedgerStoreError) -> StoredCheckpoint {
        StoredCheckpoint(size: try row.int64(o), rootHash: try row.bytes(o + 1), note: Array(try row.text(o + 2).utf8), signedAt: try row.int64(o + 3))
    }

    static func checkpoints(_ rows: PostgresRows) throws(LedgerStoreError) -> [StoredCheckpoint] {
        try rows.rows.map { r throws(LedgerStoreError) in try checkpoint(r) }
    }

    /// The compact range of the tree of `size` leaves, read from the stored nodes.
    static func loadFrontier(size: Int64, on connection: PostgresConnection) throws(LedgerStoreError) -> MerkleFrontier {
        let ids = MerkleFrontier.nodes(size: size)
        let hashes = ids.isEmpty ? [:] : try readTree(ids, checkpoints: [], on: connection).nodes
        guard let frontier = MerkleFrontier(size: size, hashes: hashes) else {
            let missing = ids.first { hashes[$0] == nil }.map(\.description) ?? "a node"
            throw LedgerStoreError(.database, "the log's tree is incomplete at size \(size) (\(missing) is missing); run `evidence-ledger ledger verify`")
        }
        return frontier
    }

    /// In one statement (one snapshot): the head's size, the stored nodes `ids` (level 0 from the
    /// entries' leaf hashes, one index probe per node), and the checkpoints of the given sizes that
    /// were signed. A proof request is then one round trip.
    static func readTree(
        _ ids: [MerkleNodeID], checkpoints sizes: [Int64], on connection: PostgresConnection
    ) throws(LedgerStoreError) -> (head: Int64, nodes: [MerkleNodeID: [UInt8]], checkpoints: [Int64: StoredCheckpoint]) {
        let leaves = ids.filter { $0.level == 0 }, interior = ids.filter { $0.level > 0 }
        let rows = try connection.query("""
            SELECT -1, size, NULL::bytea, NULL::text, NULL::bigint FROM ledger_head WHERE id = 1
            UNION ALL
            SELECT w.l, w.i, n.hash, NULL, NULL
            FROM unnest(\(int64Array: interior.map { Int64($0.level) })::bigint[], \(int64Array: interior.map(\.index))::bigint[]) AS w(l, i)
            CROSS JOIN LATERAL (SELECT hash FROM ledger_tree_nodes WHERE level = w.l::smallint AND idx = w.i) n
            UNION ALL
            SELECT 0, e.idx, e.leaf_hash, NULL, NULL FROM ledger_entries e WHERE e.idx = ANY(\(int64Array: leaves.map(\.index))::bigint[])
            UNION ALL
            SELECT -2, c.tree_size, c.root_hash, c.note, (extract(epoch from c.signed_at) * 1000)::bigint
            FROM ledger_checkpoints c WHERE c.tree_size = ANY(\(int64Array: sizes)::bigint[])
            """).rows
        var head: Int64 = -1
        var hashes: [MerkleNodeID: [UInt8]] = [:]
        var checkpoints: [Int64: StoredCheckpoint] = [:]
        for row in rows {
            let level = try row.int64(0), index = try row.int64(1)
            switch level {
            case -1: head = index
            case -2:
                let c = try checkpoint(row, from: 1)
                checkpoints[c.size] = c
            default: hashes[MerkleNodeID(level: Int(level), index: index)] = try row.bytes(2)
            }
        }
        guard head >= 0 else { throw LedgerStoreError(.database, "the ledger head row is missing; run migrations") }
        return (head, hashes, checkpoints)
    }
}
