public import CERKit
import Foundation
public import LedgerCore

/// `ledger verify`: recomputes every leaf hash and subject chain from the rows, checks index density,
/// payload digests, and that the append-only guards (triggers, their functions, grants) are exactly as the
/// migrations installed them; folds the key events with the trust anchors (unauthorised ones are
/// problems); recomputes every stored tree node from the leaves, checks every checkpoint's root and its
/// signature by a key valid for it under the configured origin, a consistency proof between each two
/// consecutive checkpoints, and that the log extends every trusted checkpoint held outside the database.
public enum LedgerVerifier {
    /// What the audit found.
    public struct Report: Sendable {
        public var size: Int64
        public var entriesChecked: Int64
        public var subjects: Int
        public var payloadsChecked: Int
        public var nodesChecked: Int64 = 0
        public var checkpointsChecked: Int = 0
        public var trustedCheckpointsChecked: Int = 0
        /// Checkpoint timestamps (RFC 3161 tokens) verified against the TSA roots.
        public var timestampsChecked: Int = 0
        /// Per-record timestamps verified against the TSA roots.
        public var recordTimestampsChecked: Int = 0
        /// Witness cosignatures verified with the trusted witness keys.
        public var cosignaturesChecked: Int = 0
        /// The largest checkpoint with the witness quorum (when witness keys were given).
        public var witnessedSize: Int64?
        /// Cross-log anchors whose receipts verified with the keys they name.
        public var anchorsChecked: Int = 0
        /// Erased payloads, each accounted for by an authorised `payload.purged` entry.
        public var purgesChecked: Int = 0
        public var keys: KeyHistory = KeyHistory()
        public var problems: [LedgerProblem]
        /// Findings that do not make the log broken (a revoked key's checkpoint that a valid one supersedes).
        public var warnings: [LedgerProblem] = []
        public var isIntact: Bool { problems.isEmpty }
    }

    /// What the audit trusts that the database cannot change.
    public struct Trust: Sendable {
        /// The log's origin: checkpoints are accepted under this name only.
        public var origin: String
        /// The node the key events must name.
        public var nodeId: String
        /// Pinned node keys and root keys that authorise key events.
        public var anchors: TrustAnchors
        /// Signed checkpoints held elsewhere (an auditor's copy, a server's state file), with a name each.
        public var trustedCheckpoints: [(name: String, note: [UInt8])]
        /// Trust anchors of timestamp authorities: checkpoint timestamps are verified against them.
        public var timestampRoots: RFC3161Verifier.Roots?
        /// Trusted witness keys (cosignature verifier keys) and how many must cosign a checkpoint.
        public var witnesses: [NoteVerifier] = []
        public var witnessQuorum = 1
        /// The minimum retention floor every erasure must respect, in days.
        public var retentionFloorDays = ErasureDecision.defaultFloorDays

        public init(
            origin: String = "evidence-ledger/evidence-ledger-node", nodeId: String = "evidence-ledger-node", anchors: TrustAnchors = TrustAnchors(),
            trustedCheckpoints: [(name: String, note: [UInt8])] = [], timestampRoots: RFC3161Verifier.Roots? = nil
        ) {
            self.timestampRoots = timestampRoots
            self.origin = origin
            self.nodeId = nodeId
            self.anchors = anchors
            self.trustedCheckpoints = trustedCheckpoints
        }
    }

