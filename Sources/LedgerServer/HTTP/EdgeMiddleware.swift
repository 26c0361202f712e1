import HTTPTypes
import Hummingbird
import Logging

/// The HTTP edge: every error becomes a JSON body with a stable code (never an empty 500), every
/// response carries `X-Request-Id`, each request gets one log line (no payloads, keys or tokens),
/// and a request that outlives the timeout is answered 408.
struct EdgeMiddleware: RouterMiddleware {
    typealias Context = LedgerRequestContext
    let timeout: Duration
    /// Largest total size of request headers answered normally (larger: 431).
    static let maxHeaderBytes = 32 * 1024

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var response: Response
        do {
            let headerBytes = request.headers.reduce(0) { $0 + $1.name.rawName.utf8.count + $1.value.utf8.count + 4 }
            if headerBytes > Self.maxHeaderBytes {
                throw LedgerServerError(.headersTooLarge, "the request headers total \(headerBytes) bytes; at most \(Self.maxHeaderBytes) are accepted")
            }
            response = try await withoutActuallyEscaping(next) { next in
                // The task group awaits its children before returning, so `next` does not outlive this call.
                let handler = UncheckedSendable(value: next)
                return try await withTimeout { try await handler.value(request, context) }
            }
        } catch {
            let shown = LedgerServerError.from(error)
            if shown.code == .internalError {
                context.logger.error("request failed", metadata: ["ledger.error": "\(String(reflecting: error))"])
            }
            var headers = shown.headers
            // Every 503 is retryable; say when.
            if shown.status == .serviceUnavailable, !headers.contains(where: { $0.0 == "Retry-After" }) { headers.append(("Retry-After", "1")) }
            response = JSONResponse.make(status: shown.status, body: shown.body, headers: headers)
        }
        response.headers[HTTPField.Name("X-Request-Id")!] = context.id
        let elapsed = ContinuousClock.now - start
        let ms = elapsed.milliseconds
        context.logger.info(
            "request",
            metadata: [
                "ledger.method": "\(request.method)", "ledger.route": "\(context.endpointPath ?? "unmatched")",
                "ledger.status": "\(response.status.code)", "ledger.duration_ms": "\((ms * 100).rounded() / 100)",
            ])
        return response
    }

    /// Runs the handler with a deadline. When it passes before the handler began to commit, the handler
    /// is cancelled and 408 answered; once it has begun to commit, its own answer is awaited instead.
    private func withTimeout(_ body: @escaping @Sendable () async throws -> Response) async throws -> Response {
        let deadline = RequestDeadline()
        return try await RequestDeadline.$current.withValue(deadline) {
            try await withThrowingTaskGroup(of: Response?.self) { group in
                group.addTask { try await body() }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                while let first = try await group.next() {
                    if let response = first { return response }
                    if deadline.expire() { break }
                }
                throw LedgerServerError(.requestTimeout, "the request took longer than \(timeout) and was abandoned before anything was written; retrying is safe")
            }
        }
    }
}

/// Carries a value the compiler cannot prove Sendable across a structured-concurrency boundary.
private struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
}

extension Duration {
    /// The duration in (fractional) milliseconds.
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
