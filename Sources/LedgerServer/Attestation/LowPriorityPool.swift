import Foundation
import NIOPosix

/// Threads for work done for anonymous callers (public verification), run at the lowest scheduling
/// priority (nice 19): they use the CPU only while tenants' requests, the sequencer and PostgreSQL leave it
/// idle, so a flood of anonymous work cannot slow a tenant down, however long it lasts.
final class LowPriorityPool: Sendable {
    private let threads: NIOThreadPool
    /// Charged with the CPU time each piece of work used (nil: no budget).
    let budget: WorkBudget?

    init(threads count: Int, budget: WorkBudget? = nil) {
        threads = NIOThreadPool(numberOfThreads: max(1, count))
        threads.start()
        self.budget = budget
    }

    /// Runs `body` on one of the low-priority threads and charges its CPU time to the budget.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let budget = self.budget
        return try await threads.runIfActive {
            Self.lowerPriority()
            let start = Self.threadCPUTime()
            defer { budget?.charge(Self.threadCPUTime() - start) }
            return try body()
        }
    }

    /// The calling thread's CPU time (not wall time: a preempted low-priority thread is not charged for waiting).
    static func threadCPUTime() -> Duration {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return .seconds(ts.tv_sec) + .nanoseconds(ts.tv_nsec)
    }

    /// Sets the calling thread's nice value to 19. On Linux the nice value is a per-thread attribute and
    /// `who = 0` names the calling thread, so the rest of the process keeps its priority.
    static func lowerPriority() {
        #if os(Linux)
        if getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) < 19 {
            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
        }
        #endif
    }

    func shutdown() async { try? await threads.shutdownGracefully() }
}
