import Foundation
import LedgerServer
import LedgerStore
import Logging
import Testing
import LedgerTesting

@Suite(.blockingIO) struct UsageRecorderTests {
    /// 9,000 distinct usage rows (72,000 parameters in one statement before) are written in bounded statements.
    @Test func aLargeFlushStaysUnderTheParameterLimit() async throws {
        let node = try TestNode()
        let pool = PostgresConnectionPool(configuration: PostgresConfiguration(conninfo: node.conninfo, maxConnections: 2))
        let store = AccountStore(pool: pool)
        let keyId = Int64(try #require(try node.scalar("SELECT min(id) FROM api_keys")))!
        let events = (0..<9000).map { i in
            UsageEvent(at: 1_764_000_000_000, accountId: "alpha", apiKeyId: keyId, endpoint: "/e\(i)", status: 200, durationMilliseconds: 1, error: nil)
        }
        try await store.record(events)
        #expect(try node.scalar("SELECT count(*) FROM usage_minutes WHERE endpoint LIKE '/e%'") == "9000")
        await pool.shutdown()
    }

    /// While the database is away the buffer holds at most its capacity; the rest is dropped and counted.
    @Test func theBufferIsBoundedAndCountsWhatItDrops() async throws {
        let pool = PostgresConnectionPool(configuration: PostgresConfiguration(conninfo: "host=/nonexistent port=1 dbname=x connect_timeout=1", maxConnections: 2))
        let recorder = UsageRecorder(store: AccountStore(pool: pool), interval: .seconds(60), logger: Logger(label: "test"), capacity: 10)
        for i in 0..<15 {
            recorder.record(UsageEvent(at: Int64(i), accountId: "a", apiKeyId: 1, endpoint: "/x", status: 200, durationMilliseconds: 1, error: nil))
        }
        #expect(recorder.dropped == 5)
        await recorder.flush()  // fails (no database): the 10 stay buffered, nothing more is lost
        #expect(recorder.dropped == 5)
        recorder.record(UsageEvent(at: 99, accountId: "a", apiKeyId: 1, endpoint: "/x", status: 200, durationMilliseconds: 1, error: nil))
        #expect(recorder.dropped == 6)
        await pool.shutdown()
    }
}
