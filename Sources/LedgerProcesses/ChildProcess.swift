#if canImport(Glibc)
    public import Glibc
#endif
public import LedgerStore

/// A child process started with `posix_spawn`, reaped with `waitpid`. (Foundation's `Process` does not
/// reliably reap children when the caller blocks inside async code.)
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private var status: Int32?

    /// Starts `arguments[0]` (looked up on PATH) with stdin from /dev/null and stdout/stderr to files
    /// (nil discards).
    public init(_ arguments: [String], stdout: String? = nil, stderr: String? = nil) throws(LedgerStoreError) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if let stderr, stderr == stdout {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ)
        guard rc == 0 else {
            throw LedgerStoreError(.embedded, "cannot run \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
    }

    /// Waits for the child and returns its raw wait status.
    @discardableResult
    public func wait() -> Int32 {
        if let status { return status }
        var s: Int32 = 0
        while waitpid(pid, &s, 0) < 0 && errno == EINTR {}
        status = s
        return s
    }

    /// True while the child has not exited (reaps it if it has).
    public var isRunning: Bool {
        if status != nil { return false }
        var s: Int32 = 0
        let r = waitpid(pid, &s, WNOHANG)
        if r == pid { status = s }
        return r == 0
    }

    /// The exit code, when the child exited normally.
    public var exitCode: Int32? {
        let s = wait()
        return s & 0x7F == 0 ? (s >> 8) & 0xFF : nil
    }

    /// The signal that ended the child, if one did.
    public var terminatingSignal: Int32? {
        let s = wait()
        let sig = s & 0x7F
        return sig != 0 && sig != 0x7F ? sig : nil
    }

    /// Sends `signal` to the child.
    public func send(_ signal: Int32) { kill(pid, signal) }

    /// Runs a command to completion and returns its exit code and combined output.
    public static func run(_ arguments: [String]) throws(LedgerStoreError) -> (exitCode: Int32?, output: String) {
        var template = Array("/tmp/evidence-ledger-cmd-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw LedgerStoreError(.embedded, "cannot create a temporary file") }
        close(fd)
        let path = String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        let child = try ChildProcess(arguments, stdout: path, stderr: path)
        let code = child.exitCode
        return (code, readFile(path))
    }

    static func readFile(_ path: String) -> String {
        guard let f = fopen(path, "r") else { return "" }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
