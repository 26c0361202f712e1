public import CERKit
public import LedgerCore

/// A witness's cosignature of one of the node's checkpoints, as stored.
public struct StoredCosignature: Sendable, Equatable {
    public var size: Int64
    public var witness: String
    public var keyId: [UInt8]
    /// The signature line, `— <witness> <base64>\n`, exactly as the witness sent it.
    public var line: String
    /// Milliseconds since the epoch.
    public var receivedAt: Int64

    public init(size: Int64, witness: String, keyId: [UInt8], line: String, receivedAt: Int64) {
        self.size = size
        self.witness = witness
        self.keyId = keyId
        self.line = line
        self.receivedAt = receivedAt
    }
}

extension PostgresEventLog {
    /// Stores cosignatures of the checkpoint of `size` (append-only; a witness key's second cosignature of
    /// the same checkpoint is not stored again). Returns how many were new.
    @discardableResult
    public func storeCosignatures(_ cosignatures: [StoredCosignature]) async throws -> Int {
        guard !cosignatures.isEmpty else { return 0 }
        return try await pool.withConnection { c in
            var added = 0
            for s in cosignatures {
                added += try c.execute("""
                    INSERT INTO ledger_cosignatures (tree_size, witness, key_id, line, received_at)
                    VALUES (\(s.size), \(s.witness), \(s.keyId), \(s.line), to_timestamp(\(s.receivedAt)::bigint / 1000.0))
                    ON CONFLICT (tree_size, witness, key_id) DO NOTHING
                    """)
            }
            return added
        }
    }

    /// The cosignatures of the checkpoints of `sizes`, by size, in the order they arrived.
    public func cosignatures(sizes: [Int64]) async throws -> [Int64: [StoredCosignature]] {
        guard !sizes.isEmpty else { return [:] }
        return try await pool.withConnection { c in
            var found: [Int64: [StoredCosignature]] = [:]
            for row in try c.query("""
                SELECT tree_size, witness, key_id, line, (extract(epoch from received_at) * 1000)::bigint FROM ledger_cosignatures
                WHERE tree_size = ANY(\(int64Array: sizes)::bigint[]) ORDER BY tree_size, received_at, witness, key_id
                """).rows
            {
                let s = StoredCosignature(
                    size: try row.int64(0), witness: try row.text(1), keyId: try row.bytes(2), line: try row.text(3), receivedAt: try row.int64(4))
                found[s.size, default: []].append(s)
            }
            return found
        }
    }

    /// The checkpoint's note with its stored cosignature lines appended (a c2sp.org/signed-note with
    /// more signatures; readers ignore the keys they do not know).
    public func cosignedNote(_ checkpoint: StoredCheckpoint) async throws -> [UInt8] {
        let lines = try await cosignatures(sizes: [checkpoint.size])[checkpoint.size] ?? []
        return Self.cosignedNote(checkpoint.note, lines)
    }

    public static func cosignedNote(_ note: [UInt8], _ cosignatures: [StoredCosignature]) -> [UInt8] {
        cosignatures.reduce(note) { $0 + Array($1.line.utf8) }
    }

    // MARK: Records waiting for a timestamp

    /// Queues a record for a late timestamp (kept across restarts). Returns false when the queue is full.
    public func queueTimestamp(subject: String, account: String, limit: Int) async throws -> Bool {
        try await pool.withConnection { c in
            try c.execute("""
                INSERT INTO ledger_timestamp_queue (subject, account)
                SELECT \(subject), \(account) WHERE (SELECT count(*) FROM ledger_timestamp_queue) < \(limit)
                ON CONFLICT (subject) DO NOTHING
                """) == 1
        }
    }

    /// The oldest queued records: (subject, account).
    public func queuedTimestamps(limit: Int) async throws -> [(subject: String, account: String)] {
        try await pool.withConnection { c in
            try c.query("SELECT subject, account FROM ledger_timestamp_queue ORDER BY queued_at, subject LIMIT \(limit)").rows.map { r throws(LedgerStoreError) in
                (try r.text(0), try r.text(1))
            }
        }
    }

    public func queuedTimestampCount() async throws -> Int {
        try await pool.withConnection { c in Int(try c.query("SELECT count(*) FROM ledger_timestamp_queue").single("the queue's size").int64(0)) }
    }

    public func dequeueTimestamp(subject: String) async throws {
        _ = try await pool.withConnection { c in try c.execute("DELETE FROM ledger_timestamp_queue WHERE subject = \(subject)") }
    }
}

/// A witness's state in PostgreSQL (`witness_checkpoints`): per origin, the latest checkpoint it
/// cosigned. `add` checks and updates under the origin row's lock, in one transaction, so two concurrent
/// submissions cannot roll the witness back (c2sp.org/tlog-witness).
public struct WitnessStore: Sendable {
    public let pool: PostgresConnectionPool

    public init(pool: PostgresConnectionPool) { self.pool = pool }

    /// Decides on `request` against the stored state; on `.cosign` stores the new state before returning
    /// (the caller signs only what was stored).
    public func add(_ request: AddCheckpointRequest, trusted: [String: [NoteVerifier]]) async throws -> WitnessDecision {
        guard let origin = WitnessDecision.origin(of: request) else {
            return WitnessDecision.decide(request, trusted: nil, latest: nil)
        }
        guard let keys = trusted[origin] else { return WitnessDecision.decide(request, trusted: nil, latest: nil) }
        // Signature and shape first, without a lock: a request no key of the origin signed touches nothing.
        let precheck = WitnessDecision.decide(request, trusted: keys, latest: nil)
        if case .refuse(let status, _, _) = precheck, status == 400 || status == 403 { return precheck }
        return try await pool.withTransaction { c in
            try c.execute("INSERT INTO witness_checkpoints (origin, tree_size) VALUES (\(origin), 0) ON CONFLICT (origin) DO NOTHING")
            let row = try c.query("SELECT tree_size, root_hash FROM witness_checkpoints WHERE origin = \(origin) FOR UPDATE").single("the witness's state")
            let size = try row.int64(0)
            let latest = size == 0 ? nil : (size: UInt64(size), rootHash: try row.bytes(1))
            let decision = WitnessDecision.decide(request, trusted: keys, latest: latest)
            if case .cosign(_, let newSize, let root, _) = decision, newSize != UInt64(size) || latest == nil {
                try c.execute("""
                    UPDATE witness_checkpoints SET tree_size = \(Int64(newSize)), root_hash = \(root),
                        note = \(String(decoding: request.checkpoint, as: UTF8.self)), updated_at = now()
                    WHERE origin = \(origin)
                    """)
            }
            return decision
        }
    }

    /// The latest cosigned size and root per origin.
    public func state() async throws -> [(origin: String, size: Int64, rootHash: [UInt8]?)] {
        try await pool.withConnection { c in
            try c.query("SELECT origin, tree_size, root_hash FROM witness_checkpoints ORDER BY origin").rows.map { r throws(LedgerStoreError) in
                (try r.text(0), try r.int64(1), try r.optionalBytes(2))
            }
        }
    }
}
