import CERKit
import LedgerCore

/// Writes one batch of appends in one transaction, in one of two modes that differ only in where the
/// batch's view of the log comes from:
/// - **optimistic**: from what this writer remembers (the size it left the log at, the heads of the
///   subjects it wrote, the tree's compact range); idempotency keys and claims are taken to be unused
///   and meters to have room. One round trip, no explicit BEGIN/COMMIT (the statements before the
///   pipeline's sync form one implicit transaction).
/// - **careful**: read under the head lock in a first round trip (BEGIN, lock, subjects' heads, keys,
///   claims, meters, credentials), then written and committed in a second.
///
/// Both modes send the same writes, each assumption stated as a guard (`ledger_expect`, SQLSTATE LE001)
/// or enforced by a unique index (23505); a wrong assumption aborts the transaction, and the batch is
/// written again carefully. Used only by the sequencer's one running writer.
final class BatchWriter: @unchecked Sendable {
    enum Mode { case optimistic, careful }

    /// What a batch is planned against.
    struct LogView {
        var size: Int64
        var heads: [String: SubjectHead]
        var existing: [AppendPlanner.IdempotencyKey: LedgerEntry] = [:]
        var claims: [ClaimKey: String] = [:]
        /// The meters before the batch and the active credentials (nil: assumed to admit everything).
        var admission: (meters: [MeterKey: MeterReading], active: Set<Int64>)?
        /// The tree's compact range at `size` (nil when the tree is not maintained).
        var frontier: MerkleFrontier?
    }

    /// A written batch.
    struct Outcome {
        var outcomes: [AppendOutcome]
        /// Each charged request's meter reading, by position.
        var meters: [Int: MeterReading] = [:]
        var size: Int64
        var frontier: MerkleFrontier?
    }

    /// SQLSTATEs by which a batch learns an assumption was wrong: a guard (LE001), or a unique index
    /// (a subject position, idempotency key, claim or tree node that already exists).
    static let assumptionFailed: Set<String> = ["LE001", "23505"]
    /// Batches written carefully after an optimistic one failed (the workload is touching subjects
    /// this writer has not seen, or another writer is active).
    static let carefulAfterFailure = 8
    /// Most subject heads remembered.
    static let rememberedSubjects = 100_000

    let pool: PostgresConnectionPool
    let maintainsTree: Bool
    private var connection: PostgresConnection?
    /// The log's size after this writer's last batch (nil: unknown, read it under the lock).
    private var size: Int64?
    /// Last entry of subjects this writer appended to; exact while no other writer has appended.
    private var heads: [String: SubjectHead] = [:]
    private var carefulBatches = 0
    /// The tree's compact range at `size` (nil: unknown).
    private var frontier: MerkleFrontier?

    init(pool: PostgresConnectionPool, maintainsTree: Bool) {
        self.pool = pool
        self.maintainsTree = maintainsTree
    }

    private func forget() {
        size = nil
        frontier = nil
        heads.removeAll()
    }

    /// Writes `requests` (consecutive all-or-nothing groups of `groupSizes`) at `recordedAt`.
    func write(_ requests: [AppendRequest], groupSizes: [Int], recordedAt: Int64) throws -> Outcome {
        do {
            if connection == nil || connection?.isBroken == true {
                connection?.close()
                connection = try pool.makeDedicatedConnection()
            }
            guard let connection else { throw LedgerStoreError(.unavailable, "no database connection for the writer") }
            if carefulBatches > 0 {
                carefulBatches -= 1
            } else if let view = optimisticView(for: requests) {
                if let outcome = try write(requests, groupSizes: groupSizes, recordedAt: recordedAt, view: view, mode: .optimistic, on: connection) {
                    remember(outcome)
                    return outcome
                }
                forget()
                carefulBatches = Self.carefulAfterFailure
            }
            let view = try readView(for: requests, on: connection)
            guard let outcome = try write(requests, groupSizes: groupSizes, recordedAt: recordedAt, view: view, mode: .careful, on: connection) else {
                throw LedgerStoreError(.database, "a batch written under the head lock failed an assumption")
            }
            remember(outcome)
            return outcome
        } catch {
            forget()
            if connection?.isBroken == true {
                connection?.close()
                connection = nil
            }
            throw error
        }
    }

