import CERKit
import LedgerCore
import Testing
import LedgerTesting
@testable import LedgerStore

/// Two optimistic batches in flight at once: the second is planned from what the first will leave, so
/// it must never commit when the first does not.
@Suite(.blockingIO) struct OverlappedBatchTests {
    @Test func aFollowerOfABatchThatRolledBackNeverCommits() async throws {
        let conninfo = try TestDatabase.create()
        let pool = TestDatabase.pool(conninfo)
        let log = PostgresEventLog(pool: pool)
        // A claim the writer below does not know about: its optimistic batch takes it to be unused.
        _ = try await log.append(AppendRequest(subject: "run:seed", type: "t", claim: Claim(scope: "s", key: "k", value: "first")))

        let writer = BatchWriter(pool: pool, maintainsTree: true)
        let warm = try writer.writeCarefully([AppendRequest(subject: "run:warm", type: "t")], groupSizes: [1], recordedAt: 1)
        #expect(warm.size == 2)
        let leader = try #require(try writer.send(
            [AppendRequest(subject: "run:a", type: "t", claim: Claim(scope: "s", key: "k", value: "second"))], groupSizes: [1], recordedAt: 2,
            follows: false))
        let follower = try #require(try writer.send([AppendRequest(subject: "run:b", type: "t")], groupSizes: [1], recordedAt: 3, follows: true))
        // The leader fails on the claim's unique key; the follower, which counted on the leader's entry,
        // fails on its guard instead of committing at the index the leader would have filled.
        #expect(try writer.receive(leader) == nil)
        #expect(try writer.receive(follower) == nil)
        #expect(try await log.size() == 2)
        // Written carefully now, each gets what the log really holds.
        let b = try writer.writeCarefully([AppendRequest(subject: "run:b", type: "t")], groupSizes: [1], recordedAt: 4)
        guard case .appended(let entry) = b.outcomes[0] else {
            Issue.record("\(b.outcomes[0])")
            return
        }
        #expect(entry.index == 2)
        let report = try await LedgerVerifier.verify(pool: pool)
        #expect(report.isIntact, "\(report.problems.prefix(3))")
        await pool.shutdown()
    }

    @Test func aFollowerOfABatchThatCommittedCommitsAfterIt() async throws {
        let conninfo = try TestDatabase.create()
        let pool = TestDatabase.pool(conninfo)
        let writer = BatchWriter(pool: pool, maintainsTree: true)
        _ = try writer.writeCarefully([AppendRequest(subject: "run:warm", type: "t")], groupSizes: [1], recordedAt: 1)
        let leader = try #require(try writer.send(
            [AppendRequest(subject: "run:a", type: "t"), AppendRequest(subject: "run:a", type: "t")], groupSizes: [1, 1], recordedAt: 2,
            follows: false))
        let follower = try #require(try writer.send([AppendRequest(subject: "run:a", type: "t")], groupSizes: [1], recordedAt: 3, follows: true))
        let first = try #require(try writer.receive(leader))
        let second = try #require(try writer.receive(follower))
        #expect(first.size == 3 && second.size == 4)
        let log = PostgresEventLog(pool: pool)
        let (entries, problems) = try await log.entries(subject: "run:a")
        #expect(entries.map(\.index) == [1, 2, 3])
        #expect(problems.isEmpty)
        let report = try await LedgerVerifier.verify(pool: pool)
        #expect(report.isIntact, "\(report.problems.prefix(3))")
        await pool.shutdown()
    }
}
