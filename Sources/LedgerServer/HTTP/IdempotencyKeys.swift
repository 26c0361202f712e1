import CERKit
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import LedgerStore

/// Retry-safe writes: a request carrying `Idempotency-Key` claims the key for its account in the same
/// transaction as its append (a `ledger_claims` row whose value is the request's hash and a nonce). A
/// retry with the same key and the same request gets the original answer, rebuilt from the entry the
/// claim names, however the first attempt ended (a timeout, a lost connection, a restart); the same key
/// with another request is 409 `IDEMPOTENCY_KEY_REUSED`. Two attempts racing each other append once.
struct IdempotencyKeys: Sendable {
    let log: PostgresEventLog

    static let header = HTTPField.Name("Idempotency-Key")!

    /// One request's use of a key.
    struct Use: Sendable {
        var account: String
        var scope: String
        var key: String
        /// SHA-256 of the endpoint, the query and the body.
        var requestHash: String
        /// The claim the append makes; the nonce makes two racing attempts conflict, so only one appends.
        func claim() -> Claim { Claim(scope: scope, key: key, value: requestHash + "/" + UUID().uuidString.lowercased()) }
    }

    /// The request's use of its `Idempotency-Key`, or nil when it sends none; a malformed key is a 400.
    static func use(_ request: Request, account: String, endpoint: String, body: [UInt8]) throws -> Use? {
        guard let raw = request.headers[header] else { return nil }
        guard (1...255).contains(raw.utf8.count), raw.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw LedgerServerError(.invalidRequest, "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces")
        }
        var hashed = Array("\(endpoint)\n\(request.uri.query ?? "")\n".utf8)
        hashed += body
        return Use(account: account, scope: "idempotency:\(account)", key: raw, requestHash: Hex.encode(ProtocolHash.sha256(hashed)))
    }

    /// The entry the key's first use appended, when `use` repeats that request; nil when the key is
    /// unused; 409 when the key was used for another request.
    func original(_ use: Use) async throws -> LedgerEntry? {
        guard let (value, index) = try await log.claim(scope: use.scope, key: use.key) else { return nil }
        guard value.split(separator: "/").first.map(String.init) == use.requestHash else {
            throw LedgerServerError(
                .idempotencyKeyReused, "this Idempotency-Key was already used for a different request; use a new key for a new request")
        }
        // Claims are not hashed into the log: an altered one must never answer with another account's entry.
        guard let entry = try await log.entry(index: index), entry.account == use.account else {
            throw LedgerServerError(.conflict, "the record of this Idempotency-Key cannot be found for this account; use a new key")
        }
        return entry
    }

    /// Runs `perform` unless the key's first use already answered; when it loses a race with another
    /// attempt under the same key, answers as that attempt did.
    func run(
        _ use: Use?, replay: (LedgerEntry) async throws -> Response, _ perform: ([Claim]) async throws -> (response: Response, meter: MeterReading?)
    ) async throws -> (response: Response, meter: MeterReading?) {
        guard let use else { return try await perform([]) }
        if let entry = try await original(use) { return (Self.marked(try await replay(entry)), nil) }
        do {
            return try await perform([use.claim()])
        } catch AppendRefusal.claimConflict(let scope, _, _) where scope == use.scope {
            guard let entry = try await original(use) else { throw LedgerServerError(.conflict, "the Idempotency-Key is in use; retry") }
            return (Self.marked(try await replay(entry)), nil)
        }
    }

    static func marked(_ response: Response) -> Response {
        var r = response
        r.headers[HTTPField.Name("Idempotent-Replayed")!] = "true"
        return r
    }
}