    /// The view this writer remembers, when it is enough for the batch: the size is known (and the tree
    /// at it), and every expected subject version is of a subject whose head is known or claims the
    /// subject is new (a unique index then verifies that).
    private func optimisticView(for requests: [AppendRequest]) -> LogView? {
        guard let size, !maintainsTree || frontier?.size == size else { return nil }
        guard requests.allSatisfy({ r in r.expectedSubjectVersion == nil || r.expectedSubjectVersion == 0 || heads[r.subject] != nil }) else {
            return nil
        }
        // Only this batch's subjects: the planner copies its map, and the writer's may be large.
        var known: [String: SubjectHead] = [:]
        for r in requests { if let head = heads[r.subject] { known[r.subject] = head } }
        return LogView(size: size, heads: known, frontier: maintainsTree ? frontier : nil)
    }

    private func remember(_ outcome: Outcome) {
        if heads.count > Self.rememberedSubjects { heads.removeAll() }
        size = outcome.size
        frontier = outcome.frontier
        for case .appended(let e) in outcome.outcomes {
            heads[e.subject] = SubjectHead(count: e.subjectIndex + 1, lastLeaf: e.leafHash)
        }
    }

    /// The careful mode's first round trip: BEGIN, lock the head, read what the batch depends on.
    /// Leaves the transaction open (the write commits it; a failure rolls it back).
    private func readView(for requests: [AppendRequest], on connection: PostgresConnection) throws -> LogView {
        let subjects = Array(Set(requests.map(\.subject)))
        let keyed = requests.compactMap { r in r.idempotencyKey.map { (subject: r.subject, type: r.type, key: $0) } }
        let claims = requests.flatMap(\.claims)
        let charges = requests.compactMap(\.charge)
        let meters = Array(Set(charges.map(MeterKey.init))).sorted()
        var reads: [SQLQuery] = ["BEGIN", BatchStatements.lockHead, BatchStatements.subjectHeads(subjects)]
        let keysAt = reads.count
        if !keyed.isEmpty { reads.append(BatchStatements.idempotentEntries(keyed)) }
        let claimsAt = reads.count
        if !claims.isEmpty { reads.append(BatchStatements.claims(claims)) }
        let metersAt = reads.count
        if !charges.isEmpty {
            reads += [
                BatchStatements.createMeters(meters), BatchStatements.lockMeters(meters),
                BatchStatements.credentialStatus(Array(Set(charges.map(\.credentialId))).sorted()),
            ]
        }
        do {
            let results = try connection.pipeline(reads)
            guard let sizeRow = results[1].rows.first else { throw LedgerStoreError(.database, "the ledger head row is missing; run migrations") }
            var view = LogView(size: try sizeRow.int64(0), heads: [:])
            for row in results[2].rows {
                view.heads[try row.text(0)] = SubjectHead(count: try row.int64(1) + 1, lastLeaf: try row.bytes(2))
            }
            if !keyed.isEmpty {
                for entry in try EntryRows.decode(results[keysAt]) {
                    guard let key = entry.idempotencyKey else { continue }
                    view.existing[AppendPlanner.IdempotencyKey(subject: entry.subject, type: entry.type, key: key)] = entry
                }
            }
            if !claims.isEmpty {
                for row in results[claimsAt].rows { view.claims[ClaimKey(scope: try row.text(0), key: try row.text(1))] = try row.text(2) }
            }
            if !charges.isEmpty {
                var readings: [MeterKey: MeterReading] = [:]
                for row in results[metersAt + 1].rows {
                    readings[MeterKey(account: try row.text(0), period: try row.text(1))] = MeterReading(used: try row.int64(2), limit: try row.int64(3))
                }
                var active = Set<Int64>()
                for row in results[metersAt + 2].rows where row[1] == "active" { active.insert(try row.int64(0)) }
                view.admission = (readings, active)
            }
            if maintainsTree {
                // Another writer may have grown the log since this one last wrote: its compact range is
                // then read again, under the head lock, from the stored nodes.
                view.frontier = try frontier?.size == view.size ? frontier : TreeStorage.loadFrontier(size: view.size, on: connection)
            }
            return view
        } catch {
            if !connection.isBroken { _ = try? connection.execute("ROLLBACK") }
            throw error
        }
    }

