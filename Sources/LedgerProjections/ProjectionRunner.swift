import Foundation
import LedgerCore
import Synchronization
public import LedgerStore

/// Applies the log to the read models. Each step is one transaction that locks the model's checkpoint
/// row, applies the next chunk of events and moves the checkpoint: a runner killed at any moment
/// resumes exactly where the last committed step left it, and runners in several processes take turns.
public final class ProjectionRunner: Sendable {
    public let pool: PostgresConnectionPool
    public let projections: [any Projection]
    public let chunk: Int

    public init(pool: PostgresConnectionPool, projections: [any Projection] = ProjectionRunner.standard, chunk: Int = 5000) {
        self.pool = pool
        self.projections = projections
        self.chunk = chunk
    }

    public static let standard: [any Projection] = [CertificatesProjection(), RunsProjection(), ProjectsProjection()]

    /// A model's position (the next index it applies) and the log's size.
    public struct Status: Sendable, Equatable {
        public var name: String
        public var position: Int64
        public var head: Int64
        public var lag: Int64 { max(0, head - position) }
    }

    public struct UnknownProjection: Error, CustomStringConvertible {
        public var name: String
        public var description: String { "no projection named \(name) (certificates, runs, projects)" }
    }

    func projection(_ name: String) throws -> any Projection {
        guard let p = projections.first(where: { $0.name == name }) else { throw UnknownProjection(name: name) }
        return p
    }

    public func status() async throws -> [Status] {
        try await pool.withConnection { c in
            let head = try c.headSize()
            let rows = try c.query("SELECT name, position FROM projection_checkpoints ORDER BY name").rows
            return try rows.map { r throws(LedgerStoreError) in Status(name: try r.text(0), position: try r.int64(1), head: head) }
        }
    }

    /// One step: locks the models' checkpoint rows, and advances those furthest behind (all at the same
    /// position) by up to `chunk` entries, reading the chunk once for all of them. Returns their status
    /// after it, or nil when another runner holds every row (only without `wait`).
    func step(_ models: [any Projection], wait: Bool, prefetched: Prefetched? = nil) async throws -> (status: [Status], applied: Int64)? {
        do {
            return try await step(models, wait: wait, prefetched: prefetched, carefully: false)
        } catch let error as LedgerStoreError where !error.isRetryable {
            // Something in this chunk cannot be applied: apply it again entry by entry, each in a
            // savepoint, and record (and pass) the entries a model refuses, so no entry can stop a model.
            return try await step(models, wait: wait, prefetched: nil, carefully: true)
        }
    }