    /// Audits the log in chunks of `chunk` entries.
    public static func verify(pool: PostgresConnectionPool, trust: Trust = Trust(), chunk: Int = 5000) async throws -> Report {
        var problems: [LedgerProblem] = try await pool.withConnection { c in try guardProblems(c) }
        let size = try await pool.withConnection { c in try c.headSize() }
        let log = PostgresEventLog(pool: pool)
        let keyEvents = try await log.keyEvents()
        let keys = NodeKeyHistory.history(events: keyEvents, anchors: trust.anchors, nodeId: trust.nodeId)
        if trust.anchors.isEmpty, !keyEvents.isEmpty {
            problems.append(LedgerProblem(
                index: nil, what: "no trust anchor is configured (--pinned-key, --root-key or the keys directory's trust file): no key event can be authorised"))
        }
        problems += keys.ignored.map { LedgerProblem(index: $0.index, what: "\($0.type) of \($0.kid ?? "no kid") is not authorised: \($0.reason)") }
        if keys.ignoredCount > keys.ignored.count {
            problems.append(LedgerProblem(index: nil, what: "and \(keys.ignoredCount - keys.ignored.count) more key events that are not authorised"))
        }
        var tree = TreeAudit(
            checkpoints: try await checkpointsToCheck(log), keys: keys, origin: trust.origin, trusted: trust.trustedCheckpoints)
        var audit = LedgerAudit()
        var payloadsChecked = 0
        var missingPayloads: [Int64: (digest: [UInt8], subject: String, account: String?)] = [:]
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
            var leaves: [(Int64, [UInt8], Int64)] = []
            for row in rows {
                let entry = try EntryRows.decode(row)
                audit.check(entry)
                checked += 1
                if let digest = entry.payloadDigest {
                    if let salt = try row.optionalBytes(11), let content = try row.optionalBytes(12) {
                        payloadsChecked += 1
                        if ProtocolHash.sha256(salt + content) != digest {
                            problems.append(LedgerProblem(index: entry.index, what: "stored payload does not match the entry's payload digest"))
                        }
                    } else {
                        missingPayloads[entry.index] = (digest, entry.subject, entry.account)
                    }
                }
                leaves.append((entry.index, entry.leafHash, entry.recordedAt))
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
        var timestampsChecked = (checkpoints: 0, records: 0)
        if let roots = trust.timestampRoots {
            let found = try await checkTimestamps(pool: pool, checkpoints: tree.checkpoints, roots: roots)
            timestampsChecked = (found.checkpoints, found.records)
            problems += found.problems
        }
        let witnessing = try await checkCosignatures(log, checkpoints: tree.checkpoints, trust: trust)
        problems += witnessing.problems
        let anchors = try await checkAnchors(pool: pool, checkpoints: tree.checkpoints)
        problems += anchors.problems
        let erasure = try await checkErasures(log, missing: missingPayloads, floorDays: trust.retentionFloorDays)
        problems += erasure.problems
        var report = Report(
            size: size, entriesChecked: checked, subjects: audit.subjectCount, payloadsChecked: payloadsChecked,
            nodesChecked: tree.nodesChecked, checkpointsChecked: tree.checkpoints.count,
            trustedCheckpointsChecked: trust.trustedCheckpoints.count, timestampsChecked: timestampsChecked.checkpoints,
            recordTimestampsChecked: timestampsChecked.records, keys: keys,
            problems: problems + audit.problems + tree.problems, warnings: tree.warnings + witnessing.warnings + erasure.warnings)
        report.cosignaturesChecked = witnessing.checked
        report.witnessedSize = witnessing.witnessedSize
        report.anchorsChecked = anchors.checked
        report.purgesChecked = erasure.checked
        return report
    }

    /// Every missing payload is accounted for by a `payload.purged` entry, and every purge had authority:
    /// it names the payload's entry and digest, a `deletion.requested` of the same account and record that
    /// came before it, no legal hold covered the record when it was appended, and the record was older than
    /// the floor (`floorDays`, and at least the floor the purge itself states). A purge whose bytes are still
    /// stored is a warning (the worker deletes them at its next run).
    static func checkErasures(
        _ log: PostgresEventLog, missing: [Int64: (digest: [UInt8], subject: String, account: String?)], floorDays: Int
    ) async throws -> (checked: Int, problems: [LedgerProblem], warnings: [LedgerProblem]) {
        let events = try await log.pool.withConnection { c in
            try EntryRows.decode(c.query("""
                SELECT \(sql: EntryRows.columns) FROM ledger_entries
                WHERE type IN ('payload.purged', 'legal_hold.applied', 'legal_hold.released', 'retention.policy_set') ORDER BY idx
                """))
        }
        var problems: [LedgerProblem] = []
        var warnings: [LedgerProblem] = []
        // Holds and policies as they stood when each purge was appended (folded in log order).
        var holds = HoldBook()
        var policies = PolicyBook()
        var purged: Set<Int64> = []
        var checked = 0
        for e in events {
            guard e.type == EventType.payloadPurged else {
                holds.apply(e)
                policies.apply(e)
                continue
            }
            func problem(_ what: String) { problems.append(LedgerProblem(index: e.index, what: what)) }
            guard let target = e.body["entryIndex"]?.numberValue.flatMap({ Int64(exactly: $0) }), let hash = e.body["certificateHash"]?.stringValue,
                let account = e.account, e.subject == Subject.certificate(hash)
            else {
                problem("a payload.purged entry names no entry, certificate or account")
                continue
            }
            purged.insert(target)
            guard let erased = try await log.entry(index: target), erased.index < e.index, erased.subject == e.subject, erased.account == account,
                let digest = erased.payloadDigest, e.body["payloadDigest"]?.stringValue == Hex.encode(digest)
            else {
                problem("the purge of entry \(target) does not name an earlier payload of the same record and account")
                continue
            }
            var authorised = true
            let authority = e.body["authority"]?["index"]?.numberValue.flatMap { Int64(exactly: $0) }
            let firstTime = try await log.pool.withConnection { c in
                try c.query("""
                    SELECT (extract(epoch from min(recorded_at)) * 1000)::bigint FROM ledger_entries WHERE subject = \(e.subject) AND account = \(account)
                    """).rows.first?.optionalInt64(0)
            }
            var source: LedgerEntry? = nil
            if let authority { source = try await log.entry(index: authority) }
            let scope = try await recordScope(log, hash: hash, account: account, before: e.index)
            let governing = policies.effective(scope)
            // A locked policy covering the record keeps it until its window has elapsed, whatever authority is named.
            if let lock = policies.lock(scope), let firstTime, !lock.hasExpired(recordedAt: firstTime, now: e.recordedAt) {
                problem("entry \(target)'s payload was purged while locked retention policy \(lock.index) kept the record")
                authorised = false
            }
            if let request = source, request.type == EventType.deletionRequested, request.subject == e.subject, request.account == account,
                request.index < e.index
            {
            } else if let set = source, let policy = RetentionPolicy(entry: set), set.index < e.index {
                // An expired policy: the one in force over the record when the purge was appended (the narrowest
                // scope that has one), with the action delete, and the record older than its window.
                if governing?.index != set.index || policy.action != RetentionPolicy.Action.delete {
                    problem("the purge of entry \(target) names a retention policy that did not govern it, did not delete, or was no longer in force")
                    authorised = false
                } else if let window = policy.windowDays, let firstTime, e.recordedAt - firstTime < Int64(window) * 86_400_000 {
                    problem("entry \(target)'s payload was purged before its retention window of \(window) days had elapsed")
                    authorised = false
                } else if policy.windowDays == nil {
                    problem("entry \(target)'s payload was purged under a permanent policy")
                    authorised = false
                }
            } else {
                problem("the purge of entry \(target) has no earlier deletion request or retention policy of the same record and account as its authority")
                authorised = false
            }
            if let hold = holds.holding(scope).first {
                problem("entry \(target)'s payload was purged while legal hold \(hold.holdId) (case \(hold.caseId)) was in force")
                authorised = false
            }
            let stated = e.body["floorDays"]?.numberValue.flatMap { Int(exactly: $0) } ?? 0
            let floor = Int64(max(floorDays, stated)) * 86_400_000
            if let firstTime, e.recordedAt - firstTime < floor {
                problem("entry \(target)'s payload was purged \((e.recordedAt - firstTime) / 86_400_000) days after the record began, inside the \(max(floorDays, stated))-day floor")
                authorised = false
            }
            if missing[target] == nil {
                warnings.append(LedgerProblem(index: e.index, what: "entry \(target)'s payload was purged but its bytes are still stored (the retention worker deletes them at its next run)"))
            }
            if authorised { checked += 1 }
        }
        for (index, m) in missing.sorted(by: { $0.key < $1.key }) where !purged.contains(index) {
            problems.append(LedgerProblem(index: index, what: "the payload of \(m.subject) is missing and no payload.purged entry records its erasure"))
        }
        return (checked, problems, warnings)
    }

    /// What the account's record belonged to before entry `before`, from the log alone: the runs,
    /// application and surface its attestations name, and the projects the account registered listing it.
    static func recordScope(_ log: PostgresEventLog, hash: String, account: String, before: Int64) async throws -> RecordScope {
        let entries = try await log.entries(subject: Subject.certificate(hash)).entries.filter { $0.index < before }
        let projects = try await log.pool.withConnection { c in
            try c.query("""
                SELECT DISTINCT substr(subject, 9) FROM ledger_entries
                WHERE type = 'project.registered' AND account = \(account) AND idx < \(before)
                  AND body::jsonb->'steps' @> jsonb_build_array(jsonb_build_object('certificateHash', \(hash)::text))
                ORDER BY 1
                """).rows.map { r throws(LedgerStoreError) in try r.text(0) }
        }
        return RecordScope.of(account: account, certificateHash: hash, entries: entries, projects: projects)
    }

    /// Every stored cosignature by a trusted witness must verify over its checkpoint; with witness keys
    /// given, at least one checkpoint must carry the quorum (the largest is reported), and a later
    /// checkpoint without it is a warning (its witnesses may not have answered yet).
    static func checkCosignatures(_ log: PostgresEventLog, checkpoints: [StoredCheckpoint], trust: Trust) async throws
        -> (checked: Int, witnessedSize: Int64?, problems: [LedgerProblem], warnings: [LedgerProblem])
    {
        guard !trust.witnesses.isEmpty else { return (0, nil, [], []) }
        var problems: [LedgerProblem] = []
        var checked = 0
        var witnessed: Int64? = nil
        var unwitnessed: [Int64] = []
        for page in stride(from: 0, to: checkpoints.count, by: 1000) {
            let slice = Array(checkpoints[page..<min(page + 1000, checkpoints.count)])
            let stored = try await log.cosignatures(sizes: slice.map(\.size))
            for c in slice {
                let lines = stored[c.size] ?? []
                let note = PostgresEventLog.cosignedNote(c.note, lines)
                do {
                    let names = try WitnessQuorum.check(note, witnesses: trust.witnesses, quorum: trust.witnessQuorum)
                    checked += names.count
                    witnessed = c.size
                } catch {
                    if error.description.contains("does not verify") {
                        problems.append(LedgerProblem(index: nil, what: "checkpoint \(c.size): \(error)"))
                    } else {
                        unwitnessed.append(c.size)
                    }
                }
            }
        }
        var warnings: [LedgerProblem] = []
        if let witnessed {
            let later = unwitnessed.filter { $0 > witnessed }
            if !later.isEmpty {
                warnings.append(LedgerProblem(
                    index: nil, what: "\(later.count) checkpoint(s) after \(witnessed) entries lack the witness quorum of \(trust.witnessQuorum) (the latest: \(later.last!))"))
            }
        } else if !checkpoints.isEmpty {
            problems.append(LedgerProblem(index: nil, what: "no checkpoint is cosigned by \(trust.witnessQuorum) of the trusted witnesses"))
        }
        return (checked, witnessed, problems, warnings)
    }

    /// Every `anchor.recorded` entry: its reply (the payload) is the one the body names, is over the
    /// SHA-256 of the stored note of its checkpoint, and its receipt verifies with the key the body names.
    static func checkAnchors(pool: PostgresConnectionPool, checkpoints: [StoredCheckpoint]) async throws -> (checked: Int, problems: [LedgerProblem]) {
        let notes = Dictionary(checkpoints.map { ($0.size, $0.note) }, uniquingKeysWith: { a, _ in a })
        var problems: [LedgerProblem] = []
        var checked = 0
        var after: Int64 = -1
        while true {
            let start = after
            let rows = try await pool.withConnection { c in
                try c.query("""
                    SELECT \(sql: EntryRows.columns), p.content FROM ledger_entries e LEFT JOIN ledger_payloads p ON p.digest = e.payload_digest
                    WHERE e.type IN ('checkpoint.timestamped', 'anchor.recorded') AND e.type = 'anchor.recorded' AND e.idx > \(start)
                    ORDER BY e.idx LIMIT 500
                    """).rows
            }
            for row in rows {
                let entry = try EntryRows.decode(row)
                after = entry.index
                let b = entry.body
                guard let size = b["size"]?.numberValue.flatMap({ Int64(exactly: $0) }), let note = notes[size] else {
                    problems.append(LedgerProblem(index: entry.index, what: "an anchor names no stored checkpoint"))
                    continue
                }
                let hash = AnchorReceipt.anchoredHash(note: note)
                guard b["anchoredHash"]?.stringValue == hash, let kid = b["kid"]?.stringValue,
                    let key = b["publicKey"]?.stringValue.flatMap(Base64.decodeURL), key.count == 32
                else {
                    problems.append(LedgerProblem(index: entry.index, what: "the anchor of checkpoint \(size) is not over its note, or names no key"))
                    continue
                }
                guard let reply = try row.optionalBytes(11), b["replySha256"]?.stringValue == Hex.encode(ProtocolHash.sha256(reply)) else {
                    problems.append(LedgerProblem(index: entry.index, what: "the anchor reply of checkpoint \(size) is missing or not the one its entry names"))
                    continue
                }
                do {
                    _ = try AnchorReceipt.verify(reply: reply, hash: hash, manifest: AnchorReceipt.manifest(kid: kid, publicKey: key))
                    checked += 1
                } catch {
                    problems.append(LedgerProblem(index: entry.index, what: "the anchor of checkpoint \(size) does not verify: \(error)"))
                }
            }
            if rows.count < 500 { return (checked, problems) }
        }
    }

    /// Every timestamp entry's token (the payload) must match the digest its body names and verify in full
    /// against `roots`: a `checkpoint.timestamped` token over SHA-256 of the stored note of its size, a
    /// `cer.timestamped` token over the digest of its certificate hash. Read in pages (tokens are KiBs each).
    static func checkTimestamps(pool: PostgresConnectionPool, checkpoints: [StoredCheckpoint], roots: RFC3161Verifier.Roots) async throws
        -> (checkpoints: Int, records: Int, problems: [LedgerProblem])
    {
        let notes = Dictionary(checkpoints.map { ($0.size, $0.note) }, uniquingKeysWith: { a, _ in a })
        let types = [EventType.checkpointTimestamped, EventType.cerTimestamped]
        var problems: [LedgerProblem] = []
        var checked = (checkpoints: 0, records: 0)
        var after: Int64 = -1
        while true {
            let start = after
            let rows = try await pool.withConnection { c in
                try c.query("""
                    SELECT \(sql: EntryRows.columns), p.content FROM ledger_entries e LEFT JOIN ledger_payloads p ON p.digest = e.payload_digest
                    WHERE e.type = ANY(\(textArray: types)) AND e.idx > \(start) ORDER BY e.idx LIMIT 500
                    """).rows
            }
            for row in rows {
                let entry = try EntryRows.decode(row)
                after = entry.index
                let isCheckpoint = entry.type == EventType.checkpointTimestamped
                let what: String
                let imprint: [UInt8]
                if isCheckpoint {
                    guard let size = entry.body["size"]?.numberValue.flatMap({ Int64(exactly: $0) }), let note = notes[size] else {
                        problems.append(LedgerProblem(index: entry.index, what: "a checkpoint timestamp names no stored checkpoint"))
                        continue
                    }
                    (what, imprint) = ("checkpoint \(size)", ProtocolHash.sha256(note))
                } else {
                    guard let hash = entry.body["certificateHash"]?.stringValue, Subject.certificate(hash) == entry.subject,
                        let digest = ProtocolHash.digest(of: hash)
                    else {
                        problems.append(LedgerProblem(index: entry.index, what: "a record timestamp names no certificate of its subject"))
                        continue
                    }
                    (what, imprint) = ("certificate \(hash)", digest)
                }
                guard let token = try row.optionalBytes(11) else {
                    problems.append(LedgerProblem(index: entry.index, what: "the timestamp token of \(what) is missing"))
                    continue
                }
                if entry.body["tokenSha256"]?.stringValue != Hex.encode(ProtocolHash.sha256(token)) {
                    problems.append(LedgerProblem(index: entry.index, what: "the timestamp token of \(what) is not the one its entry names"))
                }
                switch await RFC3161Verifier.verify(token, imprint: imprint, roots: roots) {
                case .success: if isCheckpoint { checked.checkpoints += 1 } else { checked.records += 1 }
                case .failure(let failure):
                    problems.append(LedgerProblem(index: entry.index, what: "the timestamp of \(what) does not verify: \(failure.code.rawValue): \(failure)"))
                }
            }
            if rows.count < 500 { return (checked.checkpoints, checked.records, problems) }
        }
    }

    static func checkpointsToCheck(_ log: PostgresEventLog) async throws -> [StoredCheckpoint] {
        var all: [StoredCheckpoint] = []
        while true {
            let page = try await log.checkpoints(after: all.last?.size ?? -1, limit: 10_000)
            all += page
            if page.count < 10_000 { return all }
        }
    }

    /// One append-only trigger as its migration installed it. `type` is `pg_trigger.tgtype`: 1 row,
    /// 2 before, 4 insert, 8 delete, 16 update, 32 truncate.
    struct Guard {
        var table: String
        var trigger: String
        var type: Int
        var function: String
    }

    static let guards: [Guard] = [
        Guard(table: "ledger_entries", trigger: "ledger_entries_no_update", type: 1 | 2 | 16, function: "ledger_refuse_change"),
        Guard(table: "ledger_entries", trigger: "ledger_entries_no_delete", type: 1 | 2 | 8, function: "ledger_refuse_change"),
        Guard(table: "ledger_entries", trigger: "ledger_entries_no_truncate", type: 2 | 32, function: "ledger_refuse_change"),
        Guard(table: "ledger_head", trigger: "ledger_head_grows", type: 1 | 2 | 16, function: "ledger_head_only_grows"),
        Guard(table: "ledger_head", trigger: "ledger_head_no_delete", type: 2 | 8 | 32, function: "ledger_refuse_change"),
        Guard(table: "ledger_claims", trigger: "ledger_claims_no_update", type: 1 | 2 | 8 | 16, function: "ledger_refuse_change"),
        Guard(table: "ledger_claims", trigger: "ledger_claims_no_truncate", type: 2 | 32, function: "ledger_refuse_change"),
        Guard(table: "ledger_tree_nodes", trigger: "ledger_tree_nodes_no_change", type: 1 | 2 | 8 | 16, function: "ledger_append_only"),
        Guard(table: "ledger_tree_nodes", trigger: "ledger_tree_nodes_no_truncate", type: 2 | 32, function: "ledger_append_only"),
        Guard(table: "ledger_checkpoints", trigger: "ledger_checkpoints_no_change", type: 1 | 2 | 8 | 16, function: "ledger_append_only"),
        Guard(table: "ledger_checkpoints", trigger: "ledger_checkpoints_no_truncate", type: 2 | 32, function: "ledger_append_only"),
        Guard(table: "ledger_cosignatures", trigger: "ledger_cosignatures_no_change", type: 1 | 2 | 8 | 16, function: "ledger_append_only"),
        Guard(table: "ledger_cosignatures", trigger: "ledger_cosignatures_no_truncate", type: 2 | 32, function: "ledger_append_only"),
    ]

    /// The guarded tables as an SQL array of regclass.
    static let guardedTables: SQLFragment = """
        ARRAY['ledger_entries'::regclass, 'ledger_head'::regclass, 'ledger_claims'::regclass, 'ledger_tree_nodes'::regclass,
            'ledger_checkpoints'::regclass, 'ledger_payloads'::regclass, 'ledger_cosignatures'::regclass]
        """

    /// The guarded tables and exactly what the application role may do on each (migrations 0001–0003, 0007).
    static let grants: [(table: String, privileges: Set<String>)] = [
        ("ledger_entries", ["SELECT", "INSERT"]),
        ("ledger_head", ["SELECT", "UPDATE"]),
        ("ledger_payloads", ["SELECT", "INSERT", "DELETE"]),
        ("ledger_claims", ["SELECT", "INSERT"]),
        ("ledger_tree_nodes", ["SELECT", "INSERT"]),
        ("ledger_checkpoints", ["SELECT", "INSERT"]),
        ("ledger_cosignatures", ["SELECT", "INSERT"]),
    ]

    /// The functions the guards run, and the batch guard.
    static let guardFunctions = ["ledger_refuse_change", "ledger_head_only_grows", "ledger_append_only", "ledger_expect"]

    /// Each function's body as the last migration that (re)defines it wrote it, from the binary's own copy.
    static let installedBodies: [String: String] = {
        var bodies: [String: String] = [:]
        for m in Migrator.bundled {
            var rest = Substring(m.sql)
            while let create = rest.range(of: "CREATE FUNCTION ") ?? rest.range(of: "CREATE OR REPLACE FUNCTION ") {
                let name = String(rest[create.upperBound...].prefix { $0 != "(" })
                guard let open = rest[create.upperBound...].range(of: "$$"), let close = rest[open.upperBound...].range(of: "$$") else { break }
                bodies[name] = String(rest[open.upperBound..<close.lowerBound])
                rest = rest[close.upperBound...]
            }
        }
        return bodies
    }()

    /// Every way the guards can have been weakened: a trigger missing, disabled, firing only for replicas,
    /// with a condition, on other events or calling another function; a guard function whose body, language
    /// or settings differ from its migration's; a trigger nobody installed; privileges beyond the minimal
    /// grants; an application role that owns what it should only use; a batch guard that no longer refuses.
    static func guardProblems(_ c: PostgresConnection) throws(LedgerStoreError) -> [LedgerProblem] {
        var problems: [LedgerProblem] = []
        func problem(_ what: String) { problems.append(LedgerProblem(index: nil, what: what)) }
        let tables = Set(guards.map(\.table))
        // The function each trigger really calls (by oid, not by a name a look-alike in another schema
        // could share), with what must not differ from its migration.
        let triggers = try c.query("""
            SELECT t.tgname, cl.relname, t.tgenabled, t.tgtype::int, t.tgqual IS NOT NULL, p.proname, p.prosrc, l.lanname,
                p.prosecdef OR p.proconfig IS NOT NULL, p.pronamespace = cl.relnamespace
            FROM pg_trigger t JOIN pg_class cl ON cl.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_language l ON l.oid = p.prolang
            WHERE t.tgrelid = ANY(\(sql: guardedTables)) AND NOT t.tgisinternal
            """)
        struct Found {
            var table: String, enabled: String, type: Int, qualified: Bool, function: String, body: String, language: String
            var redefined: Bool, sameSchema: Bool
        }
        var found: [String: Found] = [:]
        for row in triggers.rows {
            found[try row.text(0)] = Found(
                table: try row.text(1), enabled: try row.text(2), type: Int(try row.text(3)) ?? -1, qualified: row[4] == "t",
                function: try row.text(5), body: try row.text(6), language: try row.text(7), redefined: row[8] == "t", sameSchema: row[9] == "t")
        }
        for g in guards {
            guard let t = found[g.trigger], t.table == g.table else {
                problem("append-only trigger \(g.trigger) is missing")
                continue
            }
            switch t.enabled {
            case "O", "A": break
            case "D": problem("append-only trigger \(g.trigger) is disabled")
            case "R": problem("append-only trigger \(g.trigger) fires only for replication (ENABLE REPLICA): ordinary sessions bypass it")
            default: problem("append-only trigger \(g.trigger) is in an unknown mode \(t.enabled)")
            }
            if t.qualified { problem("append-only trigger \(g.trigger) has a WHEN condition: it may not fire") }
            if t.type != g.type { problem("append-only trigger \(g.trigger) no longer fires on the events and timing its migration set") }
            if t.function != g.function || !t.sameSchema {
                problem("append-only trigger \(g.trigger) calls \(t.function)\(t.sameSchema ? "" : " in another schema"), not the migration's \(g.function)")
            } else if t.body != installedBodies[g.function] || t.language != "plpgsql" || t.redefined {
                problem("append-only trigger \(g.trigger) calls a \(g.function) that is not the one its migration installed")
            }
        }
        let known = Set(guards.map(\.trigger))
        for (name, t) in found.sorted(by: { $0.key < $1.key }) where !known.contains(name) && tables.contains(t.table) {
            problem("\(t.table) has a trigger no migration installed: \(name) (calls \(t.function))")
        }
        for name in guardFunctions {
            let rows = try c.query("""
                SELECT p.prosrc, l.lanname, p.prosecdef, p.proconfig IS NOT NULL FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
                WHERE p.proname = \(name) AND p.pronamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'ledger_entries'::regclass)
                """).rows
            guard rows.count == 1, let row = rows.first else {
                problem(rows.isEmpty ? "the guard function \(name) is missing" : "the guard function \(name) is overloaded (\(rows.count) definitions)")
                continue
            }
            if try row.text(0) != installedBodies[name] { problem("the guard function \(name) was replaced: its body is not the one its migration installed") }
            if try row.text(1) != "plpgsql" || row[2] == "t" || row[3] == "t" {
                problem("the guard function \(name) was redefined (language, SECURITY DEFINER or settings differ from its migration)")
            }
        }
        // Row-level security can hide rows from readers (an auditor, the writer's own checks); rules
        // rewrite statements before any trigger sees them.
        let hidden = try c.query("""
            SELECT relname FROM pg_class WHERE oid = ANY(\(sql: guardedTables)) AND relrowsecurity ORDER BY 1
            """)
        for row in hidden.rows { problem("row-level security is enabled on \(try row.text(0)): rows can be hidden from readers") }
        let rules = try c.query("""
            SELECT cl.relname, r.rulename FROM pg_rewrite r JOIN pg_class cl ON cl.oid = r.ev_class
            WHERE r.ev_class = ANY(\(sql: guardedTables)) ORDER BY 1, 2
            """)
        for row in rules.rows { problem("\(try row.text(0)) has a rewrite rule no migration installed: \(try row.text(1))") }
        // The batch guard must still refuse: a redefined `ledger_expect` would let a writer's wrong
        // assumption (another writer's append, a quota without room, a revoked key) commit.
        do {
            _ = try c.query("SELECT ledger_expect(false, 'ledger verify checks the guard')")
            problem("the batch guard ledger_expect no longer refuses a false condition")
        } catch where error.sqlState == "LE001" {
        } catch where error.sqlState == "42883" {
        }
        let role = try c.query("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'ledger_app'")
        guard let attributes = role.rows.first else {
            problem("the application role ledger_app is missing")
            return problems
        }
        if attributes[0] == "t" { problem("the application role ledger_app is a superuser: it can disable every guard") }
        for (table, allowed) in grants {
            for privilege in ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"] where !allowed.contains(privilege) {
                let has = try c.query("SELECT has_table_privilege('ledger_app', \(table), \(privilege))")
                if has.rows.first?[0] == "t" { problem("the application role may \(privilege) \(table)") }
            }
            let owner = try c.query("""
                SELECT pg_has_role('ledger_app', c.relowner, 'USAGE'), EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0)
                FROM pg_class c WHERE c.oid = \(table)::regclass
                """)
            if owner.rows.first?[0] == "t" { problem("the application role owns \(table) (or acts as its owner): it can drop its guards") }
            if owner.rows.first?[1] == "t" { problem("PUBLIC has privileges on \(table)") }
        }
        let functionOwners = try c.query("""
            SELECT p.proname FROM pg_proc p WHERE p.proname::text = ANY(\(textArray: guardFunctions))
            AND p.pronamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'ledger_entries'::regclass)
            AND pg_has_role('ledger_app', p.proowner, 'USAGE') ORDER BY 1
            """)
        for row in functionOwners.rows { problem("the application role owns the guard function \(try row.text(0)): it can replace it") }
        do {
            let set = try c.query("SELECT has_parameter_privilege('ledger_app', 'session_replication_role', 'SET')")
            if set.rows.first?[0] == "t" { problem("the application role may set session_replication_role, which silences every trigger") }
        } catch where error.sqlState == "42883" {
            // PostgreSQL before 15: only superusers may set it.
        }
        return problems
    }
}
