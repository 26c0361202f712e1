import CERKit
import LedgerCore
import Synchronization

/// Writes batches of appends, each in one transaction, in one of two modes that differ only in where
/// the batch's view of the log comes from:
/// - **optimistic**: from what this writer expects (the size its last batch leaves the log at, the
///   heads of the subjects it wrote, the tree's compact range); idempotency keys and claims are taken
///   to be unused and meters to have room. One statement in one round trip, no explicit BEGIN/COMMIT
///   (a pipeline's statements before its sync form one implicit transaction). Two optimistic batches
///   can be in flight at once, on two connections: the second is planned from what the first will
///   leave, inserts its rows while the first commits, and then waits for the head (`writeBatch`).
/// - **careful**: read under the head lock in a first round trip (BEGIN, lock, subjects' heads, keys,
///   claims, meters, credentials), then written and committed in a second. Never overlapped.
///
/// Both modes send the same write, each assumption stated as a guard (`ledger_expect`, SQLSTATE LE001)
/// or enforced by a unique index (23505); a wrong assumption aborts the transaction, and the batch is
/// written again carefully. Used only by the sequencer's one running writer thread.
final class BatchWriter: @unchecked Sendable {
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
    struct Outcome: Equatable {
        var outcomes: [AppendOutcome]
        /// Each charged request's meter reading, by position.
        var meters: [Int: MeterReading] = [:]
        var size: Int64
        var frontier: MerkleFrontier?
    }

    /// An optimistic batch sent and not yet answered.
    struct Sent {
        fileprivate let slot: Int
        /// nil when the batch wrote nothing (every request refused): nothing was sent.
        fileprivate let pipeline: PostgresConnection.SentPipeline?
        fileprivate let requests: [AppendRequest]
        /// The outcome if it commits (meters still to be read from the answer).
        fileprivate let planned: Outcome
        fileprivate let increments: [(key: MeterKey, count: Int64)]
    }

    /// SQLSTATEs by which an optimistic batch learns an assumption was wrong: a guard (LE001), a unique
    /// index (a subject position, idempotency key, claim or tree node that already exists), or a wait
    /// on another writer that deadlocked or outlasted `lock_timeout` (another process is appending:
    /// its rows and this batch's conflict). The batch is then written carefully.
    static let assumptionFailed: Set<String> = ["LE001", "23505", "40P01", "55P03"]
    /// How long an optimistic batch waits for a lock (its predecessor's baton and head, or another
    /// writer's rows) before it gives up and is written carefully. A careful batch waits as long as it
    /// takes (`SET LOCAL lock_timeout = 0`).
    static let optimisticLockTimeout = "200ms"
    /// Batches sent without overlap after an optimistic batch failed (another writer may be active:
    /// a follower's inserts before its head wait could then deadlock with it).
    static let soloAfterFailure = 256
    /// Batches written carefully after an optimistic one failed (the workload is touching subjects
    /// this writer has not seen, or another writer is active).
    static let carefulAfterFailure = 8
    /// Most subject heads remembered.
    static let rememberedSubjects = 100_000
    /// Connections, so that many optimistic batches can be in flight.
    static let slots = 2

    /// This writer's advisory-lock class (batons), random so writers of other processes never share it.
    private let batonClass = Int64(Int32.random(in: 1...Int32.max))
    /// Optimistic batches sent so far (a batch's baton is `sequence % 3`).
    private var sequence: Int64 = 0

