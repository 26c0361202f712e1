import LedgerCore
public import LedgerStore

/// Project bundles registered with the node.
public struct ProjectsProjection: Projection {
    public let name = "projects"
    public let tables: [SQLFragment] = ["proj_projects"]
    public let types = [EventType.projectRegistered]
    public init() {}

    public func apply(_ events: [ProjectionEvent], on c: PostgresConnection) throws {
        let registered = events.compactMap { e in e.type == EventType.projectRegistered ? e.projectHash.map { (event: e, hash: $0) } : nil }
        guard !registered.isEmpty else { return }
        try c.execute("""
            INSERT INTO proj_projects (project_hash, project_bundle_id, account, registration_idx, registered_at, step_count)
            SELECT h, b, NULLIF(a, ''), i, t, n::integer
            FROM unnest(\(textArray: registered.map(\.hash))::text[], \(textArray: registered.map { $0.event.projectBundleId ?? "" })::text[],
                        \(column(registered.map(\.event.account)))::text[], \(int64Array: registered.map(\.event.index))::bigint[],
                        \(textArray: registered.map { $0.event.registeredAt ?? "" })::text[],
                        \(int64Array: registered.map { Int64($0.event.stepHashes.count) })::bigint[]) AS x(h, b, a, i, t, n)
            ON CONFLICT DO NOTHING
            """)
    }

    public var dumpQueries: [SQLQuery] {
        ["SELECT project_hash, project_bundle_id, account, registration_idx, registered_at, step_count FROM proj_projects ORDER BY project_hash"]
    }
}
