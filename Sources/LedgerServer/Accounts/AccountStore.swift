import CERKit
import LedgerStore
import Synchronization

/// An account: a plan and a monthly limit shared by all its API keys.
public struct Account: Sendable, Equatable {
    public var id: String
    public var plan: String
    public var monthlyLimit: Int64
    public var createdAt: String
    /// Quota used in the current month.
    public var usedThisMonth: Int64
}

/// An API key as listed (never the key itself).
public struct APIKeyRecord: Sendable, Equatable {
    public var id: Int64
    public var accountId: String
    public var prefix: String
    public var label: String
    public var status: String
    public var createdAt: String
    public var revokedAt: String?
}

/// One request worth recording for usage reports.
public struct UsageEvent: Sendable {
    public var at: Int64
    public var accountId: String?
    public var apiKeyId: Int64?
    public var endpoint: String
    public var status: Int
    public var durationMilliseconds: Int
    public var error: String?

    public init(at: Int64, accountId: String?, apiKeyId: Int64?, endpoint: String, status: Int, durationMilliseconds: Int, error: String?) {
        self.at = at
        self.accountId = accountId
        self.apiKeyId = apiKeyId
        self.endpoint = endpoint
        self.status = status
        self.durationMilliseconds = durationMilliseconds
        self.error = error
    }
}

/// Accounts, API keys and quotas in PostgreSQL.
public struct AccountStore: Sendable {
    public let pool: PostgresConnectionPool
    let cache = PrincipalCache()

    public init(pool: PostgresConnectionPool) { self.pool = pool }

    static let accountColumns = """
        a.id, a.plan, a.monthly_limit, to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        COALESCE((SELECT used FROM quota_usage q WHERE q.account_id = a.id AND q.period = date_trunc('month', now() AT TIME ZONE 'UTC')::date), 0)
        """

    static func account(_ row: [String?]) -> Account {
        Account(id: row[0]!, plan: row[1]!, monthlyLimit: Int64(row[2]!)!, createdAt: row[3]!, usedThisMonth: Int64(row[4]!)!)
    }

    /// Why an account id cannot be used, or nil.
    public static func accountIdProblem(_ id: String) -> String? {
        let u = Array(id.utf8)
        let ok = !u.isEmpty && u.count <= 64 && u.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
        } && u[0] != 0x2E && u[0] != 0x5F && u[0] != 0x2D
        return ok ? nil : "an account id is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    }

    public func createAccount(id: String, plan: String, monthlyLimit: Int64) async throws -> Account {
        if let problem = Self.accountIdProblem(id) { throw LedgerServerError(.invalidRequest, problem) }
        if monthlyLimit < 0 { throw LedgerServerError(.invalidRequest, "monthlyLimit must not be negative") }
        if plan.isEmpty || plan.utf8.count > 50 { throw LedgerServerError(.invalidRequest, "plan must be 1 to 50 characters") }
        return try await pool.withConnection { c in
            let inserted = try c.execute("INSERT INTO accounts (id, plan, monthly_limit) VALUES (\(id), \(plan), \(monthlyLimit)) ON CONFLICT (id) DO NOTHING")
            if inserted == 0 { throw LedgerServerError(.conflict, "account \(id) already exists") }
            return Self.account(try c.query(SQLQuery(unsafeSQL: "SELECT \(Self.accountColumns) FROM accounts a WHERE a.id = $1", binds: [.text(id)])).rows[0])
        }
    }

    public func account(id: String) async throws -> Account? {
        try await pool.withConnection { c in
            try c.query(SQLQuery(unsafeSQL: "SELECT \(Self.accountColumns) FROM accounts a WHERE a.id = $1", binds: [.text(id)])).rows.first.map(Self.account)
        }
    }

    public func listAccounts() async throws -> [Account] {
        try await pool.withConnection { c in
            try c.query(SQLQuery(unsafeSQL: "SELECT \(Self.accountColumns) FROM accounts a ORDER BY a.id")).rows.map(Self.account)
        }
    }

    public func updateAccount(id: String, plan: String?, monthlyLimit: Int64?) async throws -> Account {
        if let monthlyLimit, monthlyLimit < 0 { throw LedgerServerError(.invalidRequest, "monthlyLimit must not be negative") }
        if let plan, plan.isEmpty || plan.utf8.count > 50 { throw LedgerServerError(.invalidRequest, "plan must be 1 to 50 characters") }
        return try await pool.withConnection { c in
            let n = try c.execute("""
                UPDATE accounts SET plan = COALESCE(\(plan), plan), monthly_limit = COALESCE(\(monthlyLimit.map { SQLValue.int($0) } ?? .null)::bigint, monthly_limit),
                updated_at = now() WHERE id = \(id)
                """)
            if n == 0 { throw LedgerServerError(.notFound, "no account \(id)") }
            return Self.account(try c.query(SQLQuery(unsafeSQL: "SELECT \(Self.accountColumns) FROM accounts a WHERE a.id = $1", binds: [.text(id)])).rows[0])
        }
    }

