import LedgerCore
import LedgerStore

/// What the read models need from one log entry. PostgreSQL extracts these fields from the body
/// (a projection never parses whole bodies in Swift), so a replay moves a few short columns per entry.
public struct ProjectionEvent: Sendable, Equatable {
    public var index: Int64
    public var subject: String
    public var type: String
    public var account: String?
    public var hasPayload: Bool
    public var certificateHash: String?
    public var visibility: String?
    public var bundleType: String?
    public var executionId: String?
    public var runId: String?
    public var workflowId: String?
    public var stepIndex: Int64?
    public var prevStepHash: String?
    public var projectHash: String?
    public var projectBundleId: String?
    public var registeredAt: String?
    /// The state a lifecycle change leads to.
    public var lifecycle: String?
    /// The application and execution surface an attestation names.
    public var application: String? = nil
    public var surface: String? = nil
    /// The data-subject digests an attestation names.
    public var dataSubjects: [String] = []
    /// Certificate hashes a project registration names (its steps).
    public var stepHashes: [String]
    /// True when the body cannot be read as `jsonb` (a NUL or an unpaired surrogate): no field was extracted.
    public var isUnreadable = false

    /// Reads the events of `types` in `[from, to)`, in index order, with the bodies' fields extracted by
    /// the database (other entries only advance the checkpoints, so they are not read at all).
    static func read(from: Int64, to: Int64, types: [String], on c: PostgresConnection) throws -> [ProjectionEvent] {
        let rows = try c.query("""
            SELECT e.idx, e.subject, e.type, e.account, e.payload_digest IS NOT NULL,
                   j->>'certificateHash', j->>'visibility', j->>'bundleType', j->>'executionId',
                   j->'run'->>'runId', j->'run'->>'workflowId', j->'run'->>'stepIndex', j->'run'->>'prevStepHash',
                   j->>'projectHash', j->>'projectBundleId', j->>'registeredAt',
                   CASE WHEN jsonb_typeof(j->'steps') = 'array'
                        THEN (SELECT string_agg(s->>'certificateHash', ',') FROM jsonb_array_elements(j->'steps') s) END,
                   j IS NULL, j->>'to', j->>'appId', j->>'executionSurface',
                   CASE WHEN jsonb_typeof(j->'dataSubjects') = 'array'
                        THEN (SELECT string_agg(d, ',') FROM jsonb_array_elements_text(j->'dataSubjects') d) END
            FROM ledger_entries e
            -- OFFSET 0 keeps the planner from inlining `j` into each use (which parsed the body 13 times).
            -- Only a body with a \\u escape can hold what jsonb refuses; those go through the function that
            -- answers NULL instead of failing, so one such entry cannot stop a model.
            CROSS JOIN LATERAL (
                SELECT CASE WHEN strpos(e.body, '\\u') = 0 THEN e.body::jsonb ELSE ledger_body_jsonb(e.body) END AS j OFFSET 0) x
            WHERE e.idx >= \(from) AND e.idx < \(to) AND e.type = ANY(\(textArray: types)::text[]) ORDER BY e.idx
            """).rows
        return try rows.map { r throws(LedgerStoreError) in
            ProjectionEvent(
                index: try r.int64(0), subject: try r.text(1), type: try r.text(2), account: r[3], hasPayload: r[4] == "t", certificateHash: r[5],
                visibility: r[6], bundleType: r[7], executionId: r[8], runId: r[9], workflowId: r[10], stepIndex: Int64(r[11] ?? ""),
                prevStepHash: r[12], projectHash: r[13], projectBundleId: r[14], registeredAt: r[15],
                lifecycle: r[18], application: r[19], surface: r[20], dataSubjects: r[21].map { $0.split(separator: ",").map(String.init) } ?? [],
                stepHashes: r[16].map { $0.split(separator: ",").map(String.init) } ?? [],
                isUnreadable: r[17] == "t")
        }
    }
}