    func step(_ models: [any Projection], wait: Bool, prefetched: Prefetched?, carefully: Bool) async throws -> (status: [Status], applied: Int64)? {
        let chunk = self.chunk
        return try await pool.withTransaction { c -> (status: [Status], applied: Int64)? in
            let lock: SQLFragment = wait ? "FOR UPDATE" : "FOR UPDATE SKIP LOCKED"
            let rows = try c.query(
                "SELECT name, position FROM projection_checkpoints WHERE name = ANY(\(textArray: models.map(\.name))::text[]) ORDER BY name \(sql: lock)"
            ).rows
            var positions: [String: Int64] = [:]
            for r in rows { positions[try r.text(0)] = try r.int64(1) }
            if wait, let missing = models.first(where: { positions[$0.name] == nil }) {
                throw LedgerStoreError(.database, "projection \(missing.name) has no checkpoint row; run migrations")
            }
            let held = models.filter { positions[$0.name] != nil }
            guard let position = held.compactMap({ positions[$0.name] }).min() else { return nil }
            let head = try c.headSize()
            let behind = held.filter { positions[$0.name] == position }
            guard position < head else { return (behind.map { Status(name: $0.name, position: position, head: head) }, 0) }
            let to = min(head, position + Int64(chunk))
            let types = Array(Set(behind.flatMap(\.types))).sorted()
            let events: [ProjectionEvent]
            if let p = prefetched, p.from == position, p.to == to, Set(types).isSubset(of: p.types) {
                events = p.events
            } else {
                events = try ProjectionEvent.read(from: position, to: to, types: types, on: c)
            }
            var skips: [(model: String, index: Int64, reason: String)] = []
            for p in behind {
                let wanted = Set(p.types)
                let mine = events.filter { wanted.contains($0.type) }
                for e in mine where e.isUnreadable {
                    skips.append((p.name, e.index, "the entry's body cannot be read as jsonb (a NUL character or an unpaired surrogate)"))
                }
                let readable = mine.filter { !$0.isUnreadable }
                guard carefully else {
                    try p.apply(readable, on: c)
                    continue
                }
                for e in readable {
                    try c.execute("SAVEPOINT projection_entry")
                    do {
                        try p.apply([e], on: c)
                        try c.execute("RELEASE SAVEPOINT projection_entry")
                    } catch let error as LedgerStoreError where !error.isRetryable {
                        try c.execute("ROLLBACK TO SAVEPOINT projection_entry")
                        skips.append((p.name, e.index, String(error.description.prefix(500))))
                    }
                }
            }
            if !skips.isEmpty {
                try c.execute("""
                    INSERT INTO projection_skips (name, idx, reason)
                    SELECT n, i, r
                    FROM unnest(\(textArray: skips.map(\.model))::text[], \(int64Array: skips.map(\.index))::bigint[],
                                \(textArray: skips.map(\.reason))::text[]) AS t(n, i, r)
                    ON CONFLICT DO NOTHING
                    """)
            }
            try c.execute(
                "UPDATE projection_checkpoints SET position = \(to), updated_at = now() WHERE name = ANY(\(textArray: behind.map(\.name))::text[])")
            return (behind.map { Status(name: $0.name, position: to, head: head) }, to - position)
        }
    }

    /// An entry a model passed over, and why.
    public struct Skip: Sendable, Equatable {
        public var model: String
        public var index: Int64
        public var reason: String
    }

    /// The entries models passed over (newest first, at most `limit`), and how many there are per model.
    public func skips(limit: Int = 100) async throws -> (recent: [Skip], counts: [String: Int64]) {
        try await pool.withConnection { c in
            let recent = try c.query("SELECT name, idx, reason FROM projection_skips ORDER BY idx DESC, name LIMIT \(limit)").rows
            let counts = try c.query("SELECT name, count(*) FROM projection_skips GROUP BY name").rows
            return (
                try recent.map { r throws(LedgerStoreError) in Skip(model: try r.text(0), index: try r.int64(1), reason: try r.text(2)) },
                Dictionary(uniqueKeysWithValues: try counts.map { r throws(LedgerStoreError) in (try r.text(0), try r.int64(1)) }))
        }
    }

    /// Brings models (all, or `only`) up to the log's head as it is now; models at the same position
    /// share each chunk's read. `progress` is called after each step with the slowest model's status.
    /// With `wait` false models another runner is applying are skipped. Returns the log entries stepped
    /// over (once per chunk, however many models applied it).
    @discardableResult
    public func catchUp(
        only: String? = nil, wait: Bool = true, concurrently: Bool = true, progress: (@Sendable (Status) -> Void)? = nil
    ) async throws -> Int64 {
        let selected = try only.map { [try projection($0)] } ?? projections
        if selected.count == 1 { return try await catchUp(selected, wait: wait, progress: progress) }
        if !concurrently {
            // One model after another: at most two connections (a step and its read-ahead).
            var most: Int64 = 0
            for p in selected { most = max(most, try await catchUp([p], wait: wait, progress: progress)) }
            return most
        }
        // Models advance concurrently, each on its own connections (the machine's cores share the work);
        // progress reports the slowest.
        final class Positions: Sendable { let all = Mutex([String: Status]()) }
        let positions = Positions()
        let count = selected.count
        return try await withThrowingTaskGroup(of: Int64.self) { group in
            for p in selected {
                group.addTask {
                    try await self.catchUp([p], wait: wait) { s in
                        let slowest = positions.all.withLock { all -> Status? in
                            all[s.name] = s
                            guard all.count == count else { return nil }
                            return all.values.min { $0.position < $1.position }
                        }
                        if let slowest { progress?(Status(name: only ?? "all", position: slowest.position, head: slowest.head)) }
                    }
                }
            }
            var most: Int64 = 0
            for try await n in group { most = max(most, n) }
            return most
        }
    }