    static let keyColumns = """
        id, account_id, key_prefix, label, status, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        """

    static func key(_ row: [String?]) -> APIKeyRecord {
        APIKeyRecord(id: Int64(row[0]!)!, accountId: row[1]!, prefix: row[2]!, label: row[3]!, status: row[4]!, createdAt: row[5]!, revokedAt: row[6])
    }

    /// Makes a key for `accountId`; the returned raw key is the only copy.
    public func createAPIKey(accountId: String, label: String) async throws -> (raw: String, record: APIKeyRecord) {
        if label.utf8.count > 255 { throw LedgerServerError(.invalidRequest, "label must be at most 255 bytes") }
        let raw = APIKey.generate()
        let record = try await pool.withConnection { c in
            guard try c.query("SELECT 1 FROM accounts WHERE id = \(accountId)").rows.count == 1 else {
                throw LedgerServerError(.notFound, "no account \(accountId)")
            }
            return Self.key(try c.query(SQLQuery(unsafeSQL: """
                INSERT INTO api_keys (account_id, key_hash, key_prefix, label) VALUES ($1, $2, $3, $4) RETURNING \(Self.keyColumns)
                """, binds: [.text(accountId), .bytes(APIKey.hash(raw)), .text(APIKey.displayPrefix(raw)), .text(label)])).rows[0])
        }
        return (raw, record)
    }

    public func listAPIKeys(accountId: String?) async throws -> [APIKeyRecord] {
        try await pool.withConnection { c in
            try c.query(SQLQuery(
                unsafeSQL: "SELECT \(Self.keyColumns) FROM api_keys WHERE $1::text IS NULL OR account_id = $1 ORDER BY id",
                binds: [accountId.map(SQLValue.text) ?? .null])
            ).rows.map(Self.key)
        }
    }

    /// Revokes a key; effective on the next request. Records it issued stay valid.
    public func revokeAPIKey(id: Int64) async throws -> APIKeyRecord {
        try await pool.withConnection { c in
            let rows = try c.query(SQLQuery(unsafeSQL: """
                UPDATE api_keys SET status = 'revoked', revoked_at = now() WHERE id = $1 AND status = 'active' RETURNING \(Self.keyColumns)
                """, binds: [.int(id)])).rows
            if let row = rows.first { return Self.key(row) }
            if try c.query("SELECT 1 FROM api_keys WHERE id = \(id)").rows.isEmpty { throw LedgerServerError(.notFound, "no API key \(id)") }
            throw LedgerServerError(.conflict, "API key \(id) is already revoked")
        }
    }

    /// Replaces a key: the old one is revoked and a new one for the same account is made, atomically.
    public func rotateAPIKey(id: Int64) async throws -> (raw: String, record: APIKeyRecord) {
        let raw = APIKey.generate()
        let record = try await pool.withTransaction { c in
            guard let row = try c.query("SELECT account_id, label, status FROM api_keys WHERE id = \(id) FOR UPDATE").rows.first else {
                throw LedgerServerError(.notFound, "no API key \(id)")
            }
            guard row[2] == "active" else { throw LedgerServerError(.conflict, "API key \(id) is revoked; create a new one instead") }
            let new = Self.key(try c.query(SQLQuery(unsafeSQL: """
                INSERT INTO api_keys (account_id, key_hash, key_prefix, label) VALUES ($1, $2, $3, $4) RETURNING \(Self.keyColumns)
                """, binds: [.text(row[0]!), .bytes(APIKey.hash(raw)), .text(APIKey.displayPrefix(raw)), .text(row[1]!)])).rows[0])
            _ = try c.execute("UPDATE api_keys SET status = 'revoked', revoked_at = now(), replaced_by = \(new.id) WHERE id = \(id)")
            return new
        }
        return (raw, record)
    }

    /// The principal a raw key stands for. Throws 401 for unknown or revoked keys.
    public func authenticate(rawKey: String) async throws -> Principal {
        guard APIKey.isWellFormed(rawKey) else { throw LedgerServerError(.unauthorized, "Invalid API key") }
        let hash = APIKey.hash(rawKey)
        let row = try await pool.withConnection { c in
            try c.query("""
                SELECT k.id, k.key_hash, k.status, a.id, a.plan, a.monthly_limit
                FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = \(hash)
                """).rows.first
        }
        // The index lookup finds the row; the comparison that admits it takes constant time.
        guard let row, let stored = decodeBytea(row[1]), ConstantTime.isEqual(stored, hash) else {
            throw LedgerServerError(.unauthorized, "Invalid API key")
        }
        guard row[2] == "active" else { throw LedgerServerError(.unauthorized, "API key is inactive") }
        return Principal(accountId: row[3]!, apiKeyId: Int64(row[0]!)!, plan: row[4]!, monthlyLimit: Int64(row[5]!)!)
    }

