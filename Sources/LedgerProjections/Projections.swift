import LedgerCore
import LedgerStore

/// A read model rebuilt from the log. `apply` runs inside the runner's transaction, which also moves
/// the model's checkpoint, so a model is always exactly "the log up to its position".
public protocol Projection: Sendable {
    var name: String { get }
    /// The tables it owns (emptied by a rebuild).
    var tables: [String] { get }
    /// The event types it reads; entries of other types only advance its checkpoint.
    var types: [String] { get }
    /// Applies events, in index order, on the open transaction.
    func apply(_ events: [ProjectionEvent], on c: PostgresConnection) throws
    /// Queries whose text output, concatenated, is a canonical dump of the model.
    var dumpQueries: [String] { get }
}

/// Text arrays for `unnest`: an empty string stands for NULL (read back with NULLIF).
func column(_ values: [String?]) -> SQLValue { .textArray(values.map { $0 ?? "" }) }

/// Certificates: each account's record of a certificate hash (owner, visibility, lifecycle state, the
/// entry with its latest receipt) and links from events on other subjects that name the hash.
public struct CertificatesProjection: Projection {
    public let name = "certificates"
    public let tables = ["proj_certificate_records", "proj_certificate_links"]
    public let types = ["cer.attested", "cer.registered", "cer.visibility_changed", "project.registered"]
    public init() {}

    struct Record {
        var recordIndex: Int64
        var hasBundle: Bool
        var visibility: String
        var state: String
        var bundleType: String?
        var executionId: String?
        var firstIndex: Int64
        var lastIndex: Int64
        var events: Int64
    }

    struct Key: Hashable {
        var hash: String
        var account: String
    }

    static func certificateHash(subject: String) -> String? { subject.hasPrefix("cer:") ? String(subject.dropFirst(4)) : nil }

    public func apply(_ events: [ProjectionEvent], on c: PostgresConnection) throws {
        let relevant = events.filter { $0.type.hasPrefix("cer.") && $0.account != nil && Self.certificateHash(subject: $0.subject) != nil }
        var records: [Key: Record] = [:]
        let keys = Array(Set(relevant.map { Key(hash: Self.certificateHash(subject: $0.subject)!, account: $0.account!) }))
        if !keys.isEmpty {
            let rows = try c.query(SQLQuery(unsafeSQL: """
                SELECT r.certificate_hash, r.account, r.record_idx, r.has_bundle, r.visibility, r.state, r.bundle_type, r.execution_id,
                       r.first_idx, r.last_idx, r.events
                FROM unnest($1::text[], $2::text[]) AS k(h, a)
                JOIN proj_certificate_records r ON r.certificate_hash = k.h AND r.account = k.a
                """, binds: [.textArray(keys.map(\.hash)), .textArray(keys.map(\.account))])).rows
            for r in rows {
                records[Key(hash: r[0]!, account: r[1]!)] = Record(
                    recordIndex: Int64(r[2]!)!, hasBundle: r[3] == "t", visibility: r[4]!, state: r[5]!, bundleType: r[6], executionId: r[7],
                    firstIndex: Int64(r[8]!)!, lastIndex: Int64(r[9]!)!, events: Int64(r[10]!)!)
            }
        }
        var touched = Set<Key>()
        for e in relevant {
            let key = Key(hash: Self.certificateHash(subject: e.subject)!, account: e.account!)
            switch e.type {
            case "cer.attested", "cer.registered":
                let state = e.type == "cer.registered" ? "registered" : (e.hasPayload ? "attested" : "stamped")
                if var r = records[key] {
                    r.events += 1
                    r.lastIndex = e.index
                    // A signed attestation with its bundle is the record's best evidence; it replaces a
                    // hash-only stamp or a registration through a project.
                    let better = (r.state == "registered" && e.type == "cer.attested") || (!r.hasBundle && e.hasPayload && e.type == "cer.attested")
                    if better {
                        r.recordIndex = e.index
                        r.state = state
                        r.hasBundle = r.hasBundle || e.hasPayload
                        r.bundleType = e.bundleType ?? r.bundleType
                        r.executionId = e.executionId ?? r.executionId
                        if e.visibility == "public" { r.visibility = "public" }
                    }
                    records[key] = r
                } else {
                    records[key] = Record(
                        recordIndex: e.index, hasBundle: e.hasPayload, visibility: e.visibility ?? "private", state: state,
                        bundleType: e.bundleType, executionId: e.executionId, firstIndex: e.index, lastIndex: e.index, events: 1)
                }
                touched.insert(key)
            case "cer.visibility_changed":
                guard var r = records[key], let v = e.visibility else { continue }
                r.visibility = v
                r.events += 1
                r.lastIndex = e.index
                records[key] = r
                touched.insert(key)
            default:
                continue
            }
        }
        if !touched.isEmpty {
            let ks = Array(touched)
            let rs = ks.map { records[$0]! }
            try c.execute(SQLQuery(unsafeSQL: """
                INSERT INTO proj_certificate_records (certificate_hash, account, record_idx, has_bundle, visibility, state, bundle_type,
                    execution_id, first_idx, last_idx, events)
                SELECT h, a, ri::bigint, hb::boolean, v, s, NULLIF(bt, ''), NULLIF(ex, ''), fi::bigint, li::bigint, n::bigint
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                            $10::text[], $11::text[]) AS t(h, a, ri, hb, v, s, bt, ex, fi, li, n)
                ON CONFLICT (certificate_hash, account) DO UPDATE SET record_idx = EXCLUDED.record_idx, has_bundle = EXCLUDED.has_bundle,
                    visibility = EXCLUDED.visibility, state = EXCLUDED.state, bundle_type = EXCLUDED.bundle_type,
                    execution_id = EXCLUDED.execution_id, last_idx = EXCLUDED.last_idx, events = EXCLUDED.events
                """, binds: [
                    .textArray(ks.map(\.hash)), .textArray(ks.map(\.account)), .textArray(rs.map { String($0.recordIndex) }),
                    .textArray(rs.map { $0.hasBundle ? "true" : "false" }), .textArray(rs.map(\.visibility)), .textArray(rs.map(\.state)),
                    column(rs.map(\.bundleType)), column(rs.map(\.executionId)), .textArray(rs.map { String($0.firstIndex) }),
                    .textArray(rs.map { String($0.lastIndex) }), .textArray(rs.map { String($0.events) }),
                ]))
        }
        var links: [(hash: String, index: Int64, ref: String)] = []
        for e in events where e.type == "project.registered" {
            for hash in Set(e.stepHashes) { links.append((hash, e.index, e.projectHash ?? "")) }
        }
        if !links.isEmpty {
            try c.execute(SQLQuery(unsafeSQL: """
                INSERT INTO proj_certificate_links (certificate_hash, idx, kind, ref)
                SELECT h, i::bigint, 'project', r FROM unnest($1::text[], $2::text[], $3::text[]) AS t(h, i, r)
                ON CONFLICT DO NOTHING
                """, binds: [.textArray(links.map(\.hash)), .textArray(links.map { String($0.index) }), .textArray(links.map(\.ref))]))
        }
    }

