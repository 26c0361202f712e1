public import CERKit
public import LedgerCore

/// A request the server refuses or cannot serve. `code` is the stable wire `error`; the HTTP edge
/// maps it to a status in one place (`LedgerServerError+HTTP.swift`). `description` is safe to show.
public struct LedgerServerError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case badRequest = "BAD_REQUEST"
        case invalidJSON = "INVALID_JSON"
        case unsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
        case payloadTooLarge = "PAYLOAD_TOO_LARGE"
        case invalidBundle = "INVALID_BUNDLE"
        case invalidRequest = "INVALID_REQUEST"
        case invalidField = "INVALID_FIELD"
        case invalidHashFormat = "INVALID_HASH_FORMAT"
        case unsupportedProtocolVersion = "UNSUPPORTED_PROTOCOL_VERSION"
        case protocolSchemaUnsatisfied = "PROTOCOL_SCHEMA_UNSATISFIED"
        case unauthorized = "UNAUTHORIZED"
        case forbidden = "FORBIDDEN"
        case notFound = "NOT_FOUND"
        case methodNotAllowed = "METHOD_NOT_ALLOWED"
        case executionMutationDetected = "EXECUTION_MUTATION_DETECTED"
        case conflict = "CONFLICT"
        case idempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED"
        case quotaExceeded = "QUOTA_EXCEEDED"
        case rateLimited = "RATE_LIMIT"
        case requestTimeout = "REQUEST_TIMEOUT"
        case requestAborted = "REQUEST_ABORTED"
        case headersTooLarge = "HEADERS_TOO_LARGE"
        case serviceUnavailable = "SERVICE_UNAVAILABLE"
        case noActiveKey = "NO_ACTIVE_KEY"
        /// The database's log is not a consistent extension of the latest checkpoint this server signed.
        case logNotConsistent = "LOG_NOT_CONSISTENT"
        case adminNotConfigured = "ADMIN_NOT_CONFIGURED"
        case internalError = "INTERNAL_ERROR"
    }

    public var code: Code
    public var message: String
    /// The most specific protocol reason (a `CerVerifyCode`), when there is one.
    public var reasonCode: String?
    public var details: [String]
    /// Extra top-level members of the error body (quota figures, for example).
    public var extra: JSONObject
    /// Extra response headers.
    public var headers: [(String, String)]

    public init(
        _ code: Code, _ message: String, reasonCode: String? = nil, details: [String] = [], extra: JSONObject = JSONObject(),
        headers: [(String, String)] = []
    ) {
        self.code = code
        self.message = message
        self.reasonCode = reasonCode
        self.details = details
        self.extra = extra
        self.headers = headers
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// A field that breaks its intake rule: 400 `INVALID_FIELD` naming it.
    public static func field(_ violation: IntakeRules.Violation) -> LedgerServerError {
        LedgerServerError(.invalidField, violation.description, extra: ["field": .string(JSONString(violation.field))])
    }

    /// The JSON error body: `{error, reasonCode?, message, details?, …extra}`.
    public var body: JSONValue {
        var o = extra
        o["error"] = .string(JSONString(code.rawValue))
        o["message"] = .string(JSONString(message))
        if let reasonCode { o["reasonCode"] = .string(JSONString(reasonCode)) }
        if !details.isEmpty { o["details"] = .array(details.map { .string(JSONString($0)) }) }
        return .object(o)
    }
}
