public import LedgerCore
import LedgerStore

/// A read model too far behind the log for a reader to catch it up: it is being rebuilt or caught up.
public struct ProjectionLagging: Error, Sendable, CustomStringConvertible {
    public var model: String
    public var position: Int64
    public var head: Int64
    public var description: String {
        "the \(model) read model is catching up with the log (\(position) of \(head) entries applied); retry shortly"
    }
}

/// Reads that answer the users' questions from the log and the read models, each in one statement
/// that also returns the model's position, so a reader can catch the model up first when it is behind.
public struct LedgerQueries: Sendable {
    public let runner: ProjectionRunner
    public init(runner: ProjectionRunner) { self.runner = runner }

    /// Most chunks a reader applies itself before answering; beyond that it answers 503.
    static let readerCatchUpChunks: Int64 = 10

    /// Everything the ledger holds about a certificate hash, in log order.
    public struct Provenance: Sendable {
        /// The entries of `cer:<hash>`, in subject order.
        public var entries: [LedgerEntry]
        /// Problems of that subject's chain (a missing entry is reported, not hidden).
        public var chainProblems: [LedgerProblem]
        /// Entries on other subjects that name the hash (project registrations), with the link's kind and ref.
        public var links: [(kind: String, ref: String, entry: LedgerEntry)]
    }

    /// Runs `read` (which returns the head and the model's position with its rows); when the model is
    /// behind the head as read, catches it up and reads again, so answers include every committed append.
    func current<T: Sendable>(_ model: String, _ read: @escaping @Sendable (PostgresConnection) throws -> (head: Int64, position: Int64, value: T)) async throws -> T {
        let first = try await runner.pool.withConnection(read)
        if first.position >= first.head { return first.value }
        // A reader waits for a few chunks, not for a whole rebuild (after a migration or a long outage).
        if first.head - first.position > Int64(runner.chunk) * Self.readerCatchUpChunks {
            throw ProjectionLagging(model: model, position: first.position, head: first.head)
        }
        try await runner.catchUp(only: model)
        return try await runner.pool.withConnection(read).value
    }

    public func provenance(certificateHash: String) async throws -> Provenance {
        let subject = Subject.certificate(certificateHash)
        let (entries, links) = try await current("certificates") { c -> (head: Int64, position: Int64, value: ([LedgerEntry], [(String, String, LedgerEntry)])) in
            let rows = try c.query("""
                SELECT 'h', (SELECT size FROM ledger_head WHERE id = 1), NULL::text,
                       (SELECT position FROM projection_checkpoints WHERE name = 'certificates'), NULL::text, NULL::text, NULL::bigint,
                       NULL::text, NULL::bytea, NULL::bytea, NULL::text, NULL::bytea, NULL::text, NULL::text
                UNION ALL
                (SELECT 'e', \(sql: EntryRows.columns), NULL, NULL FROM ledger_entries WHERE subject = \(subject) ORDER BY subject_index)
                UNION ALL
                (SELECT 'l', e.idx, e.subject, e.subject_index, e.type, e.account, (extract(epoch from e.recorded_at) * 1000)::bigint, e.body,
                        e.payload_digest, e.prev_subject_leaf, e.idempotency_key, e.leaf_hash, l.kind, l.ref
                 FROM proj_certificate_links l JOIN ledger_entries e ON e.idx = l.idx WHERE l.certificate_hash = \(certificateHash) ORDER BY l.idx)
                """).rows
            var head: Int64 = 0, position: Int64 = 0
            var entries: [LedgerEntry] = []
            var links: [(String, String, LedgerEntry)] = []
            for row in rows {
                switch row[0] {
                case "h":
                    head = try row.int64(1)
                    position = try row.optionalInt64(3) ?? 0
                case "e": entries.append(try EntryRows.decode(row, from: 1))
                default: links.append((row[12] ?? "", row[13] ?? "", try EntryRows.decode(row, from: 1)))
                }
            }
            return (head, position, (entries, links))
        }
        return Provenance(entries: entries, chainProblems: SubjectChain.problems(subject: subject, entries), links: links.map { ($0.0, $0.1, $0.2) })
    }