    let pool: PostgresConnectionPool
    let maintainsTree: Bool
    private var connections: [PostgresConnection?] = Array(repeating: nil, count: BatchWriter.slots)
    private var busy: [Bool] = Array(repeating: false, count: BatchWriter.slots)
    /// The log's size after this writer's last batch, sent or written (nil: unknown, read it under the lock).
    private var size: Int64?
    /// The leaf of the entry at `size - 1` when this writer wrote it (a follower checks it committed).
    private var lastLeaf: [UInt8]?
    /// Last entry of subjects this writer appended to; exact while no other writer has appended.
    private var heads: [String: SubjectHead] = [:]
    private var carefulBatches = 0
    private var soloBatches = 0
    /// Counters (for benchmarks and metrics): batches sent overlapped with another, optimistic batches
    /// whose assumption failed, batches written carefully.
    /// Read from any thread (metrics), so behind a lock of their own.
    private let countsLock = Mutex((overlapped: 0, failedAssumptions: 0, careful: 0))
    var counts: (overlapped: Int, failedAssumptions: Int, careful: Int) { countsLock.withLock { $0 } }
    /// The tree's compact range at `size` (nil: unknown).
    private var frontier: MerkleFrontier?

    init(pool: PostgresConnectionPool, maintainsTree: Bool) {
        self.pool = pool
        self.maintainsTree = maintainsTree
    }

    /// Per batch in flight, oldest first: the heads of its subjects as they were before it was planned
    /// (nil: unknown then), to restore when it fails.
    private var inFlightUndo: [[String: SubjectHead?]] = []

    /// A sent batch failed: what this writer expects is restored to before it (the heads of the subjects
    /// it and every later batch in flight touched; later batches fail too, by their guards), and the
    /// size and tree are read again under the head lock. Heads of other subjects stay known, so one
    /// failed batch does not make every later batch fail on subjects this writer no longer knows.
    private func rollBack() {
        for undo in inFlightUndo.reversed() {
            for (subject, head) in undo { heads[subject] = head }
        }
        inFlightUndo.removeAll()
        size = nil
        lastLeaf = nil
        frontier = nil
    }

    /// Forgets what this writer expects of the log (its outcome is unknown, or another writer wrote).
    func forget() {
        size = nil
        lastLeaf = nil
        frontier = nil
        heads.removeAll()
    }

    private func connection(_ slot: Int) throws -> PostgresConnection {
        if let c = connections[slot], !c.isBroken { return c }
        connections[slot]?.close()
        let c = try pool.makeDedicatedConnection()
        try c.execute("SELECT set_config('lock_timeout', \(Self.optimisticLockTimeout), false)")
        connections[slot] = c
        return c
    }

    private func discardIfBroken(_ slot: Int) {
        if connections[slot]?.isBroken == true {
            connections[slot]?.close()
            connections[slot] = nil
        }
    }

    // MARK: Optimistic, overlapped

    /// Sends `requests` optimistically on a free connection and returns without waiting, or nil when
    /// the batch must be written carefully (this writer does not know enough, a failure is recent, or
    /// no connection is free). `follows` says whether another sent batch is still in flight.
    func send(_ requests: [AppendRequest], groupSizes: [Int], recordedAt: Int64, follows: Bool) throws -> Sent? {
        guard let slot = busy.firstIndex(of: false) else { return nil }
        guard carefulBatches == 0, !follows || soloBatches == 0, let view = optimisticView(for: requests) else { return nil }
        if soloBatches > 0 { soloBatches -= 1 }
        let plan = Self.plan(requests, groupSizes: groupSizes, recordedAt: recordedAt, view: view)
        let own = sequence % 3
        var statements = plan.statements(baton: (batonClass, own, follows ? (own + 2) % 3 : nil))
        if follows, plan.wrote {
            // A follower proves its predecessor committed; without the predecessor's last leaf it cannot.
            guard view.size > 0, let lastLeaf else { return nil }
            statements.append(BatchStatements.expectCommitted(index: view.size - 1, leafHash: lastLeaf))
        }
        if statements.isEmpty { return Sent(slot: slot, pipeline: nil, requests: requests, planned: plan.outcome, increments: []) }
        let connection = try connection(slot)
        let pipeline: PostgresConnection.SentPipeline
        do {
            pipeline = try connection.send(statements)
        } catch {
            discardIfBroken(slot)
            forget()
            throw error
        }
        busy[slot] = true
        sequence += 1
        if follows { countsLock.withLock { $0.overlapped += 1 } }
        var undo: [String: SubjectHead?] = [:]
        for r in requests where undo[r.subject] == nil { undo[r.subject] = .some(heads[r.subject]) }
        remember(plan.outcome)
        inFlightUndo.append(undo)
        return Sent(slot: slot, pipeline: pipeline, requests: requests, planned: plan.outcome, increments: plan.increments)
    }