    func catchUp(_ selected: [any Projection], wait: Bool, progress: (@Sendable (Status) -> Void)?) async throws -> Int64 {
        let only: String? = selected.count == 1 ? selected[0].name : nil
        let types = Set(selected.flatMap(\.types))
        var applied: Int64 = 0
        // The log's entries never change, so the next chunk is read on another connection while the
        // current one is applied (a step uses read-ahead entries only when their range is the one it needs).
        var pending: Task<Prefetched, any Error>? = nil
        defer { pending?.cancel() }
        var head: Int64 = 0
        while true {
            let ready = try? await pending?.value
            pending = nil
            if let ready, ready.to < head {
                pending = prefetch(from: ready.to, to: min(head, ready.to + Int64(chunk)), types: types)
            }
            guard let (statuses, n) = try await step(selected, wait: wait, prefetched: ready), let slowest = statuses.first else { break }
            applied += n
            head = slowest.head
            progress?(Status(name: statuses.count == selected.count ? (only ?? "all") : slowest.name, position: slowest.position, head: slowest.head))
            if n == 0 || slowest.position >= slowest.head { break }
            if let p = pending, ready?.to == slowest.position {
                pending = p  // already reading the next range
            } else {
                pending?.cancel()
                pending = prefetch(from: slowest.position, to: min(slowest.head, slowest.position + Int64(chunk)), types: types)
            }
        }
        return applied
    }

    /// Entries read ahead for a step.
    struct Prefetched: Sendable {
        var from: Int64
        var to: Int64
        var types: Set<String>
        var events: [ProjectionEvent]
    }

    func prefetch(from: Int64, to: Int64, types: Set<String>) -> Task<Prefetched, any Error> {
        let pool = self.pool
        return Task {
            let events = try await pool.withConnection { c in try ProjectionEvent.read(from: from, to: to, types: types.sorted(), on: c) }
            return Prefetched(from: from, to: to, types: types, events: events)
        }
    }

    /// Empties models (one, or all) and sets their checkpoints to 0 in one transaction; `catchUp` then
    /// replays them.
    public func reset(_ name: String? = nil) async throws {
        let selected = try name.map { [try projection($0)] } ?? projections
        try await pool.withTransaction { c in
            _ = try c.query(
                "SELECT position FROM projection_checkpoints WHERE name = ANY(\(textArray: selected.map(\.name))::text[]) ORDER BY name FOR UPDATE")
            for table in selected.flatMap(\.tables) { try c.execute("TRUNCATE \(sql: table)") }
            try c.execute("DELETE FROM projection_skips WHERE name = ANY(\(textArray: selected.map(\.name))::text[])")
            try c.execute(
                "UPDATE projection_checkpoints SET position = 0, updated_at = now() WHERE name = ANY(\(textArray: selected.map(\.name))::text[])")
        }
    }

    /// A canonical text dump of a model (its rows in key order), for comparing a rebuild with a live model.
    public func dump(_ name: String) async throws -> String {
        let p = try projection(name)
        return try await pool.withConnection { c in
            var out = ""
            for q in p.dumpQueries {
                for row in try c.query(q).rows { out += row.values.map { $0 ?? "∅" }.joined(separator: "\t") + "\n" }
                out += "--\n"
            }
            return out
        }
    }
}
