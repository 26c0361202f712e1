import Foundation
public import Testing

/// Shared by the test targets.
///
/// Runs each test of a suite on threads of its own instead of the cooperative pool (as wide as the
/// machine has cores: two here). These tests block: they wait for child processes, sockets and sleeps.
/// On the cooperative pool a few of them at once starve every asynchronous test of the run (a load loop
/// that needed 20 round trips made none in 60 s), so their blocking stays on their own threads.
public struct BlockingIOTrait: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }
    public init() {}

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard testCase != nil else { return try await function() }
        try await withTaskExecutorPreference(ThreadPerJobExecutor.shared) { try await function() }
    }
}

extension Trait where Self == BlockingIOTrait {
    /// The suite's tests block on I/O: run them on threads of their own.
    public static var blockingIO: Self { Self() }
}

/// A task executor that runs every job on a new thread (tests only: a test is one long job, or a few).
public final class ThreadPerJobExecutor: TaskExecutor, @unchecked Sendable {
    public static let shared = ThreadPerJobExecutor()

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        let thread = Thread { unowned.runSynchronously(on: executor) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}
