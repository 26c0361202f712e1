import LedgerCore
public import LedgerStore

/// Run chains: the steps each account recorded under a runId, whatever order they arrived in. The
/// chain's state is evaluated when read (`RunChainStatus`), so a late step is placed where it belongs.
public struct RunsProjection: Projection {
    public let name = "runs"
    public let tables: [SQLFragment] = ["proj_run_steps"]
    public let types = [EventType.cerAttested, EventType.cerRegistered]
    public init() {}

    public func apply(_ events: [ProjectionEvent], on c: PostgresConnection) throws {
        var steps: [(event: ProjectionEvent, account: String, runId: String, certificateHash: String)] = []
        for e in events where types.contains(e.type) {
            if let account = e.account, let runId = e.runId, let hash = e.certificateHash { steps.append((e, account, runId, hash)) }
        }
        guard !steps.isEmpty else { return }
        try c.execute("""
            INSERT INTO proj_run_steps (account, run_id, certificate_hash, step_index, prev_step_hash, workflow_id, idx)
            SELECT a, r, h, NULLIF(si, '')::bigint, NULLIF(p, ''), NULLIF(w, ''), i
            FROM unnest(\(textArray: steps.map(\.account))::text[], \(textArray: steps.map(\.runId))::text[],
                        \(textArray: steps.map(\.certificateHash))::text[], \(column(steps.map { $0.event.stepIndex.map(String.init) }))::text[],
                        \(column(steps.map(\.event.prevStepHash)))::text[], \(column(steps.map(\.event.workflowId)))::text[],
                        \(int64Array: steps.map(\.event.index))::bigint[]) AS t(a, r, h, si, p, w, i)
            ON CONFLICT DO NOTHING
            """)
    }

    public var dumpQueries: [SQLQuery] {
        ["SELECT account, run_id, certificate_hash, step_index, prev_step_hash, workflow_id, idx FROM proj_run_steps ORDER BY account, run_id, certificate_hash"]
    }
}