    /// The answer of a sent batch: its outcome, or nil when an assumption failed (its transaction was
    /// rolled back; this writer has forgotten what it expected).
    func receive(_ sent: Sent) throws -> Outcome? {
        guard let pipeline = sent.pipeline else { return sent.planned }
        let slot = sent.slot
        defer {
            busy[slot] = false
            discardIfBroken(slot)
        }
        guard let connection = connections[slot] else { throw LedgerStoreError(.unavailable, "the writer's connection is gone") }
        let results: [PostgresRows]
        do {
            results = try connection.receive(pipeline)
        } catch where error.sqlState.map(Self.assumptionFailed.contains) == true {
            countsLock.withLock { $0.failedAssumptions += 1 }
            rollBack()
            carefulBatches = Self.carefulAfterFailure
            soloBatches = Self.soloAfterFailure
            return nil
        } catch {
            rollBack()
            throw error
        }
        if !inFlightUndo.isEmpty { inFlightUndo.removeFirst() }
        var outcome = sent.planned
        if !sent.increments.isEmpty, let first = results.first {
            let after = BatchStatements.meters(fromCharge: first)
            outcome.meters = Admission.readings(sent.requests, outcome.outcomes, before: Admission.before(after: after, increments: sent.increments))
        }
        return outcome
    }

    /// The view this writer expects, when it is enough for the batch: the size is known (and the tree
    /// at it), and every expected subject version is of a subject whose head is known and not behind it,
    /// or claims the subject is new (a unique index then verifies that). A remembered head behind the
    /// expected version is stale (another process appended to the subject): deciding a version conflict
    /// from it would refuse every retry, so such a batch reads the heads under the lock instead.
    private func optimisticView(for requests: [AppendRequest]) -> LogView? {
        guard let size, !maintainsTree || frontier?.size == size else { return nil }
        guard requests.allSatisfy({ r in
            guard let expected = r.expectedSubjectVersion, expected != 0 else { return true }
            guard let head = heads[r.subject] else { return false }
            return head.count >= expected
        }) else {
            return nil
        }
        // Only this batch's subjects: the planner copies its map, and the writer's may be large.
        var known: [String: SubjectHead] = [:]
        for r in requests { if let head = heads[r.subject] { known[r.subject] = head } }
        return LogView(size: size, heads: known, frontier: maintainsTree ? frontier : nil)
    }

    private func remember(_ outcome: Outcome) {
        if heads.count > Self.rememberedSubjects { heads.removeAll() }
        var last: LedgerEntry?
        for case .appended(let e) in outcome.outcomes {
            heads[e.subject] = SubjectHead(count: e.subjectIndex + 1, lastLeaf: e.leafHash)
            if last.map({ e.index > $0.index }) ?? true { last = e }
        }
        if let last { lastLeaf = last.leafHash }
        size = outcome.size
        frontier = outcome.frontier
    }

    // MARK: Careful