    /// The steps an account recorded under a runId, and the chain's state.
    public func run(account: String, runId: String) async throws -> RunChainStatus? {
        let steps = try await current("runs") { c -> (head: Int64, position: Int64, value: [RunChainStatus.Step]) in
            let rows = try c.query("""
                SELECT 'h', (SELECT size FROM ledger_head WHERE id = 1), (SELECT position FROM projection_checkpoints WHERE name = 'runs'),
                       NULL::text, NULL::bigint, NULL::text, NULL::text
                UNION ALL
                SELECT 's', idx, NULL, certificate_hash, step_index, prev_step_hash, workflow_id
                FROM proj_run_steps WHERE account = \(account) AND run_id = \(runId)
                """).rows
            var head: Int64 = 0, position: Int64 = 0
            var steps: [RunChainStatus.Step] = []
            for row in rows {
                if row[0] == "h" {
                    head = try row.int64(1)
                    position = try row.optionalInt64(2) ?? 0
                } else {
                    steps.append(RunChainStatus.Step(
                        certificateHash: try row.text(3), stepIndex: try row.optionalInt64(4), prevStepHash: row[5], workflowId: row[6],
                        ledgerIndex: try row.int64(1)))
                }
            }
            return (head, position, steps)
        }
        return steps.isEmpty ? nil : RunChainStatus.evaluate(runId: runId, steps: steps)
    }

    /// The account's attestations (`cer.attested` entries) whose record is in one of `lifecycles` (nil: any),
    /// newest first, with the record's state.
    public func attestations(account: String, lifecycles: [String]?, limit: Int, offset: Int) async throws -> [(entry: LedgerEntry, lifecycle: String)] {
        let all = lifecycles == nil, states = lifecycles ?? []
        return try await current("certificates") { c -> (head: Int64, position: Int64, value: [(entry: LedgerEntry, lifecycle: String)]) in
            let (head, position) = try Self.headAndPosition(c, "certificates")
            let rows = try c.query("""
                SELECT * FROM (
                    SELECT \(sql: EntryRows.columns), coalesce((SELECT r.lifecycle FROM proj_certificate_records r
                        WHERE r.certificate_hash = substr(e.subject, 5) AND r.account = e.account), 'active') AS lc
                    FROM ledger_entries e WHERE e.account = \(account) AND e.type = 'cer.attested') x
                WHERE \(all ? "all" : "some")::text = 'all' OR lc = ANY(\(textArray: states)::text[])
                ORDER BY idx DESC LIMIT \(limit) OFFSET \(offset)
                """).rows
            return (head, position, try rows.map { r throws(LedgerStoreError) in (try EntryRows.decode(r, from: 0), r[12] ?? "active") })
        }
    }

    /// One of an account's records, as the certificates read model has it.
    public struct ScopedRecord: Sendable, Equatable {
        public var certificateHash: String
        public var lifecycle: String
        public var deletionRequested: Int64?
    }

    /// The account's records among the steps it recorded under `runId` (at most `limit`).
    public func records(account: String, runId: String, limit: Int) async throws -> [ScopedRecord] {
        let hashes = try await current("runs") { c -> (head: Int64, position: Int64, value: [String]) in
            let (head, position) = try Self.headAndPosition(c, "runs")
            let rows = try c.query("""
                SELECT certificate_hash FROM proj_run_steps WHERE account = \(account) AND run_id = \(runId) ORDER BY idx LIMIT \(limit)
                """).rows
            return (head, position, try rows.map { r throws(LedgerStoreError) in try r.text(0) })
        }
        guard !hashes.isEmpty else { return [] }
        return try await current("certificates") { c -> (head: Int64, position: Int64, value: [ScopedRecord]) in
            let (head, position) = try Self.headAndPosition(c, "certificates")
            let rows = try c.query("""
                SELECT certificate_hash, lifecycle, deletion_requested_idx FROM proj_certificate_records
                WHERE account = \(account) AND certificate_hash = ANY(\(textArray: hashes)::text[]) ORDER BY first_idx
                """).rows
            return (head, position, try rows.map(Self.scopedRecord))
        }
    }

