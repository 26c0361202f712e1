import LedgerCore
public import LedgerStore

/// Certificates: each account's record of a certificate hash (owner, visibility, lifecycle state, the
/// entry with its latest receipt) and links from events on other subjects that name the hash.
public struct CertificatesProjection: Projection {
    public let name = "certificates"
    public let tables: [SQLFragment] = ["proj_certificate_records", "proj_certificate_links", "proj_data_subjects"]
    public let types = CertificateRecord.eventTypes + [EventType.projectRegistered]
    public init() {}

    struct Key: Hashable {
        var hash: String
        var account: String
    }

    public func apply(_ events: [ProjectionEvent], on c: PostgresConnection) throws {
        let relevant = events.filter { CertificateRecord.eventTypes.contains($0.type) && $0.account != nil && Subject.certificateHash(of: $0.subject) != nil }
        var records: [Key: CertificateRecord] = [:]
        let keys = Array(Set(relevant.compactMap { e in Subject.certificateHash(of: e.subject).flatMap { h in e.account.map { Key(hash: h, account: $0) } } }))
        if !keys.isEmpty {
            let rows = try c.query("""
                SELECT r.certificate_hash, r.account, r.record_idx, r.has_bundle, r.visibility, r.state, r.bundle_type, r.execution_id,
                       r.first_idx, r.last_idx, r.events, r.lifecycle, r.purged, r.deletion_requested_idx, r.app_id, r.execution_surface
                FROM unnest(\(textArray: keys.map(\.hash))::text[], \(textArray: keys.map(\.account))::text[]) AS k(h, a)
                JOIN proj_certificate_records r ON r.certificate_hash = k.h AND r.account = k.a
                """).rows
            for r in rows {
                guard let state = CertificateRecord.State(rawValue: try r.text(5)) else {
                    throw LedgerStoreError(.database, "a certificate record has an unknown state \(r[5] ?? "")")
                }
                var record = CertificateRecord(
                    recordIndex: try r.int64(2), hasBundle: try r.bool(3), visibility: try r.text(4), state: state, bundleType: r[6],
                    executionId: r[7], firstIndex: try r.int64(8), lastIndex: try r.int64(9), events: try r.int64(10))
                guard let lifecycle = LifecycleState(rawValue: try r.text(11)) else {
                    throw LedgerStoreError(.database, "a certificate record has an unknown lifecycle state \(r[11] ?? "")")
                }
                record.lifecycle = lifecycle
                record.purged = try r.bool(12)
                record.deletionRequested = try r.optionalInt64(13)
                record.application = r[14]
                record.surface = r[15]
                records[Key(hash: try r.text(0), account: try r.text(1))] = record
            }
        }
        var touched = Set<Key>()
        for e in relevant {
            guard let hash = Subject.certificateHash(of: e.subject), let account = e.account else { continue }
            let key = Key(hash: hash, account: account)
            let folded = CertificateRecord.fold(records[key], CertificateRecord.Event(
                index: e.index, type: e.type, hasPayload: e.hasPayload, visibility: e.visibility, bundleType: e.bundleType,
                executionId: e.executionId, lifecycle: e.lifecycle, application: e.application, surface: e.surface))
            if folded != records[key] {
                records[key] = folded
                touched.insert(key)
            }
        }
        if !touched.isEmpty {
            let ks = Array(touched)
            let rs = ks.compactMap { records[$0] }
            try c.execute("""
                INSERT INTO proj_certificate_records (certificate_hash, account, record_idx, has_bundle, visibility, state, bundle_type,
                    execution_id, first_idx, last_idx, events, lifecycle, purged, deletion_requested_idx, app_id, execution_surface)
                SELECT h, a, ri, hb::boolean, v, s, NULLIF(bt, ''), NULLIF(ex, ''), fi, li, n, lc, pg::boolean, NULLIF(dr, -1), NULLIF(ap, ''), NULLIF(su, '')
                FROM unnest(\(textArray: ks.map(\.hash))::text[], \(textArray: ks.map(\.account))::text[],
                            \(int64Array: rs.map(\.recordIndex))::bigint[], \(textArray: rs.map { $0.hasBundle ? "true" : "false" })::text[],
                            \(textArray: rs.map(\.visibility))::text[], \(textArray: rs.map(\.state.rawValue))::text[],
                            \(column(rs.map(\.bundleType)))::text[], \(column(rs.map(\.executionId)))::text[],
                            \(int64Array: rs.map(\.firstIndex))::bigint[], \(int64Array: rs.map(\.lastIndex))::bigint[],
                            \(int64Array: rs.map(\.events))::bigint[], \(textArray: rs.map(\.lifecycle.rawValue))::text[],
                            \(textArray: rs.map { $0.purged ? "true" : "false" })::text[],
                            \(int64Array: rs.map { $0.deletionRequested ?? -1 })::bigint[],
                            \(column(rs.map(\.application)))::text[], \(column(rs.map(\.surface)))::text[])
                     AS t(h, a, ri, hb, v, s, bt, ex, fi, li, n, lc, pg, dr, ap, su)
                ON CONFLICT (certificate_hash, account) DO UPDATE SET record_idx = EXCLUDED.record_idx, has_bundle = EXCLUDED.has_bundle,
                    visibility = EXCLUDED.visibility, state = EXCLUDED.state, bundle_type = EXCLUDED.bundle_type,
                    execution_id = EXCLUDED.execution_id, last_idx = EXCLUDED.last_idx, events = EXCLUDED.events,
                    lifecycle = EXCLUDED.lifecycle, purged = EXCLUDED.purged, deletion_requested_idx = EXCLUDED.deletion_requested_idx,
                    app_id = EXCLUDED.app_id, execution_surface = EXCLUDED.execution_surface
                """)
        }
        var subjects: [(account: String, digest: String, hash: String, index: Int64)] = []
        for e in relevant where e.type == EventType.cerAttested {
            guard let account = e.account, let hash = Subject.certificateHash(of: e.subject) else { continue }
            for d in Set(e.dataSubjects) { subjects.append((account, d, hash, e.index)) }
        }
        if !subjects.isEmpty {
            try c.execute("""
                INSERT INTO proj_data_subjects (account, digest, certificate_hash, idx)
                SELECT a, d, h, i FROM unnest(\(textArray: subjects.map(\.account))::text[], \(textArray: subjects.map(\.digest))::text[],
                                              \(textArray: subjects.map(\.hash))::text[], \(int64Array: subjects.map(\.index))::bigint[]) AS t(a, d, h, i)
                ON CONFLICT DO NOTHING
                """)
        }
        var links: [(hash: String, index: Int64, ref: String)] = []
        for e in events where e.type == EventType.projectRegistered {
            for hash in Set(e.stepHashes) { links.append((hash, e.index, e.projectHash ?? "")) }
        }
        if !links.isEmpty {
            try c.execute("""
                INSERT INTO proj_certificate_links (certificate_hash, idx, kind, ref)
                SELECT h, i, 'project', r
                FROM unnest(\(textArray: links.map(\.hash))::text[], \(int64Array: links.map(\.index))::bigint[], \(textArray: links.map(\.ref))::text[]) AS t(h, i, r)
                ON CONFLICT DO NOTHING
                """)
        }
    }

    public var dumpQueries: [SQLQuery] {
        [
            """
            SELECT certificate_hash, account, record_idx, has_bundle, visibility, state, bundle_type, execution_id, first_idx, last_idx, events,
                   lifecycle, purged, deletion_requested_idx, app_id, execution_surface
            FROM proj_certificate_records ORDER BY certificate_hash, account
            """,
            "SELECT certificate_hash, idx, kind, ref FROM proj_certificate_links ORDER BY certificate_hash, idx",
            "SELECT account, digest, certificate_hash, idx FROM proj_data_subjects ORDER BY account, digest, certificate_hash",
        ]
    }
}
