import LedgerCore
import CERKit
public import HTTPTypes
public import Hummingbird
import LedgerProjections
import LedgerStore
import NIOCore

extension LedgerServerError.Code {
    /// The one place wire codes become HTTP statuses.
    var status: HTTPResponse.Status {
        switch self {
        case .badRequest, .invalidJSON, .invalidBundle, .invalidRequest, .invalidField, .invalidHashFormat, .unsupportedProtocolVersion, .requestAborted:
            return .badRequest
        case .protocolSchemaUnsatisfied: return .unprocessableContent
        case .unsupportedMediaType: return .unsupportedMediaType
        case .payloadTooLarge: return .contentTooLarge
        case .unauthorized: return .unauthorized
        case .forbidden: return .forbidden
        case .notFound: return .notFound
        case .methodNotAllowed: return .methodNotAllowed
        case .executionMutationDetected, .conflict, .idempotencyKeyReused: return .conflict
        case .quotaExceeded, .rateLimited: return .tooManyRequests
        case .requestTimeout: return .requestTimeout
        case .headersTooLarge: return .requestHeaderFieldsTooLarge
        case .serviceUnavailable, .noActiveKey, .adminNotConfigured, .logNotConsistent: return .serviceUnavailable
        case .internalError: return .internalServerError
        }
    }
}

extension LedgerServerError: HTTPResponseError {
    public var status: HTTPResponse.Status { code.status }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        JSONResponse.make(status: status, body: body, headers: headers)
    }

    /// Any error a handler can throw, as the error it is shown as. Operational faults keep their
    /// detail for the log and show a sentence that names no internals.
    static func from(_ error: any Error) -> LedgerServerError {
        switch error {
        case let e as LedgerServerError:
            return e
        case AppendRefusal.notAdmitted(.quotaExceeded(let used, let limit)):
            return LedgerServerError(
                .quotaExceeded, "Monthly certified run quota exceeded", extra: ["limit": .number(Double(limit)), "used": .number(Double(used))])
        case AppendRefusal.notAdmitted(.credentialInactive):
            return LedgerServerError(.unauthorized, "API key is inactive")
        case AppendRefusal.notAdmitted(.unknownAccount):
            return LedgerServerError(.unauthorized, "Invalid API key")
        case let e as AppendRefusal:
            return LedgerServerError(.invalidRequest, e.description)
        case let e as TreeRangeError:
            return LedgerServerError(.invalidRequest, e.description)
        case let e as ProjectionLagging:
            return LedgerServerError(.serviceUnavailable, e.description)
        case let e as LedgerStoreError where e.isRetryable || e.code == .unavailable || e.code == .shutdown || e.code == .timeout:
            return LedgerServerError(.serviceUnavailable, "Database not available. Please try again later.")
        case let e as LedgerStoreError where PostgresEventLog.isRequestFault(e) && !(e.sqlState ?? "").hasPrefix("42"):
            // A value the database refuses (its own checks): the request's fault, never a 500.
            return LedgerServerError(.invalidRequest, "the ledger cannot store this request's content (SQLSTATE \(e.sqlState ?? "?")); check its field lengths and characters")
        case let e as any HTTPResponseError:
            switch e.status {
            case .contentTooLarge: return LedgerServerError(.payloadTooLarge, "the request body is larger than this server accepts")
            case .notFound: return LedgerServerError(.notFound, "no such endpoint")
            case .methodNotAllowed: return LedgerServerError(.methodNotAllowed, "this endpoint does not accept that method")
            case .requestHeaderFieldsTooLarge: return LedgerServerError(.headersTooLarge, "the request headers are too large")
            case .requestTimeout: return LedgerServerError(.requestTimeout, "the request took too long")
            default:
                if (400..<500).contains(e.status.code) { return LedgerServerError(.badRequest, e.status.reasonPhrase) }
                return LedgerServerError(.internalError, "An unexpected error occurred")
            }
        case is CancellationError:
            return LedgerServerError(.serviceUnavailable, "the server is shutting down or the request was cancelled")
        default:
            return LedgerServerError(.internalError, "An unexpected error occurred")
        }
    }
}

/// JSON responses with exact bytes (never the default encoder, whose key order is random).
enum JSONResponse {
    static func make(status: HTTPResponse.Status = .ok, body: JSONValue, headers: [(String, String)] = []) -> Response {
        bytes(status: status, body.compactBytes(), contentType: "application/json; charset=utf-8", headers: headers)
    }

    static func bytes(status: HTTPResponse.Status = .ok, _ bytes: [UInt8], contentType: String, headers: [(String, String)] = []) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = contentType
        for (name, value) in headers {
            if let n = HTTPField.Name(name) { fields.append(HTTPField(name: n, value: value)) }
        }
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
