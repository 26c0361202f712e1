import CERKit
import Foundation
import CLibpq

/// One libpq connection. Blocking: use it only on the pool's thread pool, one caller at a time.
public final class PostgresConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    /// Set when the connection broke; the pool discards it instead of reusing it.
    public private(set) var isBroken = false
    private var inTransaction = false
    /// Server-side prepared statements by SQL text: parsed and planned once per connection.
    private var prepared: [String: String] = [:]
    /// Names are never reused, so a statement the cache lost track of can never collide.
    private var nextStatementNumber = 0
    static let maxPrepared = 512

    private func statementName() -> String {
        nextStatementNumber += 1
        return "ledger_s\(nextStatementNumber)"
    }

    /// Connects with a libpq connection string or URL; applies `statement_timeout` and quiets notices.
    public init(conninfo: String, statementTimeoutMilliseconds: Int, role: String?) throws(LedgerStoreError) {
        guard let conn = PQconnectdb(conninfo) else { throw LedgerStoreError(.unavailable, "libpq could not allocate a connection") }
        handle = conn
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(conn)).trimmingTrailingWhitespace()
            PQfinish(conn)
            handle = nil
            throw LedgerStoreError(.unavailable, "cannot connect to PostgreSQL", detail: message)
        }
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
        try execute("SET client_min_messages = warning")
        try execute("SELECT set_config('statement_timeout', \(String(max(0, statementTimeoutMilliseconds))), false)")
        if let role {
            // Run with the application role's privileges (INSERT/SELECT on the log) even when the
            // login role owns the tables.
            // Failing to assume it is an error: running with the login role's privileges (often the
            // tables' owner) would silently lift the append-only grants. `role: nil` is the explicit choice.
            let hint = "run `evidence-ledger migrate` as the tables' owner, or set LEDGER_DB_ROLE=none to run with the login role's own privileges"
            let exists = try query("SELECT 1 FROM pg_roles WHERE rolname = \(role)")
            guard !exists.rows.isEmpty else {
                PQfinish(conn)
                handle = nil
                throw LedgerStoreError(.database, "cannot assume the application role \(role): it does not exist; \(hint)")
            }
            do {
                try execute("SET ROLE \(identifier: role)")
            } catch {
                PQfinish(conn)
                handle = nil
                throw LedgerStoreError(.database, "cannot assume the application role \(role): \(error.message); grant it to the login role, or \(hint)")
            }
        }
    }

    deinit { if let handle { PQfinish(handle) } }

    /// Closes the connection now.
    public func close() {
        if let handle { PQfinish(handle) }
        handle = nil
        isBroken = true
    }

    /// Runs a statement and discards its rows.
    @discardableResult
    public func execute(_ query: SQLQuery) throws(LedgerStoreError) -> Int {
        let result = try run(query)
        return result.affectedRows
    }

    /// Runs a whole script of statements without parameters, in the simple query protocol, and returns
    /// the last statement's rows. For migrations (and tests' fixtures): the one way to send SQL text
    /// that was not written as a literal, so never with anything a request carried.
    @discardableResult
    public func executeScript(_ sql: String) throws(LedgerStoreError) -> PostgresRows {
        guard let handle, !isBroken else { throw LedgerStoreError(.unavailable, "the database connection is closed") }
        guard let result = PQexec(handle, sql) else {
            isBroken = PQstatus(handle) != CONNECTION_OK
            throw LedgerStoreError(.unavailable, "the database did not answer")
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK { return PostgresRows(result) }
        do {
            let state = PQresultErrorField(result, CLIBPQ_DIAG_SQLSTATE).map { String(cString: $0) }
            let primary = PQresultErrorField(result, CLIBPQ_DIAG_MESSAGE_PRIMARY).map { String(cString: $0) } ?? "script failed"
            if PQstatus(handle) != CONNECTION_OK { isBroken = true }
            throw LedgerStoreError.fromServer(sqlState: state, message: primary, detail: nil)
        }
    }

    /// Runs a statement and returns its rows in text format.
    public func query(_ query: SQLQuery) throws(LedgerStoreError) -> PostgresRows {
        try run(query)
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    public func withTransaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        inTransaction = true
        do {
            let value = try body()
            try execute("COMMIT")
            inTransaction = false
            return value
        } catch {
            inTransaction = false
            if !isBroken { _ = try? execute("ROLLBACK") }
            throw error
        }
    }

    /// Sends `queries` in one round trip (libpq pipeline mode, one sync at the end) and returns their
    /// results in order. After a failing statement the rest are skipped and the first error is thrown.
    /// Statements share the caller's explicit transaction, if one is open; without one, they form one
    /// implicit transaction that commits at the sync.
    public func pipeline(_ queries: [SQLQuery]) throws(LedgerStoreError) -> [PostgresRows] {
        try receive(try send(queries))
    }

    /// What a sent pipeline will answer: per command, whether it is a prepare (skipped) or a statement.
    public struct SentPipeline: Sendable {
        fileprivate var producesRows: [Bool]
        fileprivate var sentPrepares: [(name: String, sql: String)]
    }

    /// The first half of `pipeline`: sends `queries` and the sync without waiting for an answer, so the
    /// caller can do other work (send on another connection) meanwhile. `receive` must follow before
    /// anything else is sent on this connection.
    public func send(_ queries: [SQLQuery]) throws(LedgerStoreError) -> SentPipeline {
        guard let handle, !isBroken else { throw LedgerStoreError(.unavailable, "the database connection is closed") }
        guard PQenterPipelineMode(handle) == 1 else { throw LedgerStoreError(.database, "cannot enter pipeline mode") }
        // Part of the pipeline (its BEGIN, say) may be queued when a send fails: never reuse the connection.
        func broken(_ what: String) -> LedgerStoreError {
            isBroken = true
            PQexitPipelineMode(handle)
            return LedgerStoreError(.unavailable, what, detail: String(cString: PQerrorMessage(handle)))
        }
        // What each sent command produces: a prepare (its result is skipped) or a statement's rows.
        var producesRows: [Bool] = []
        var preparing: [String: String] = [:]
        var sentPrepares: [(name: String, sql: String)] = []
        for query in queries {
            var name = prepared[query.sql] ?? preparing[query.sql]
            if name == nil, Self.isPreparable(query.sql), prepared.count + preparing.count < Self.maxPrepared {
                let fresh = statementName()
                guard PQsendPrepare(handle, fresh, query.sql, Int32(query.binds.count), nil) == 1 else { throw broken("could not send a statement") }
                producesRows.append(false)
                preparing[query.sql] = fresh
                sentPrepares.append((fresh, query.sql))
                name = fresh
            }
            let sent = Self.withParameters(query.binds) { n, values, lengths, formats in
                if let name { return PQsendQueryPrepared(handle, name, n, values, lengths, formats, 0) }
                return PQsendQueryParams(handle, query.sql, n, nil, values, lengths, formats, 0)
            }
            guard sent == 1 else { throw broken("could not send a statement") }
            producesRows.append(true)
        }
        guard PQpipelineSync(handle) == 1 else { throw broken("could not send the pipeline") }
        return SentPipeline(producesRows: producesRows, sentPrepares: sentPrepares)
    }

    /// The second half of `pipeline`: waits for the answers of a sent pipeline, through its sync.
    public func receive(_ sent: SentPipeline) throws(LedgerStoreError) -> [PostgresRows] {
        guard let handle, !isBroken else { throw LedgerStoreError(.unavailable, "the database connection is closed") }
        defer { PQexitPipelineMode(handle) }
        let producesRows = sent.producesRows, sentPrepares = sent.sentPrepares
        var preparedIndex = 0
        var results: [PostgresRows] = []
        var firstError: LedgerStoreError? = nil
        var command = 0
        var previousWasEnd = false
        while true {
            guard let result = PQgetResult(handle) else {
                // End of one statement's results. Two in a row mean nothing more will come (the server went
                // away mid-pipeline without libpq noticing yet): waiting for the sync would spin forever.
                if PQstatus(handle) != CONNECTION_OK || previousWasEnd {
                    isBroken = true
                    throw firstError ?? LedgerStoreError(.unavailable, "the connection broke during a pipeline")
                }
                previousWasEnd = true
                continue
            }
            previousWasEnd = false
            defer { PQclear(result) }
            let status = PQresultStatus(result)
            if status == PGRES_PIPELINE_SYNC { break }
            let isRows = command < producesRows.count ? producesRows[command] : true
            command += 1
            if !isRows {
                // A prepare: remember the statement only once the server has accepted it.
                if status == PGRES_COMMAND_OK, preparedIndex < sentPrepares.count {
                    prepared[sentPrepares[preparedIndex].sql] = sentPrepares[preparedIndex].name
                }
                preparedIndex += 1
                if status == PGRES_COMMAND_OK || status == PGRES_PIPELINE_ABORTED { continue }
            }
            switch status {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
                results.append(PostgresRows(result))
            case PGRES_PIPELINE_ABORTED:
                continue
            default:
                if firstError == nil {
                    let state = PQresultErrorField(result, CLIBPQ_DIAG_SQLSTATE).map { String(cString: $0) }
                    let primary = PQresultErrorField(result, CLIBPQ_DIAG_MESSAGE_PRIMARY).map { String(cString: $0) }
                        ?? String(cString: PQerrorMessage(handle)).trimmingTrailingWhitespace()
                    var error = LedgerStoreError.fromServer(sqlState: state, message: primary, detail: nil)
                    if PQstatus(handle) != CONNECTION_OK || state == nil { error.code = .unavailable }
                    firstError = error
                }
            }
        }
        if PQstatus(handle) != CONNECTION_OK { isBroken = true }
        if let firstError { throw firstError }
        return results
    }

    /// Calls `body` with libpq's parameter arrays for `binds`: values, lengths and formats (text or
    /// binary, per `SQLValue.wire`). The buffers live until `body` returns.
    static func withParameters<R>(
        _ binds: [SQLValue],
        _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
    ) -> R {
        if binds.isEmpty { return body(0, nil, nil, nil) }
        let wires = binds.map(\.wire)
        // One buffer for all values, each followed by a NUL (text values are read as C strings).
        var total = 0
        for w in wires { total += (w.bytes?.count ?? 0) + 1 }
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: max(total, 1))
        defer { buffer.deallocate() }
        var values: [UnsafePointer<CChar>?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        values.reserveCapacity(wires.count)
        var offset = 0
        for w in wires {
            guard let bytes = w.bytes else {
                values.append(nil)
                lengths.append(0)
                formats.append(0)
                continue
            }
            bytes.withUnsafeBufferPointer { b in
                if let base = b.baseAddress { (buffer + offset).update(from: base, count: b.count) }
            }
            buffer[offset + bytes.count] = 0
            values.append(UnsafeRawPointer(buffer + offset).assumingMemoryBound(to: CChar.self))
            lengths.append(Int32(bytes.count))
            formats.append(w.binary ? 1 : 0)
            offset += bytes.count + 1
        }
        return values.withUnsafeBufferPointer { v in
            lengths.withUnsafeBufferPointer { l in formats.withUnsafeBufferPointer { f in body(Int32(wires.count), v.baseAddress, l.baseAddress, f.baseAddress) } }
        }
    }

    /// Only plannable statements can be prepared (not BEGIN, SET, DDL …).
    static func isPreparable(_ sql: String) -> Bool {
        let head = sql.utf8.prefix(while: { $0 == 0x20 || $0 == 0x0A || $0 == 0x09 }).count
        let word = sql.utf8.dropFirst(head).prefix(6).map { $0 | 0x20 }
        return word.starts(with: Array("select".utf8)) || word.starts(with: Array("insert".utf8))
            || word.starts(with: Array("update".utf8)) || word.starts(with: Array("delete".utf8)) || word.starts(with: Array("with ".utf8))
    }

    private func run(_ query: SQLQuery) throws(LedgerStoreError) -> PostgresRows {
        guard let handle, !isBroken else { throw LedgerStoreError(.unavailable, "the database connection is closed") }
        var name = prepared[query.sql]
        if name == nil, Self.isPreparable(query.sql), prepared.count < Self.maxPrepared {
            let fresh = statementName()
            if let r = PQprepare(handle, fresh, query.sql, Int32(query.binds.count), nil) {
                if PQresultStatus(r) == PGRES_COMMAND_OK {
                    prepared[query.sql] = fresh
                    name = fresh
                }
                PQclear(r)
            }
        }
        let result: OpaquePointer? = Self.withParameters(query.binds) { n, values, lengths, formats in
            if let name { return PQexecPrepared(handle, name, n, values, lengths, formats, 0) }
            return PQexecParams(handle, query.sql, n, nil, values, lengths, formats, 0)
        }
        guard let result else {
            isBroken = PQstatus(handle) != CONNECTION_OK
            throw LedgerStoreError(.unavailable, "the database did not answer", detail: String(cString: PQerrorMessage(handle)))
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
            return PostgresRows(result)
        default:
            let state = PQresultErrorField(result, CLIBPQ_DIAG_SQLSTATE).map { String(cString: $0) }
            let primary = PQresultErrorField(result, CLIBPQ_DIAG_MESSAGE_PRIMARY).map { String(cString: $0) }
                ?? String(cString: PQerrorMessage(handle)).trimmingTrailingWhitespace()
            if PQstatus(handle) != CONNECTION_OK { isBroken = true }
            var error = LedgerStoreError.fromServer(sqlState: state, message: primary, detail: query.sql)
            if isBroken || state == nil { error.code = .unavailable }
            throw error
        }
    }
}

/// Rows of a result in text format.
public struct PostgresRows: Sendable {
    public var columns: [String]
    public var rows: [PostgresRow]
    public var affectedRows: Int

    init(_ result: OpaquePointer) {
        let n = Int(PQntuples(result)), m = Int(PQnfields(result))
        columns = (0..<m).map { String(cString: PQfname(result, Int32($0))) }
        var rows: [PostgresRow] = []
        rows.reserveCapacity(n)
        for r in 0..<n {
            rows.append(PostgresRow(values: (0..<m).map { c in
                PQgetisnull(result, Int32(r), Int32(c)) == 1 ? nil : String(cString: PQgetvalue(result, Int32(r), Int32(c)))
            }))
        }
        self.rows = rows
        let tuples = String(cString: PQcmdTuples(result))
        affectedRows = Int(tuples) ?? 0
    }

    /// The only row of a result that must have exactly one (`what` names it in the error).
    public func single(_ what: @autoclosure () -> String) throws(LedgerStoreError) -> PostgresRow {
        guard rows.count == 1 else { throw LedgerStoreError(.database, "expected one row for \(what()), got \(rows.count)") }
        return rows[0]
    }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var s = self
        while let last = s.last, last.isWhitespace { s.removeLast() }
        return s
    }
}
