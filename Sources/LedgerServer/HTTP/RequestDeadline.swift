import Synchronization

/// The race between a request's deadline and its commit. A request that has begun to commit (its append
/// is handed to the sequencer) is answered with the commit's result even when the deadline passes
/// meanwhile; a request whose deadline passed first never commits. So a 408 always means "nothing was
/// written", and an acknowledged append is never answered as a timeout.
final class RequestDeadline: Sendable {
    enum State { case running, committing, expired }
    private let state = Mutex(State.running)

    @TaskLocal static var current: RequestDeadline?

    /// Called before an append: false (and nothing may be written) when the deadline already passed.
    func beginCommit() -> Bool {
        state.withLock { s in
            if s == .expired { return false }
            s = .committing
            return true
        }
    }

    /// Called when the deadline passes: true when the request may be answered 408 now (it has not begun
    /// to commit); false when it must be left to finish.
    func expire() -> Bool {
        state.withLock { s in
            if s == .committing { return false }
            s = .expired
            return true
        }
    }

    /// Throws 408 when the current request's deadline already passed; otherwise marks it committing.
    static func beginCommit() throws {
        guard let deadline = current else { return }
        if !deadline.beginCommit() {
            throw LedgerServerError(.requestTimeout, "the request took too long and was abandoned before anything was written; retrying is safe")
        }
    }
}
