import CERKit
import HTTPTypes
import Hummingbird

/// The admin API: accounts and API keys, guarded by `X-Admin-Secret` (the configured admin token).
struct AdminRoutes: Sendable {
    let adminToken: String?
    let accounts: AccountStore
    let defaultMonthlyLimit: Int64
    let reader: RequestReader
    let clock: @Sendable () -> Int64

    func register(on router: Router<LedgerRequestContext>) {
        let group = router.group("/v1/admin")
        group.get("/accounts") { request, context in
            try context.auth.requireAdmin()
            return JSONResponse.make(body: ["accounts": .array(try await accounts.listAccounts().map(Self.json))])
        }
        group.post("/accounts") { request, context in
            try context.auth.requireAdmin()
            let (body, _) = try await reader.object(request)
            guard let id = try body.string("id") else { throw LedgerServerError(.invalidRequest, "id is required") }
            let account = try await accounts.createAccount(
                id: id, plan: try body.string("plan") ?? "free", monthlyLimit: try body.integer("monthlyLimit") ?? defaultMonthlyLimit)
            return JSONResponse.make(status: .created, body: Self.json(account))
        }
        group.get("/accounts/:id") { request, context in
            try context.auth.requireAdmin()
            let id = context.parameters.get("id") ?? ""
            guard let account = try await accounts.account(id: id) else { throw LedgerServerError(.notFound, "no account \(id.prefix(64))") }
            return JSONResponse.make(body: Self.json(account))
        }
        group.post("/accounts/:id") { request, context in
            try context.auth.requireAdmin()
            let (body, _) = try await reader.object(request)
            let account = try await accounts.updateAccount(
                id: context.parameters.get("id") ?? "", plan: try body.string("plan"), monthlyLimit: try body.integer("monthlyLimit"))
            return JSONResponse.make(body: Self.json(account))
        }
        group.get("/accounts/:id/api-keys") { request, context in
            try context.auth.requireAdmin()
            let keys = try await accounts.listAPIKeys(accountId: context.parameters.get("id") ?? "")
            return JSONResponse.make(body: ["apiKeys": .array(keys.map { Self.json($0) })])
        }
        group.post("/accounts/:id/api-keys") { request, context in
            try context.auth.requireAdmin()
            let (body, _) = try await reader.object(request)
            let (raw, record) = try await accounts.createAPIKey(accountId: context.parameters.get("id") ?? "", label: try body.string("label") ?? "")
            return JSONResponse.make(status: .created, body: Self.json(record, raw: raw))
        }
        group.post("/api-keys/:id/revoke") { request, context in
            try context.auth.requireAdmin()
            return JSONResponse.make(body: Self.json(try await accounts.revokeAPIKey(id: try Self.keyId(context))))
        }
        group.post("/api-keys/:id/rotate") { request, context in
            try context.auth.requireAdmin()
            let (raw, record) = try await accounts.rotateAPIKey(id: try Self.keyId(context))
            return JSONResponse.make(status: .created, body: Self.json(record, raw: raw))
        }
        group.get("/usage") { request, context in
            try context.auth.requireAdmin()
            let now = Timestamp.iso8601(milliseconds: clock())
            let month: String = request.uri.queryParameters.get("month").map { String($0) } ?? String(now.prefix(7))
            guard month.utf8.count == 7, month.utf8.enumerated().allSatisfy({ i, c in i == 4 ? c == 0x2D : (c >= 0x30 && c <= 0x39) }),
                let m = Int(month.suffix(2)), (1...12).contains(m)
            else { throw LedgerServerError(.invalidRequest, "month must be YYYY-MM") }
            let rows = try await accounts.usage(month: month)
            let usage: [JSONValue] = rows.map { r in
                [
                    "accountId": r.accountId.map { .string(JSONString($0)) } ?? .null, "endpoint": .string(JSONString(r.endpoint)),
                    "count": .number(Double(r.count)), "errorCount": .number(Double(r.errors)),
                    "avgDurationMs": .number((r.averageMilliseconds * 10).rounded() / 10),
                ]
            }
            return JSONResponse.make(body: ["month": .string(JSONString(month)), "usage": .array(usage)])
        }
    }

    static func keyId(_ context: LedgerRequestContext) throws -> Int64 {
        guard let id = context.parameters.get("id").flatMap({ Int64($0) }), id > 0 else {
            throw LedgerServerError(.invalidRequest, "the API key id must be a positive integer")
        }
        return id
    }

}
