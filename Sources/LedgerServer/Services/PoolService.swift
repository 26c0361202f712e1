import LedgerStore
import ServiceLifecycle

/// The database pool as a service of the group: it runs until graceful shutdown and then closes the
/// pool. First in the group, so it is shut down last, after every service that uses it.
struct PoolService: Service {
    let pool: PostgresConnectionPool

    func run() async throws {
        try? await gracefulShutdown()
        await pool.shutdown()
    }
}
