import CERKit
import HTTPTypes
public import Hummingbird
import Synchronization

/// Who a request acts for.
enum Caller: Sendable {
    /// No credential was sent.
    case anonymous
    /// An API key of this account.
    case account(Principal)
    /// The operator (the admin secret).
    case admin
}

/// The one place requests are authenticated: an API key (`Authorization: Bearer <key>`) stands for an
/// account, the admin secret (`X-Admin-Secret`) for the operator. Nothing is looked up until a route
/// asks (anonymous routes never touch the database), and what was looked up is kept for the request.
final class RequestAuthentication: Sendable {
    static let adminHeader = HTTPField.Name("X-Admin-Secret")!

    private let accounts: AccountStore
    private let adminToken: String?
    private let authorization: String?
    private let adminSecret: String?
    private let principal = Mutex<Principal?>(nil)

    init(accounts: AccountStore, adminToken: String?, request: Request) {
        self.accounts = accounts
        self.adminToken = adminToken
        authorization = request.headers[.authorization]
        adminSecret = request.headers[Self.adminHeader]
    }

    /// Whether the request sent an API key.
    var sentAPIKey: Bool { authorization != nil }
    /// Whether the request sent the admin secret.
    var sentAdminSecret: Bool { adminSecret != nil }

    /// The API key sent, or 401.
    func bearer() throws -> String {
        guard let header = authorization, header.hasPrefix("Bearer "), header.count > 7 else {
            throw LedgerServerError(.unauthorized, "Missing or invalid Authorization header. Use: Authorization: Bearer <api_key>")
        }
        // Spaces and tabs around the key are ignored (byte-wise: Foundation's trimming is slow here).
        let bytes = header.utf8.dropFirst(7)
        let start = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }) ?? bytes.endIndex
        let end = bytes.lastIndex(where: { $0 != 0x20 && $0 != 0x09 }).map { bytes.index(after: $0) } ?? start
        return String(decoding: header.utf8[start..<max(start, end)], as: UTF8.self)
    }

    /// The account the API key stands for: 401 without one, or for an unknown or revoked key.
    func account() async throws -> Principal {
        if let known = principal.withLock({ $0 }) { return known }
        let found = try await accounts.authenticate(rawKey: try bearer())
        principal.withLock { $0 = found }
        return found
    }

    /// As `account()`, answered from memory for a while after a lookup (`PrincipalCache`). Only for
    /// charged requests, whose append checks the key again in its own transaction.
    func accountForCharge(now: Int64) async throws -> Principal {
        if let known = principal.withLock({ $0 }) { return known }
        let found = try await accounts.authenticateForCharge(rawKey: try bearer(), now: now)
        principal.withLock { $0 = found }
        return found
    }

    /// The account when an API key was sent (a bad key is a 401), nil for an anonymous caller.
    func optionalAccount() async throws -> Principal? {
        sentAPIKey ? try await account() : nil
    }

    /// The operator: 403-style refusals when the admin API is disabled, 401 for a missing or wrong secret.
    func requireAdmin() throws {
        guard let token = adminToken, !token.isEmpty else {
            throw LedgerServerError(.adminNotConfigured, "the admin API is disabled: set LEDGER_ADMIN_TOKEN to enable it")
        }
        guard let given = adminSecret, ConstantTime.isEqual(ProtocolHash.sha256(Array(given.utf8)), ProtocolHash.sha256(Array(token.utf8)))
        else { throw LedgerServerError(.unauthorized, "Missing or wrong X-Admin-Secret header") }
    }

    /// Who the request acts for: the operator when the admin secret is sent (and right), an account
    /// when an API key is sent (and valid), anonymous otherwise. A wrong credential is a 401.
    func caller() async throws -> Caller {
        if sentAdminSecret {
            try requireAdmin()
            return .admin
        }
        if let p = try await optionalAccount() { return .account(p) }
        return .anonymous
    }
}

/// The request context of every route: Hummingbird's core context and the request's authentication.
public struct LedgerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `AuthenticationMiddleware` before any route runs.
    var authentication: RequestAuthentication?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        authentication = nil
    }

    /// The request's authentication (every route is behind `AuthenticationMiddleware`).
    var auth: RequestAuthentication {
        get throws {
            guard let authentication else { throw LedgerServerError(.internalError, "the request was not authenticated by the middleware") }
            return authentication
        }
    }
}

/// Attaches the request's `RequestAuthentication` to its context; routes ask it for the caller.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = LedgerRequestContext
    let accounts: AccountStore
    let adminToken: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.authentication = RequestAuthentication(accounts: accounts, adminToken: adminToken, request: request)
        return try await next(request, context)
    }
}
