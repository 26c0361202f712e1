import CERKit
public import LedgerStore
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

    static let accountColumns: SQLFragment = """
        a.id, a.plan, a.monthly_limit, to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        COALESCE((SELECT used FROM quota_usage q WHERE q.account_id = a.id AND q.period = date_trunc('month', now() AT TIME ZONE 'UTC')::date), 0)
        """

    static func account(_ row: PostgresRow) throws(LedgerStoreError) -> Account {
        Account(id: try row.text(0), plan: try row.text(1), monthlyLimit: try row.int64(2), createdAt: try row.text(3), usedThisMonth: try row.int64(4))
    }

    /// The account `id` as it is now, read on `c`.
    static func account(id: String, on c: PostgresConnection) throws -> Account? {
        try c.query("SELECT \(sql: accountColumns) FROM accounts a WHERE a.id = \(id)").rows.first.map { r throws(LedgerStoreError) in try account(r) }
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
            guard let account = try Self.account(id: id, on: c) else { throw LedgerStoreError(.database, "account \(id) vanished after it was created") }
            return account
        }
    }

    public func account(id: String) async throws -> Account? {
        try await pool.withConnection { c in try Self.account(id: id, on: c) }
    }

    public func listAccounts() async throws -> [Account] {
        try await pool.withConnection { c in
            try c.query("SELECT \(sql: Self.accountColumns) FROM accounts a ORDER BY a.id").rows.map { r throws(LedgerStoreError) in try Self.account(r) }
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
            guard n > 0, let account = try Self.account(id: id, on: c) else { throw LedgerServerError(.notFound, "no account \(id)") }
            return account
        }
    }

    static let keyColumns: SQLFragment = """
        id, account_id, key_prefix, label, status, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        """

    static func key(_ row: PostgresRow) throws(LedgerStoreError) -> APIKeyRecord {
        APIKeyRecord(
            id: try row.int64(0), accountId: try row.text(1), prefix: try row.text(2), label: try row.text(3), status: try row.text(4),
            createdAt: try row.text(5), revokedAt: row[6])
    }

    /// Makes a key for `accountId`; the returned raw key is the only copy.
    public func createAPIKey(accountId: String, label: String) async throws -> (raw: String, record: APIKeyRecord) {
        if label.utf8.count > 255 { throw LedgerServerError(.invalidRequest, "label must be at most 255 bytes") }
        let raw = APIKey.generate()
        let record = try await pool.withConnection { c in
            guard try c.query("SELECT 1 FROM accounts WHERE id = \(accountId)").rows.count == 1 else {
                throw LedgerServerError(.notFound, "no account \(accountId)")
            }
            return try Self.key(try c.query("""
                INSERT INTO api_keys (account_id, key_hash, key_prefix, label)
                VALUES (\(accountId), \(APIKey.hash(raw)), \(APIKey.displayPrefix(raw)), \(label)) RETURNING \(sql: Self.keyColumns)
                """).single("the new API key"))
        }
        return (raw, record)
    }

    public func listAPIKeys(accountId: String?) async throws -> [APIKeyRecord] {
        try await pool.withConnection { c in
            try c.query("SELECT \(sql: Self.keyColumns) FROM api_keys WHERE \(accountId)::text IS NULL OR account_id = \(accountId) ORDER BY id")
                .rows.map { r throws(LedgerStoreError) in try Self.key(r) }
        }
    }

    /// Revokes a key; effective on the next request. Records it issued stay valid.
    public func revokeAPIKey(id: Int64) async throws -> APIKeyRecord {
        try await pool.withConnection { c in
            let rows = try c.query("""
                UPDATE api_keys SET status = 'revoked', revoked_at = now() WHERE id = \(id) AND status = 'active' RETURNING \(sql: Self.keyColumns)
                """).rows
            if let row = rows.first { return try Self.key(row) }
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
            let new = try Self.key(try c.query("""
                INSERT INTO api_keys (account_id, key_hash, key_prefix, label)
                VALUES (\(try row.text(0)), \(APIKey.hash(raw)), \(APIKey.displayPrefix(raw)), \(try row.text(1))) RETURNING \(sql: Self.keyColumns)
                """).single("the new API key"))
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
        return Principal(accountId: try row.text(3), apiKeyId: try row.int64(0), plan: try row.text(4), monthlyLimit: try row.int64(5))
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
        // One statement whatever the buffer holds: each column is one array parameter.
        let rows = totals.sorted { ($0.key.account, $0.key.minute, $0.key.key, $0.key.endpoint) < ($1.key.account, $1.key.minute, $1.key.key, $1.key.endpoint) }
        _ = try await pool.withConnection { c in
            try c.execute("""
                INSERT INTO usage_minutes AS u (minute, account_id, api_key_id, endpoint, status_code, error, requests, duration_ms_total)
                SELECT to_timestamp(m / 1000.0), a, k, e, s::int, er, n, d
                FROM unnest(\(int64Array: rows.map(\.key.minute))::bigint[], \(textArray: rows.map(\.key.account))::text[],
                            \(int64Array: rows.map(\.key.key))::bigint[], \(textArray: rows.map(\.key.endpoint))::text[],
                            \(int64Array: rows.map { Int64($0.key.status) })::bigint[], \(textArray: rows.map(\.key.error))::text[],
                            \(int64Array: rows.map(\.value.requests))::bigint[], \(int64Array: rows.map(\.value.duration))::bigint[])
                     AS t(m, a, k, e, s, er, n, d)
                ON CONFLICT (account_id, minute, api_key_id, endpoint, status_code, error)
                DO UPDATE SET requests = u.requests + EXCLUDED.requests, duration_ms_total = u.duration_ms_total + EXCLUDED.duration_ms_total
                """)
        }
    }

    /// Usage per account and endpoint for a month (`YYYY-MM`).
    public func usage(month: String) async throws -> [(accountId: String?, endpoint: String, count: Int64, errors: Int64, averageMilliseconds: Double)] {
        try await pool.withConnection { c in
            try c.query("""
                SELECT account_id, endpoint, sum(requests), COALESCE(sum(requests) FILTER (WHERE status_code >= 400), 0),
                    sum(duration_ms_total)::float8 / sum(requests)
                FROM usage_minutes WHERE minute >= (\(month + "-01"))::date AND minute < ((\(month + "-01"))::date + interval '1 month')
                GROUP BY account_id, endpoint ORDER BY account_id, endpoint
                """).rows.map { r throws(LedgerStoreError) in (r[0], try r.text(1), try r.int64(2), try r.int64(3), try r.double(4)) }
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