    /// As `authenticate`, answered from memory for up to `PrincipalCache.lifetime` after a lookup. Only
    /// for requests whose append re-checks the key inside its transaction (charged appends), so a
    /// revocation still takes effect on the next such request.
    public func authenticateForCharge(rawKey: String, now: Int64) async throws -> Principal {
        let hash = APIKey.hash(rawKey)
        if let principal = cache.get(hash, now: now) { return principal }
        let principal = try await authenticate(rawKey: rawKey)
        cache.put(hash, principal, now: now)
        return principal
    }

    /// Drops a key from the cache (its append was refused as inactive).
    public func forget(apiKeyId: Int64) { cache.forget(apiKeyId: apiKeyId) }

    /// Adds usage events to the per-minute counters in one statement.
    public func record(_ events: [UsageEvent]) async throws {
        struct Key: Hashable {
            var minute: Int64, account: String, key: Int64, endpoint: String, status: Int, error: String
        }
        var totals: [Key: (requests: Int64, duration: Int64)] = [:]
        for e in events {
            guard let account = e.accountId, let key = e.apiKeyId else { continue }
            let k = Key(minute: e.at / 60_000 * 60_000, account: account, key: key, endpoint: e.endpoint, status: e.status, error: e.error ?? "")
            let t = totals[k] ?? (0, 0)
            totals[k] = (t.requests + 1, t.duration + Int64(e.durationMilliseconds))
        }
        guard !totals.isEmpty else { return }
        // Bounded statements: 8 parameters a row, far below libpq's 65,535 whatever the buffer holds.
        let rows = Array(totals)
        for start in stride(from: 0, to: rows.count, by: Self.usageRowsPerStatement) {
            var values: [SQLValue] = []
            var tuples: [String] = []
            for (k, t) in rows[start..<min(rows.count, start + Self.usageRowsPerStatement)] {
                let n = values.count
                tuples.append("(to_timestamp($\(n + 1)::bigint / 1000.0), $\(n + 2), $\(n + 3)::bigint, $\(n + 4), $\(n + 5)::int, $\(n + 6), $\(n + 7)::bigint, $\(n + 8)::bigint)")
                values += [.int(k.minute), .text(k.account), .int(k.key), .text(k.endpoint), .int(Int64(k.status)), .text(k.error), .int(t.requests), .int(t.duration)]
            }
            let query = SQLQuery(
                unsafeSQL: """
                    INSERT INTO usage_minutes AS u (minute, account_id, api_key_id, endpoint, status_code, error, requests, duration_ms_total)
                    VALUES \(tuples.joined(separator: ", "))
                    ON CONFLICT (account_id, minute, api_key_id, endpoint, status_code, error)
                    DO UPDATE SET requests = u.requests + EXCLUDED.requests, duration_ms_total = u.duration_ms_total + EXCLUDED.duration_ms_total
                    """, binds: values)
            _ = try await pool.withConnection { c in try c.execute(query) }
        }
    }

    /// Rows of one usage statement.
    static let usageRowsPerStatement = 1000

    /// Usage per account and endpoint for a month (`YYYY-MM`).
    public func usage(month: String) async throws -> [(accountId: String?, endpoint: String, count: Int64, errors: Int64, averageMilliseconds: Double)] {
        try await pool.withConnection { c in
            try c.query("""
                SELECT account_id, endpoint, sum(requests), COALESCE(sum(requests) FILTER (WHERE status_code >= 400), 0),
                    sum(duration_ms_total)::float8 / sum(requests)
                FROM usage_minutes WHERE minute >= (\(month + "-01"))::date AND minute < ((\(month + "-01"))::date + interval '1 month')
                GROUP BY account_id, endpoint ORDER BY account_id, endpoint
                """).rows.map { ($0[0], $0[1]!, Int64($0[2]!)!, Int64($0[3]!)!, Double($0[4]!) ?? 0) }
        }
    }
}

/// Principals of recently seen API keys (by key hash).
final class PrincipalCache: Sendable {
    static let lifetime: Int64 = 30_000
    private let entries = Mutex<[[UInt8]: (principal: Principal, until: Int64)]>([:])

    func get(_ hash: [UInt8], now: Int64) -> Principal? {
        entries.withLock { e in
            guard let hit = e[hash], hit.until > now else { return nil }
            return hit.principal
        }
    }

    func put(_ hash: [UInt8], _ principal: Principal, now: Int64) {
        entries.withLock { e in
            if e.count > 10_000 { e.removeAll() }
            e[hash] = (principal, now + Self.lifetime)
        }
    }

    func forget(apiKeyId: Int64) {
        entries.withLock { e in e = e.filter { $0.value.principal.apiKeyId != apiKeyId } }
    }
}
