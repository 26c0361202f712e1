/// An operational failure of the ledger's storage, with a stable code. `description` is safe to show
/// and log (no SQL, no values); `debugDescription` has everything.
public struct LedgerStoreError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public enum Code: String, Sendable {
        /// The database cannot be reached or the connection broke; retry later.
        case unavailable = "DATABASE_UNAVAILABLE"
        /// A statement exceeded the statement timeout.
        case timeout = "DATABASE_TIMEOUT"
        /// Serialization failure or deadlock; retry.
        case conflict = "DATABASE_CONFLICT"
        /// A constraint or trigger refused the write.
        case refused = "WRITE_REFUSED"
        /// A migration problem (changed file, failed statement).
        case migration = "MIGRATION_FAILED"
        /// The embedded PostgreSQL could not be started.
        case embedded = "EMBEDDED_DATABASE_FAILED"
        /// Anything else the database reported.
        case database = "DATABASE_ERROR"
        /// The store is shutting down.
        case shutdown = "STORE_SHUT_DOWN"
    }

    public var code: Code
    /// The PostgreSQL SQLSTATE, when the server sent one.
    public var sqlState: String?
    /// A safe sentence.
    public var message: String
    /// Server detail and the statement, for `debugDescription` only.
    public var detail: String?

    public init(_ code: Code, _ message: String, sqlState: String? = nil, detail: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
    }

    /// True when the same operation may succeed if tried again later.
    public var isRetryable: Bool { [.unavailable, .timeout, .conflict, .shutdown].contains(code) }

    public var description: String { "\(code.rawValue): \(message)" }
    public var debugDescription: String {
        "\(code.rawValue)\(sqlState.map { " [\($0)]" } ?? ""): \(message)\(detail.map { " — \($0)" } ?? "")"
    }

    /// Classifies a server error by SQLSTATE class.
    static func fromServer(sqlState: String?, message: String, detail: String?) -> LedgerStoreError {
        let state = sqlState ?? ""
        let code: Code
        switch state.prefix(2) {
        case "08", "57": code = state == "57014" ? .timeout : .unavailable  // connection exception, operator intervention
        case "53", "58": code = .unavailable  // insufficient resources (disk full, out of memory, too many connections), system error
        case "40": code = .conflict
        case "23", "42", "P0", "55": code = state == "42501" || state.hasPrefix("P0") || state.hasPrefix("23") ? .refused : .database
        default: code = .database
        }
        return LedgerStoreError(code, message, sqlState: sqlState, detail: detail)
    }
}
