import CERKit
import Foundation
import LedgerCore
import LedgerTesting
import Testing
@testable import LedgerStore

/// The stored tree against the reference computed from all leaves, and `ledger verify` against tampering
/// with nodes, leaves and checkpoints.
@Suite struct TreeStoreTests {
    static let signer = try! NoteSigner(name: "test.example/log", key: Ed25519SigningKey(seed: [UInt8](repeating: 7, count: 32))!)

    /// A log of `count` entries appended concurrently (so both writer paths and many batch sizes occur).
    func seeded(_ count: Int) async throws -> (conninfo: String, pool: PostgresConnectionPool, log: PostgresEventLog) {
        let conninfo = try TestDatabase.create()
        let pool = TestDatabase.pool(conninfo, connections: 8)
        let log = PostgresEventLog(pool: pool)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<8 {
                group.addTask {
                    for i in stride(from: w, to: count, by: 8) {
                        _ = try await log.append(AppendRequest(subject: "cer:s\(i % 5)", type: "cer.recorded", body: ["i": .number(Double(i))]))
                    }
                }
            }
            try await group.waitForAll()
        }
        return (conninfo, pool, log)
    }

    func leaves(_ log: PostgresEventLog) async throws -> [[UInt8]] {
        try await log.entries(from: 0, limit: 100_000).map(\.leafHash)
    }

    /// A checkpoint signed with the test key (what the server's checkpointer stores), as LedgerCore makes it.
    func checkpoint(_ log: PostgresEventLog, size: Int64, leaves: [[UInt8]]) async throws -> StoredCheckpoint {
        let root = Merkle.root(Array(leaves.prefix(Int(size))))
        let note = try SignedNote.sign(text: Checkpoint(origin: Self.signer.name, size: UInt64(size), rootHash: root).text, signers: [Self.signer])
        let c = StoredCheckpoint(size: size, rootHash: root, note: note, signedAt: 1_700_000_000_000)
        #expect(try await log.storeCheckpoint(c))
        return c
    }

    @Test func theStoredTreeGivesTheReferenceRootsAndProofs() async throws {
        let (_, pool, log) = try await seeded(777)
        defer { Task { await pool.shutdown() } }
        let leaves = try await leaves(log)
        #expect(leaves.count == 777)
        let frontier = try await log.frontier()
        #expect(frontier.size == 777 && frontier.root == Merkle.root(leaves))
        for size in [1, 2, 3, 64, 100, 511, 512, 513, 777] {
            #expect(try await log.root(size: Int64(size)) == Merkle.root(Array(leaves.prefix(size))), "root of \(size)")
            for index in [0, size / 2, size - 1] {
                let p = try await log.inclusionProof(index: Int64(index), size: Int64(size))
                #expect(p.proof == Merkle.inclusionProof(index: index, leafHashes: Array(leaves.prefix(size))), "\(index) in \(size)")
                #expect(p.leafHash == leaves[index])
            }
            for old in [1, size / 3 + 1, size] where old <= size {
                let c = try await log.consistencyProof(from: Int64(old), to: Int64(size))
                #expect(c.proof == Merkle.consistencyProof(oldSize: old, leafHashes: Array(leaves.prefix(size))), "\(old) → \(size)")
            }
        }
        await #expect(throws: TreeRangeError.self) { _ = try await log.inclusionProof(index: 5, size: 778) }
        await #expect(throws: TreeRangeError.self) { _ = try await log.inclusionProof(index: 9, size: 9) }
        await #expect(throws: TreeRangeError.self) { _ = try await log.consistencyProof(from: 0, to: 5) }
        await #expect(throws: TreeRangeError.self) { _ = try await log.consistencyProof(from: 6, to: 5) }
        // A checkpoint whose root is not the log's is refused before it is stored.
        let wrong = StoredCheckpoint(size: 10, rootHash: leaves[0], note: Array("x\n".utf8), signedAt: 0)
        await #expect(throws: TreeRangeError.self) { _ = try await log.storeCheckpoint(wrong) }

        let report = try await LedgerVerifier.verify(pool: pool, chunk: 100)
        #expect(report.isIntact, "\(report.problems.prefix(3))")
        #expect(report.nodesChecked == Int64(Merkle.completeNodes(leaves).count))
    }

    @Test func anAlteredNodeIsNamedByTheAudit() async throws {
        let (conninfo, pool, log) = try await seeded(40)
        let leaves = try await leaves(log)
        _ = try await checkpoint(log, size: 40, leaves: leaves)
        await pool.shutdown()
        try TestDatabase.superuser(conninfo, """
            ALTER TABLE ledger_tree_nodes DISABLE TRIGGER ledger_tree_nodes_no_change;
            UPDATE ledger_tree_nodes SET hash = sha256('forged') WHERE level = 2 AND idx = 3;
            ALTER TABLE ledger_tree_nodes ENABLE TRIGGER ledger_tree_nodes_no_change;
            """)
        let cli = try Binary.run(["ledger", "verify", "--database-url", conninfo, "--origin", Self.signer.name])
        #expect(cli.status == 1)
        #expect(cli.stdout.contains("BROKEN: tree node 2/3 does not match the leaves it covers"), "\(cli.stdout)")
    }

    @Test func anEntryRewrittenWithAConsistentLeafHashIsCaughtByTheTreeAndTheCheckpoint() async throws {
        let (conninfo, pool, log) = try await seeded(20)
        let leaves = try await leaves(log)
        _ = try await checkpoint(log, size: 20, leaves: leaves)
        let entry = try #require(try await log.entry(index: 5))
        await pool.shutdown()
        // Rewrite entry 5 and give it the leaf hash of its new bytes: the entry audit alone cannot see it.
        let forged = try LedgerEntry(
            index: entry.index, subject: entry.subject, subjectIndex: entry.subjectIndex, type: entry.type, account: entry.account,
            recordedAt: entry.recordedAt, body: ["i": 555], payloadDigest: nil, prevSubjectLeaf: entry.prevSubjectLeaf,
            idempotencyKey: nil)
        try TestDatabase.superuser(conninfo, """
            ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_update;
            UPDATE ledger_entries SET body = '{"i":555}', leaf_hash = '\\x\(Hex.encode(forged.leafHash))' WHERE idx = 5;
            ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_no_update;
            """)
        let cli = try Binary.run(["ledger", "verify", "--database-url", conninfo, "--origin", Self.signer.name])
        #expect(cli.status == 1)
        #expect(cli.stdout.contains("BROKEN: tree node 1/2 does not match the leaves it covers"), "\(cli.stdout)")
        #expect(cli.stdout.contains("checkpoint 20: its root is not the root of the log's first 20 entries"), "\(cli.stdout)")
    }

    @Test func aForgedCheckpointOrAnInconsistentPairIsNamed() async throws {
        let (conninfo, pool, log) = try await seeded(30)
        let leaves = try await leaves(log)
        _ = try await checkpoint(log, size: 10, leaves: leaves)
        _ = try await checkpoint(log, size: 30, leaves: leaves)
        await pool.shutdown()
        // Not the node's key: a "checkpoint" signed by someone else. No key events exist in this log, so
        // no key is authorised at all; the audit reports the signature, not the content.
        let intact = try Binary.run(["ledger", "verify", "--database-url", conninfo, "--origin", Self.signer.name])
        #expect(intact.stdout.contains("checkpoint 10: it has no signature by an authorised node key"), "\(intact.stdout)")
        // Change the signed note's root text behind the triggers.
        try TestDatabase.superuser(conninfo, """
            ALTER TABLE ledger_checkpoints DISABLE TRIGGER ledger_checkpoints_no_change;
            UPDATE ledger_checkpoints SET root_hash = sha256('other') WHERE tree_size = 10;
            ALTER TABLE ledger_checkpoints ENABLE TRIGGER ledger_checkpoints_no_change;
            """)
        let cli = try Binary.run(["ledger", "verify", "--database-url", conninfo, "--origin", Self.signer.name])
        #expect(cli.status == 1)
        #expect(cli.stdout.contains("checkpoint 10: the signed body's size or root differs from the stored columns"), "\(cli.stdout)")
        #expect(cli.stdout.contains("checkpoint 10: its root is not the root of the log's first 10 entries"), "\(cli.stdout)")
        #expect(cli.stdout.contains("checkpoints 10 and 30 are not consistent"), "\(cli.stdout)")
    }

    @Test func theMigrationBuildsTheTreeOfALogThatPredatesIt() async throws {
        let (conninfo, pool, log) = try await seeded(300)
        let leaves = try await leaves(log)
        await pool.shutdown()
        // Drop the tree as if 0003 (and 0007, which builds on it) had never run, then apply them again.
        try TestDatabase.superuser(conninfo, """
            DROP TABLE ledger_cosignatures, ledger_timestamp_queue, witness_checkpoints; DROP INDEX ledger_entries_evidence;
            DROP TABLE ledger_tree_nodes; DROP TABLE ledger_checkpoints; DROP FUNCTION ledger_append_only();
            DELETE FROM ledger_migrations WHERE name IN ('0003_create_tree', '0007_create_witnessing');
            """)
        try Migrator.migrate(conninfo: conninfo)
        let again = TestDatabase.pool(conninfo)
        let reopened = PostgresEventLog(pool: again)
        #expect(try await reopened.frontier().root == Merkle.root(leaves))
        let report = try await LedgerVerifier.verify(pool: again)
        #expect(report.isIntact, "\(report.problems.prefix(3))")
        #expect(report.nodesChecked == Int64(Merkle.completeNodes(leaves).count))
        // And the writer continues the tree from there.
        _ = try await reopened.append(AppendRequest(subject: "cer:after", type: "cer.recorded", body: ["after": true]))
        let all = try await reopened.entries(from: 0, limit: 1000).map(\.leafHash)
        #expect(try await reopened.frontier().root == Merkle.root(all))
        await again.shutdown()
    }
}