    /// Plans the batch against `view` and writes it. Returns nil when an assumption failed (the
    /// transaction was rolled back).
    private func write(
        _ requests: [AppendRequest], groupSizes: [Int], recordedAt: Int64, view: LogView, mode: Mode, on connection: PostgresConnection
    ) throws -> Outcome? {
        // Refusals decided before planning: admission of charges, then claims (an existing claim for
        // another value refuses the request; claims made earlier in this batch count).
        var rejections: [AppendRefusal?] = Array(repeating: nil, count: requests.count)
        if let admission = view.admission {
            rejections = Admission(requests: requests, meters: admission.meters, activeCredentials: admission.active).refusals
        }
        var claimed = view.claims
        for (i, request) in requests.enumerated() where !request.claims.isEmpty && rejections[i] == nil {
            if let conflict = request.claims.first(where: { c in claimed[ClaimKey(scope: c.scope, key: c.key)].map { $0 != c.value } ?? false }),
                let owner = claimed[ClaimKey(scope: conflict.scope, key: conflict.key)]
            {
                rejections[i] = .claimConflict(scope: conflict.scope, key: conflict.key, existingValue: owner)
            } else {
                for c in request.claims { claimed[ClaimKey(scope: c.scope, key: c.key)] = c.value }
            }
        }
        let payloads = Self.salted(requests)
        let (outcomes, newSize) = AppendPlanner.plan(
            requests: requests, size: view.size, subjects: view.heads, existing: view.existing, payloadDigests: payloads.map { $0?.digest },
            recordedAt: recordedAt, groupSizes: groupSizes, rejections: rejections)

        var statements: [SQLQuery] = []
        var tree = view.frontier
        let increments = Admission.increments(requests, outcomes)
        var chargeAt = -1
        if newSize != view.size {
            var entries: [LedgerEntry] = []
            var stored: [(digest: [UInt8], salt: [UInt8], content: [UInt8])] = []
            var newClaims: [(claim: Claim, entryIndex: Int64)] = []
            var claimedNow = Set<ClaimKey>()
            for (i, outcome) in outcomes.enumerated() {
                guard case .appended(let e) = outcome else { continue }
                entries.append(e)
                if let p = payloads[i], let content = requests[i].payload { stored.append((p.digest, p.salt, content)) }
                for c in requests[i].claims {
                    let key = ClaimKey(scope: c.scope, key: c.key)
                    if view.claims[key] == nil, claimedNow.insert(key).inserted { newClaims.append((c, e.index)) }
                }
            }
            statements.append(BatchStatements.growHead(from: view.size, to: newSize))
            statements.append(BatchStatements.insertEntries(entries, recordedAt: recordedAt))
            if !stored.isEmpty { statements.append(BatchStatements.insertPayloads(stored)) }
            if !newClaims.isEmpty { statements.append(BatchStatements.insertClaims(newClaims)) }
            if var t = tree {
                var nodes: [(id: MerkleNodeID, hash: [UInt8])] = []
                for e in entries.sorted(by: { $0.index < $1.index }) {
                    precondition(e.index == t.size, "the planner assigns dense indexes from the head")
                    for (id, hash) in t.append(leafHash: e.leafHash) { nodes.append((id, hash)) }
                }
                if !nodes.isEmpty { statements.append(BatchStatements.insertNodes(nodes)) }
                tree = t
            }
            if !increments.isEmpty {
                chargeAt = statements.count
                statements.append(BatchStatements.chargeMeters(increments))
                var credentials = Set<Int64>()
                for (i, r) in requests.enumerated() { if let c = r.charge, case .appended = outcomes[i] { credentials.insert(c.credentialId) } }
                statements.append(BatchStatements.expectActive(credentials.sorted()))
            }
        }
        if mode == .careful { statements.append("COMMIT") }
        if statements.isEmpty { return Outcome(outcomes: outcomes, size: view.size, frontier: view.frontier) }

        let results: [PostgresRows]
        do {
            results = try connection.pipeline(statements)
        } catch where mode == .optimistic && error.sqlState.map(Self.assumptionFailed.contains) == true {
            // The implicit transaction was rolled back at the pipeline's sync.
            return nil
        } catch {
            if mode == .careful, !connection.isBroken { _ = try? connection.execute("ROLLBACK") }
            throw error
        }
        var outcome = Outcome(outcomes: outcomes, size: newSize, frontier: tree)
        if let admission = view.admission {
            outcome.meters = Admission.readings(requests, outcomes, before: admission.meters)
        } else if chargeAt >= 0 {
            let after = BatchStatements.meters(fromCharge: results[chargeAt])
            outcome.meters = Admission.readings(requests, outcomes, before: Admission.before(after: after, increments: increments))
        }
        return outcome
    }

    /// A fresh random salt and the salted digest for each request's payload.
    static func salted(_ requests: [AppendRequest]) -> [(salt: [UInt8], digest: [UInt8])?] {
        var generator = SystemRandomNumberGenerator()
        return requests.map { r in
            guard let payload = r.payload else { return nil }
            var salt: [UInt8] = []
            salt.reserveCapacity(16)
            for _ in 0..<2 { salt += SQLValue.bigEndian(generator.next() as UInt64) }
            return (salt, ProtocolHash.sha256(salt + payload))
        }
    }
}

/// A claimed key in its scope.
struct ClaimKey: Hashable {
    var scope: String
    var key: String
}