    /// The account's records listed by project bundles it registered as `projectHash` (at most `limit`).
    public func records(account: String, projectHash: String, limit: Int) async throws -> [ScopedRecord] {
        try await current("certificates") { c -> (head: Int64, position: Int64, value: [ScopedRecord]) in
            let (head, position) = try Self.headAndPosition(c, "certificates")
            let rows = try c.query("""
                SELECT r.certificate_hash, r.lifecycle, r.deletion_requested_idx FROM proj_certificate_records r
                WHERE r.account = \(account) AND r.certificate_hash IN (
                    SELECT l.certificate_hash FROM proj_certificate_links l JOIN ledger_entries e ON e.idx = l.idx AND e.account = \(account)
                    WHERE l.kind = 'project' AND l.ref = \(projectHash))
                ORDER BY r.first_idx LIMIT \(limit)
                """).rows
            return (head, position, try rows.map(Self.scopedRecord))
        }
    }

    /// The account's records attested naming the data-subject digest (at most `limit`).
    public func records(account: String, dataSubject digest: String, limit: Int) async throws -> [ScopedRecord] {
        try await current("certificates") { c -> (head: Int64, position: Int64, value: [ScopedRecord]) in
            let (head, position) = try Self.headAndPosition(c, "certificates")
            let rows = try c.query("""
                SELECT r.certificate_hash, r.lifecycle, r.deletion_requested_idx FROM proj_data_subjects d
                JOIN proj_certificate_records r ON r.certificate_hash = d.certificate_hash AND r.account = d.account
                WHERE d.account = \(account) AND d.digest = \(digest) ORDER BY r.first_idx LIMIT \(limit)
                """).rows
            return (head, position, try rows.map(Self.scopedRecord))
        }
    }

    static func scopedRecord(_ r: PostgresRow) throws(LedgerStoreError) -> ScopedRecord {
        ScopedRecord(certificateHash: try r.text(0), lifecycle: try r.text(1), deletionRequested: try r.optionalInt64(2))
    }

    /// The log's head and a model's position, read before the model's rows (which then include at least that position).
    static func headAndPosition(_ c: PostgresConnection, _ model: String) throws(LedgerStoreError) -> (Int64, Int64) {
        let row = try c.query("""
            SELECT (SELECT size FROM ledger_head WHERE id = 1), (SELECT position FROM projection_checkpoints WHERE name = \(model))
            """).single("the head")
        return (try row.int64(0), try row.optionalInt64(1) ?? 0)
    }

    /// Of `certificateHashes`, those that some account made public or that `account` holds itself.
    public func visibleCertificates(_ certificateHashes: [String], to account: String?) async throws -> Set<String> {
        guard !certificateHashes.isEmpty else { return [] }
        return try await current("certificates") { c -> (head: Int64, position: Int64, value: Set<String>) in
            let rows = try c.query("""
                SELECT 'h', (SELECT size FROM ledger_head WHERE id = 1)::text, (SELECT position FROM projection_checkpoints WHERE name = 'certificates')::text
                UNION ALL
                SELECT DISTINCT 'c', certificate_hash, NULL FROM proj_certificate_records
                WHERE certificate_hash = ANY(\(textArray: certificateHashes)::text[]) AND lifecycle <> 'deleted'
                  AND ((visibility = 'public' AND lifecycle <> 'hidden') OR account = \(account ?? ""))
                """).rows
            var head: Int64 = 0, position: Int64 = 0
            var visible = Set<String>()
            for row in rows {
                if row[0] == "h" {
                    head = row[1].flatMap { Int64($0) } ?? 0
                    position = row[2].flatMap { Int64($0) } ?? 0
                } else if let h = row[1] {
                    visible.insert(h)
                }
            }
            return (head, position, visible)
        }
    }
}