    /// Writes `requests` under the head lock, in two round trips. Nothing may be in flight.
    func writeCarefully(_ requests: [AppendRequest], groupSizes: [Int], recordedAt: Int64) throws -> Outcome {
        precondition(!busy.contains(true), "a careful batch is never overlapped")
        if carefulBatches > 0 { carefulBatches -= 1 }
        countsLock.withLock { $0.careful += 1 }
        do {
            let connection = try connection(0)
            let view = try readView(for: requests, on: connection)
            let plan = Self.plan(requests, groupSizes: groupSizes, recordedAt: recordedAt, view: view)
            do {
                _ = try connection.pipeline(plan.statements(baton: (batonClass, sequence % 3, nil)) + ["COMMIT"])
            } catch {
                if !connection.isBroken { _ = try? connection.execute("ROLLBACK") }
                throw error
            }
            var outcome = plan.outcome
            if let admission = view.admission { outcome.meters = Admission.readings(requests, outcome.outcomes, before: admission.meters) }
            remember(outcome)
            return outcome
        } catch {
            forget()
            discardIfBroken(0)
            throw error
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
        var reads: [SQLQuery] = ["BEGIN", BatchStatements.waitForLocks, BatchStatements.lockHead, BatchStatements.subjectHeads(subjects)]
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
            guard let sizeRow = results[2].rows.first else { throw LedgerStoreError(.database, "the ledger head row is missing; run migrations") }
            var view = LogView(size: try sizeRow.int64(0), heads: [:])
            for row in results[3].rows {
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

    // MARK: Planning (both modes)

    /// A planned batch: its outcome if it commits, and what to write.
    struct Plan {
        var outcome: Outcome
        var increments: [(key: MeterKey, count: Int64)]
        var wrote: Bool
        var write: (_ baton: (writer: Int64, own: Int64, waitFor: Int64?)) -> SQLQuery

        func statements(baton: (writer: Int64, own: Int64, waitFor: Int64?)) -> [SQLQuery] { wrote ? [write(baton)] : [] }
    }

    /// Plans the batch against `view`: refusals decided before planning (admission of charges, then
    /// claims: an existing claim for another value refuses the request; claims made earlier in this
    /// batch count), the planner's outcomes, and the one statement that writes them.
    static func plan(_ requests: [AppendRequest], groupSizes: [Int], recordedAt: Int64, view: LogView) -> Plan {
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
        let payloads = salted(requests)
        let (outcomes, newSize) = AppendPlanner.plan(
            requests: requests, size: view.size, subjects: view.heads, existing: view.existing, payloadDigests: payloads.map { $0?.digest },
            recordedAt: recordedAt, groupSizes: groupSizes, rejections: rejections)
        let increments = Admission.increments(requests, outcomes)
        guard newSize != view.size else {
            return Plan(outcome: Outcome(outcomes: outcomes, size: view.size, frontier: view.frontier), increments: [], wrote: false) { _ in "SELECT 1" }
        }
        var entries: [LedgerEntry] = []
        var stored: [(digest: [UInt8], salt: [UInt8], content: [UInt8])] = []
        var newClaims: [(claim: Claim, entryIndex: Int64)] = []
        var claimedNow = Set<ClaimKey>()
        var credentials = Set<Int64>()
        for (i, outcome) in outcomes.enumerated() {
            guard case .appended(let e) = outcome else { continue }
            entries.append(e)
            if let p = payloads[i], let content = requests[i].payload { stored.append((p.digest, p.salt, content)) }
            for c in requests[i].claims {
                let key = ClaimKey(scope: c.scope, key: c.key)
                if view.claims[key] == nil, claimedNow.insert(key).inserted { newClaims.append((c, e.index)) }
            }
            if let charge = requests[i].charge { credentials.insert(charge.credentialId) }
        }
        var nodes: [(id: MerkleNodeID, hash: [UInt8])] = []
        var tree = view.frontier
        if var t = tree {
            for e in entries.sorted(by: { $0.index < $1.index }) {
                precondition(e.index == t.size, "the planner assigns dense indexes from the head")
                for (id, hash) in t.append(leafHash: e.leafHash) { nodes.append((id, hash)) }
            }
            tree = t
        }
        let size = view.size, allCredentials = credentials.sorted()
        return Plan(outcome: Outcome(outcomes: outcomes, size: newSize, frontier: tree), increments: increments, wrote: true) { baton in
            BatchStatements.writeBatch(
                growFrom: size, to: newSize, entries: entries, recordedAt: recordedAt, payloads: stored, claims: newClaims, nodes: nodes,
                increments: increments, credentials: allCredentials, baton: baton)
        }
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
