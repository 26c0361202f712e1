import Hummingbird

/// A request's query parameters, read through one set of rules: `get` for an optional value, `require`
/// for a required one, each refusal a 400 naming the parameter.
struct QueryParameters {
    let request: Request

    init(_ request: Request) { self.request = request }

    private var all: Hummingbird.Parameters { request.uri.queryParameters }

    /// The raw value, or nil when absent.
    func get(_ name: String) -> String? { all.get(name).map { String($0) } }

    /// A non-negative decimal integer without leading zeros, or nil when absent.
    func get(_ name: String, as: Int64.Type) throws -> Int64? {
        guard let raw = get(name) else { return nil }
        guard let v = Int64(raw), v >= 0, String(v) == raw else {
            throw LedgerServerError(.invalidRequest, "\(name) must be a non-negative decimal integer without leading zeros")
        }
        return v
    }

    /// As `get(_:as:)`; absent is a 400.
    func require(_ name: String, as type: Int64.Type) throws -> Int64 {
        guard let v = try get(name, as: type) else { throw LedgerServerError(.invalidRequest, "the query parameter \(name) is required") }
        return v
    }

    /// An integer in `range`, `default` when absent.
    func get(_ name: String, default value: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let raw = get(name) else { return value }
        guard let n = Int(raw), range.contains(n) else {
            throw LedgerServerError(
                .invalidRequest, "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound == Int.max ? "any" : String(range.upperBound))")
        }
        return n
    }

    /// A boolean flag: absent (false), `true` or `false`.
    func flag(_ name: String) throws -> Bool {
        switch get(name) {
        case nil, "false": return false
        case "true": return true
        default: throw LedgerServerError(.invalidRequest, "\(name) must be true or false")
        }
    }
}