    public var dumpQueries: [String] {
        [
            "SELECT certificate_hash, account, record_idx, has_bundle, visibility, state, bundle_type, execution_id, first_idx, last_idx, events FROM proj_certificate_records ORDER BY certificate_hash, account",
            "SELECT certificate_hash, idx, kind, ref FROM proj_certificate_links ORDER BY certificate_hash, idx",
        ]
    }
}

/// Run chains: the steps each account recorded under a runId, whatever order they arrived in. The
/// chain's state is evaluated when read (`RunChainStatus`), so a late step is placed where it belongs.
public struct RunsProjection: Projection {
    public let name = "runs"
    public let tables = ["proj_run_steps"]
    public let types = ["cer.attested", "cer.registered"]
    public init() {}

    public func apply(_ events: [ProjectionEvent], on c: PostgresConnection) throws {
        let steps = events.filter { ($0.type == "cer.attested" || $0.type == "cer.registered") && $0.runId != nil && $0.account != nil && $0.certificateHash != nil }
        guard !steps.isEmpty else { return }
        try c.execute(SQLQuery(unsafeSQL: """
            INSERT INTO proj_run_steps (account, run_id, certificate_hash, step_index, prev_step_hash, workflow_id, idx)
            SELECT a, r, h, NULLIF(si, '')::bigint, NULLIF(p, ''), NULLIF(w, ''), i::bigint
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS t(a, r, h, si, p, w, i)
            ON CONFLICT DO NOTHING
            """, binds: [
                .textArray(steps.map { $0.account! }), .textArray(steps.map { $0.runId! }), .textArray(steps.map { $0.certificateHash! }),
                column(steps.map { $0.stepIndex.map(String.init) }), column(steps.map(\.prevStepHash)), column(steps.map(\.workflowId)),
                .textArray(steps.map { String($0.index) }),
            ]))
    }

    public var dumpQueries: [String] {
        ["SELECT account, run_id, certificate_hash, step_index, prev_step_hash, workflow_id, idx FROM proj_run_steps ORDER BY account, run_id, certificate_hash"]
    }
}

/// Project bundles registered with the node.
public struct ProjectsProjection: Projection {
    public let name = "projects"
    public let tables = ["proj_projects"]
    public let types = ["project.registered"]
    public init() {}

    public func apply(_ events: [ProjectionEvent], on c: PostgresConnection) throws {
        let registered = events.filter { $0.type == "project.registered" && $0.projectHash != nil }
        guard !registered.isEmpty else { return }
        try c.execute(SQLQuery(unsafeSQL: """
            INSERT INTO proj_projects (project_hash, project_bundle_id, account, registration_idx, registered_at, step_count)
            SELECT h, b, NULLIF(a, ''), i::bigint, t, n::integer
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS x(h, b, a, i, t, n)
            ON CONFLICT DO NOTHING
            """, binds: [
                .textArray(registered.map { $0.projectHash! }), .textArray(registered.map { $0.projectBundleId ?? "" }),
                column(registered.map(\.account)), .textArray(registered.map { String($0.index) }),
                .textArray(registered.map { $0.registeredAt ?? "" }), .textArray(registered.map { String($0.stepHashes.count) }),
            ]))
    }

    public var dumpQueries: [String] {
        ["SELECT project_hash, project_bundle_id, account, registration_idx, registered_at, step_count FROM proj_projects ORDER BY project_hash"]
    }
}
