import CERKit
import LedgerCore
import LedgerStore

/// The JSON shapes of the admin API: accounts and API keys.
extension AdminRoutes {
    static func json(_ a: Account) -> JSONValue {
        [
            "id": .string(JSONString(a.id)), "plan": .string(JSONString(a.plan)), "monthlyLimit": .number(Double(a.monthlyLimit)),
            "usedThisMonth": .number(Double(a.usedThisMonth)), "createdAt": .string(JSONString(a.createdAt)),
        ]
    }

    static func json(_ k: APIKeyRecord, raw: String? = nil) -> JSONValue {
        var o: JSONObject = [
            "apiKeyId": .number(Double(k.id)), "accountId": .string(JSONString(k.accountId)), "prefix": .string(JSONString(k.prefix)),
            "label": .string(JSONString(k.label)), "status": .string(JSONString(k.status)), "createdAt": .string(JSONString(k.createdAt)),
            "revokedAt": k.revokedAt.map { .string(JSONString($0)) } ?? .null,
        ]
        if let raw { o["apiKey"] = .string(JSONString(raw)) }
        return .object(o)
    }
}
