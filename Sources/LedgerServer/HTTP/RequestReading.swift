import CERKit
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Reading request bodies and headers with the server's limits; every refusal is a 4xx naming the problem.
struct RequestReader: Sendable {
    let maxBodyBytes: Int
    let maxJSONDepth: Int

    /// The body parsed as JSON, and its bytes. Requires a JSON content type.
    func json(_ request: Request) async throws -> (value: JSONValue, bytes: [UInt8]) {
        let bytes = try await body(request)
        return (try parse(bytes), bytes)
    }

    /// The body's bytes (at most `maxBodyBytes`, never empty). Requires a JSON content type.
    func body(_ request: Request) async throws -> [UInt8] {
        try check(request)
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBodyBytes)
        } catch let e as any HTTPResponseError where e.status == .contentTooLarge {
            throw LedgerServerError(.payloadTooLarge, "the body is larger than the \(maxBodyBytes) bytes this endpoint accepts")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw LedgerServerError(.requestAborted, "the request body could not be read completely")
        }
        let bytes = Array(buffer.readableBytesView)
        if bytes.isEmpty { throw LedgerServerError(.invalidJSON, "the request body is empty; send a JSON document") }
        return bytes
    }

    /// Cheap checks from the headers alone (a JSON content type; a declared length within the limit),
    /// also made before a request is admitted, so such a refusal never waits for a permit.
    func check(_ request: Request) throws {
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json")) else {
            throw LedgerServerError(
                .unsupportedMediaType,
                contentType.isEmpty ? "send the body as JSON with Content-Type: application/json" : "Content-Type \(contentType.prefix(100)) is not JSON; send application/json")
        }
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBodyBytes {
            throw LedgerServerError(.payloadTooLarge, "the body is \(length) bytes; this endpoint accepts at most \(maxBodyBytes)")
        }
    }

    /// Parses a body read by `body(_:)` with the server's limits.
    func parse(_ bytes: [UInt8]) throws -> JSONValue {
        do {
            let value = try JSONParser.parse(bytes, limits: JSONParseLimits(maxBytes: maxBodyBytes, maxDepth: maxJSONDepth, maxStringBytes: maxBodyBytes))
            if Self.hasNonFiniteNumber(value), let path = Self.nonFiniteNumber(in: value, path: "$") {
                throw LedgerServerError(
                    .invalidJSON, "the number at \(path) is too large to represent (it would be Infinity); no JSON number may overflow a double",
                    details: ["NON_FINITE_NUMBER"])
            }
            return value
        } catch let error as LedgerServerError {
            throw error
        } catch let error as JSONParseError {
            throw LedgerServerError(.invalidJSON, "the body is not valid JSON: \(error.description)", details: [error.reason.rawValue])
        }
    }

    /// A lower bound of the number of elements of a top-level JSON array, found by a byte scan (strings
    /// skipped, nesting tracked) without parsing; nil when the document does not start as an array. The
    /// scan stops once the count exceeds `limit`, so refusing an oversized run costs no parse.
    static func topLevelArrayCount(_ bytes: [UInt8], exceeding limit: Int) -> Int? {
        var i = 0
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
        guard i < bytes.count, bytes[i] == UInt8(ascii: "[") else { return nil }
        var depth = 0, commas = 0, inString = false, escaped = false, sawElement = false
        while i < bytes.count {
            let c = bytes[i]
            i += 1
            if inString {
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch c {
            case UInt8(ascii: "\""): inString = true; if depth == 1 { sawElement = true }
            case UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1; if depth == 2 { sawElement = true }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1; if depth == 0 { return commas + (sawElement ? 1 : 0) }
            case UInt8(ascii: ","): if depth == 1 { commas += 1; if commas + 1 > limit { return commas + 1 } }
            case 0x20, 0x09, 0x0A, 0x0D: break
            default: if depth == 1 { sawElement = true }
            }
        }
        return commas + (sawElement ? 1 : 0)
    }

    /// True when some number overflowed to ±Infinity (cheap: no paths are built).
    static func hasNonFiniteNumber(_ value: JSONValue) -> Bool {
        switch value {
        case .number(let n): return !n.isFinite
        case .array(let a): return a.contains(where: hasNonFiniteNumber)
        case .object(let o): return o.members.contains(where: { hasNonFiniteNumber($0.value) })
        default: return false
        }
    }

    /// The path of the first number that overflowed to ±Infinity, if any.
    static func nonFiniteNumber(in value: JSONValue, path: String) -> String? {
        switch value {
        case .number(let n): return n.isFinite ? nil : path
        case .array(let a):
            for (i, e) in a.enumerated() { if let p = nonFiniteNumber(in: e, path: "\(path)[\(i)]") { return p } }
            return nil
        case .object(let o):
            for m in o.members { if let p = nonFiniteNumber(in: m.value, path: path + "." + m.key.description) { return p } }
            return nil
        default: return nil
        }
    }

    /// The body as a JSON object.
    func object(_ request: Request) async throws -> (object: JSONObject, bytes: [UInt8]) {
        let (value, bytes) = try await json(request)
        guard let object = value.objectValue else { throw LedgerServerError(.invalidRequest, "the body must be a JSON object, not a \(value.typeName)") }
        return (object, bytes)
    }

    /// The body of a visibility change: `{"visibility": "private" | "public"}`.
    func visibilityChange(_ request: Request) async throws -> Visibility {
        let (body, _) = try await object(request)
        guard let raw = try body.string("visibility"), let visibility = Visibility(rawValue: raw) else {
            throw LedgerServerError(.invalidRequest, "visibility must be \"private\" or \"public\"")
        }
        return visibility
    }

    /// A path parameter holding a certificate hash, in `sha256:` or `sha256%3A` form.
    static func certificateHash(_ context: some RequestContext, name: String = "hash") throws -> String {
        let raw = context.parameters.get(name) ?? ""
        let hash = raw.removingPercentEncoding ?? raw
        guard ProtocolHash.isWellFormed(hash) else {
            throw LedgerServerError(
                .invalidHashFormat, "the certificate hash must be sha256: followed by 64 lowercase hex digits",
                reasonCode: CerVerifyCode.invalidSha256Format.rawValue)
        }
        return hash
    }
}

extension JSONObject {
    /// An optional string member; wrong types are a 400 naming the field.
    func string(_ key: String) throws -> String? {
        guard let v = self[key], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw LedgerServerError(.invalidRequest, "\(key) must be a string, not a \(v.typeName)") }
        return s
    }

    /// An optional integer member.
    func integer(_ key: String) throws -> Int64? {
        guard let v = self[key], !v.isNull else { return nil }
        guard let d = v.numberValue, d.rounded() == d, abs(d) < 9.0e15 else {
            throw LedgerServerError(.invalidRequest, "\(key) must be an integer")
        }
        return Int64(d)
    }
}
