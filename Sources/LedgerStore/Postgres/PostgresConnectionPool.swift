import NIOPosix
import Synchronization

/// How to reach PostgreSQL and how many connections to keep.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection string or `postgresql://` URL.
    public var conninfo: String
    /// Connections at most (each also gets a thread for its blocking calls).
    public var maxConnections: Int
    /// Statement timeout in milliseconds (0 disables).
    public var statementTimeoutMilliseconds: Int
    /// Role to `SET ROLE` to after connecting (the application role); nil keeps the login role.
    public var role: String?

    public init(conninfo: String, maxConnections: Int = 8, statementTimeoutMilliseconds: Int = 30_000, role: String? = "ledger_app") {
        self.conninfo = conninfo
        self.maxConnections = maxConnections
        self.statementTimeoutMilliseconds = statementTimeoutMilliseconds
        self.role = role
    }
}

/// A pool of libpq connections whose blocking calls run on an `NIOThreadPool`, never on the
/// cooperative executor. Broken connections (for example after a server restart) are discarded and
/// replaced on the next use.
public final class PostgresConnectionPool: Sendable {
    public let configuration: PostgresConfiguration
    private let threadPool: NIOThreadPool

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextWaiter: UInt64 = 0
        var isShutDown = false
    }
    private let state = Mutex(State())

    public init(configuration: PostgresConfiguration) {
        self.configuration = configuration
        threadPool = NIOThreadPool(numberOfThreads: max(1, configuration.maxConnections))
        threadPool.start()
    }

    /// Connections currently open and idle (for metrics).
    public var usage: (open: Int, idle: Int) { state.withLock { ($0.open, $0.idle.count) } }

    /// Requests waiting for a connection now.
    public var waiting: Int { state.withLock { $0.waiters.count } }

    /// Runs blocking `body` with a connection on the pool's threads.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let value = try await threadPool.runIfActive { try body(connection) }
            release(connection)
            return value
        } catch {
            release(connection)
            throw error
        }
    }

    /// Runs blocking `work` on one of the pool's threads without waiting for it (the sequencer's writer).
    /// When the pool is shut down, `inactive` runs instead.
    func submitBlocking(_ work: @escaping @Sendable () -> Void, inactive: @escaping @Sendable () -> Void) {
        threadPool.submit { state in
            if case .active = state { work() } else { inactive() }
        }
    }

    /// A new connection outside the pool (the sequencer's dedicated writer connection). Blocking.
    func makeDedicatedConnection() throws(LedgerStoreError) -> PostgresConnection {
        try PostgresConnection(
            conninfo: configuration.conninfo, statementTimeoutMilliseconds: configuration.statementTimeoutMilliseconds,
            role: configuration.role)
    }

    /// Runs blocking `body` inside a transaction (COMMIT on return, ROLLBACK on throw).
    public func withTransaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withConnection { connection in try connection.withTransaction { try body(connection) } }
    }

    private func acquire() async throws -> PostgresConnection {
        while true {
            enum Step { case use(PostgresConnection), create, wait, shutDown }
            let step: Step = state.withLock { s in
                if s.isShutDown { return .shutDown }
                if let c = s.idle.popLast() { return .use(c) }
                if s.open < configuration.maxConnections {
                    s.open += 1
                    return .create
                }
                return .wait
            }
            switch step {
            case .use(let c): return c
            case .shutDown: throw LedgerStoreError(.shutdown, "the database pool is shut down")
            case .create:
                do {
                    let configuration = self.configuration
                    return try await threadPool.runIfActive {
                        try PostgresConnection(
                            conninfo: configuration.conninfo, statementTimeoutMilliseconds: configuration.statementTimeoutMilliseconds,
                            role: configuration.role)
                    }
                } catch {
                    let waiter = state.withLock { s -> CheckedContinuation<Void, any Error>? in
                        s.open -= 1
                        return s.waiters.isEmpty ? nil : s.waiters.removeFirst().continuation
                    }
                    waiter?.resume()
                    throw error
                }
            case .wait:
                // A cancelled request (its deadline passed, or its client left) stops waiting at once.
                try Task.checkCancellation()
                let id = state.withLock { s -> UInt64 in
                    s.nextWaiter += 1
                    return s.nextWaiter
                }
                try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                        let resumeNow = state.withLock { s -> Bool in
                            if s.isShutDown || !s.idle.isEmpty || s.open < configuration.maxConnections || Task.isCancelled { return true }
                            s.waiters.append((id, c))
                            return false
                        }
                        if resumeNow { c.resume() }
                    }
                } onCancel: {
                    let waiter = state.withLock { s -> CheckedContinuation<Void, any Error>? in
                        guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                        return s.waiters.remove(at: i).continuation
                    }
                    waiter?.resume(throwing: CancellationError())
                }
                if Task.isCancelled {
                    wakeNextWaiter()  // a wake-up this cancelled waiter took belongs to the next one
                    throw CancellationError()
                }
            }
        }
    }

    private func wakeNextWaiter() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            guard !s.waiters.isEmpty, s.isShutDown || !s.idle.isEmpty || s.open < configuration.maxConnections else { return nil }
            return s.waiters.removeFirst().continuation
        }
        waiter?.resume()
    }

    private func release(_ connection: PostgresConnection) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            if connection.isBroken || s.isShutDown {
                s.open -= 1
                connection.close()
            } else {
                s.idle.append(connection)
            }
            return s.waiters.isEmpty ? nil : s.waiters.removeFirst().continuation
        }
        waiter?.resume()
    }

    /// Closes idle connections and stops the threads; later calls fail with `STORE_SHUT_DOWN`.
    public func shutdown() async {
        let (idle, waiters) = state.withLock { s in
            s.isShutDown = true
            let out = (s.idle, s.waiters)
            s.open -= s.idle.count
            s.idle = []
            s.waiters = []
            return out
        }
        for c in idle { c.close() }
        for w in waiters { w.continuation.resume() }
        try? await threadPool.shutdownGracefully()
    }
}
