import CERKit
import Foundation

extension PostgresEventLog {
    /// Deletes payloads (their bytes and salts) and records the partitions they were in, which must be
    /// rewritten for the bytes to leave the table files (`PayloadMaintenance`). Returns how many were deleted.
    @discardableResult
    public func erasePayloads(digests: [[UInt8]]) async throws -> Int {
        guard !digests.isEmpty else { return 0 }
        return try await pool.withConnection { c in
            Int(try c.query("""
                WITH d AS (DELETE FROM ledger_payloads WHERE digest = ANY(\(byteaArray: digests)::bytea[]) RETURNING tableoid::regclass::text AS part),
                     r AS (INSERT INTO ledger_payload_rewrites (partition) SELECT DISTINCT part FROM d
                           ON CONFLICT (partition) DO UPDATE SET requested_at = clock_timestamp())
                SELECT count(*) FROM d
                """).single("the erasure").int64(0))
        }
    }
}

/// The owner's side of erasure: payloads are partitioned by month of storage (migration 0009). It creates
/// the partitions of the current and the next month, and rewrites (VACUUM FULL) every closed partition
/// that held an erased payload, so that the bytes leave the table and TOAST files. A closed partition
/// takes no inserts, so its rewrite does not block appends; the current month's waits until the month
/// ends. It runs as the login role (it creates and rewrites tables), not as the application role.
public struct PayloadMaintenance: Sendable {
    public let conninfo: String

    public init(conninfo: String) { self.conninfo = conninfo }

    public struct Report: Sendable, Equatable {
        public var rewritten: [String] = []
        /// Partitions with erased payloads that are still open (the current month).
        public var waiting: [String] = []
    }

    /// The partition of the month containing `milliseconds`, named as migration 0009 names them.
    public static func partitionName(containing milliseconds: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month], from: date)
        return String(format: "ledger_payloads_y%04dm%02d", parts.year ?? 1970, parts.month ?? 1)
    }

    /// Whether `partition` takes no more inserts at `now`: a month that has ended, or the default partition
    /// once the current month has its own.
    static func isClosed(_ partition: String, now: Int64, existing: Set<String>) -> Bool {
        let current = partitionName(containing: now)
        if partition == "ledger_payloads_default" { return existing.contains(current) }
        guard partition.hasPrefix("ledger_payloads_y") else { return false }
        return partition < current
    }

    public func run(now: Int64) throws -> Report {
        let c = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: 0, role: nil)
        defer { c.close() }
        let day = { (ms: Int64) -> String in
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withFullDate]
            return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
        }
        _ = try c.query("SELECT ledger_payload_partition(\(day(now))::date), ledger_payload_partition((\(day(now))::date + interval '1 month')::date)")
        let existing = Set(try c.query("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'ledger_payloads'::regclass
            """).rows.compactMap { $0[0] })
        var report = Report()
        let pending = try c.query("SELECT partition, requested_at::text FROM ledger_payload_rewrites ORDER BY partition").rows
        for row in pending {
            let name = try row.text(0)
            let requested = try row.text(1)
            guard existing.contains(name), name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                _ = try c.execute("DELETE FROM ledger_payload_rewrites WHERE partition = \(name)")  // dropped meanwhile
                continue
            }
            guard Self.isClosed(name, now: now, existing: existing) else {
                report.waiting.append(name)
                continue
            }
            _ = try c.execute("VACUUM (FULL) \(identifier: name)")
            // A request that came while the rewrite ran (its bytes may be in the new files) stays for the next run.
            _ = try c.execute("""
                DELETE FROM ledger_payload_rewrites WHERE partition = \(name) AND requested_at <= \(requested)::timestamptz
                """)
            report.rewritten.append(name)
        }
        return report
    }
}
