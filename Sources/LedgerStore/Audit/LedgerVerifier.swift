import CERKit
public import LedgerCore

/// `ledger verify`: recomputes every leaf hash and subject chain from the rows, checks index density,
/// payload digests, and that the append-only guards (triggers and grants) are still in place; recomputes
/// every stored tree node from the leaves, checks every checkpoint's signature and root, and checks a
/// consistency proof between each two consecutive checkpoints.
public enum LedgerVerifier {
    /// What the audit found.
    public struct Report: Sendable {
        public var size: Int64
        public var entriesChecked: Int64
        public var subjects: Int
        public var payloadsChecked: Int
        public var nodesChecked: Int64 = 0
        public var checkpointsChecked: Int = 0
        public var problems: [LedgerProblem]
        public var isIntact: Bool { problems.isEmpty }
    }

    /// Audits the log in chunks of `chunk` entries.
    public static func verify(pool: PostgresConnectionPool, chunk: Int = 5000) async throws -> Report {
        var problems: [LedgerProblem] = try await pool.withConnection { c in try guardProblems(c) }
        let size = try await pool.withConnection { c in try c.headSize() }
        let log = PostgresEventLog(pool: pool)
        var tree = TreeAudit(checkpoints: try await checkpointsToCheck(log), keys: try await log.keyEvents())
        var audit = LedgerAudit()
        var payloadsChecked = 0
        var from: Int64 = 0
        var checked: Int64 = 0
        while true {
            let start = from
            let rows = try await pool.withConnection { c in
                try c.query("""
                    SELECT \(sql: EntryRows.columns), p.salt, p.content FROM ledger_entries e LEFT JOIN ledger_payloads p ON p.digest = e.payload_digest
                    WHERE e.idx >= \(start) ORDER BY e.idx LIMIT \(chunk)
                    """).rows
            }
            if rows.isEmpty { break }
            var leaves: [(Int64, [UInt8])] = []
            for row in rows {
                let entry = try EntryRows.decode(row)
                audit.check(entry)
                checked += 1
                if let digest = entry.payloadDigest, let salt = try row.optionalBytes(11), let content = try row.optionalBytes(12) {
                    payloadsChecked += 1
                    if ProtocolHash.sha256(salt + content) != digest {
                        problems.append(LedgerProblem(index: entry.index, what: "stored payload does not match the entry's payload digest"))
                    }
                }
                leaves.append((entry.index, entry.leafHash))
                from = entry.index + 1
            }
            tree.add(leaves)
            let expected = tree.takeCompleted()
            let ids = expected.map(\.id)
            let stored = ids.isEmpty ? [:] : try await pool.withConnection { c in try TreeStorage.readTree(ids, checkpoints: [], on: c).nodes }
            tree.compare(expected, stored)
        }
        audit.finish(headSize: size)
        let storedCount = try await pool.withConnection { c in try c.scalarInt("SELECT count(*) FROM ledger_tree_nodes") }
        if tree.isAligned, storedCount != tree.nodesChecked {
            let extra = try await pool.withConnection { c in
                try c.query("SELECT level, idx FROM ledger_tree_nodes WHERE (idx + 1) * (1::bigint << level) > \(size) ORDER BY level, idx LIMIT 5").rows
            }
            let named = extra.map { "node \($0[0] ?? "?")/\($0[1] ?? "?")" }.joined(separator: ", ")
            tree.problems.append(LedgerProblem(
                index: nil, what: "the tree table holds \(storedCount) nodes where a log of \(size) entries has \(tree.nodesChecked)"
                    + (named.isEmpty ? "" : " (beyond the head: \(named))")))
        }
        try await tree.checkConsistency(log)
        return Report(
            size: size, entriesChecked: checked, subjects: audit.subjectCount, payloadsChecked: payloadsChecked,
            nodesChecked: tree.nodesChecked, checkpointsChecked: tree.checkpoints.count,
            problems: problems + audit.problems + tree.problems)
    }

    static func checkpointsToCheck(_ log: PostgresEventLog) async throws -> [StoredCheckpoint] {
        var all: [StoredCheckpoint] = []
        while true {
            let page = try await log.checkpoints(after: all.last?.size ?? -1, limit: 10_000)
            all += page
            if page.count < 10_000 { return all }
        }
    }

    static let requiredTriggers = [
        "ledger_entries": ["ledger_entries_no_update", "ledger_entries_no_delete", "ledger_entries_no_truncate"],
        "ledger_tree_nodes": ["ledger_tree_nodes_no_change", "ledger_tree_nodes_no_truncate"],
        "ledger_checkpoints": ["ledger_checkpoints_no_change", "ledger_checkpoints_no_truncate"],
    ]

    /// Missing or disabled triggers, and privileges the application role must not have.
    static func guardProblems(_ c: PostgresConnection) throws(LedgerStoreError) -> [LedgerProblem] {
        var problems: [LedgerProblem] = []
        let triggers = try c.query("""
            SELECT tgname, tgenabled FROM pg_trigger
            WHERE tgrelid IN ('ledger_entries'::regclass, 'ledger_tree_nodes'::regclass, 'ledger_checkpoints'::regclass) AND NOT tgisinternal
            """)
        var state: [String: String] = [:]
        for row in triggers.rows { state[try row.text(0)] = try row.text(1) }
        for name in requiredTriggers.keys.sorted().flatMap({ requiredTriggers[$0] ?? [] }) {
            switch state[name] {
            case nil: problems.append(LedgerProblem(index: nil, what: "append-only trigger \(name) is missing"))
            case "D"?: problems.append(LedgerProblem(index: nil, what: "append-only trigger \(name) is disabled"))
            default: break
            }
        }
        // The batch guard must still refuse: a redefined `ledger_expect` would let a writer's wrong
        // assumption (another writer's append, a quota without room, a revoked key) commit.
        do {
            _ = try c.query("SELECT ledger_expect(false, 'ledger verify checks the guard')")
            problems.append(LedgerProblem(index: nil, what: "the batch guard ledger_expect no longer refuses a false condition"))
        } catch where error.sqlState == "LE001" {
        } catch where error.sqlState == "42883" {
            problems.append(LedgerProblem(index: nil, what: "the batch guard ledger_expect is missing"))
        }
        let role = try c.query("SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app'")
        if role.rows.isEmpty {
            problems.append(LedgerProblem(index: nil, what: "the application role ledger_app is missing"))
        } else {
            for table in requiredTriggers.keys.sorted() {
                for privilege in ["UPDATE", "DELETE", "TRUNCATE"] {
                    let has = try c.query("SELECT has_table_privilege('ledger_app', \(table), \(privilege))")
                    if has.rows.first?[0] == "t" {
                        problems.append(LedgerProblem(index: nil, what: "the application role may \(privilege) \(table)"))
                    }
                }
            }
        }
        return problems
    }
}
