public import Foundation
public import LedgerStore

/// A private PostgreSQL cluster under a directory of ours (`.ledger/postgres` by default), reached on a
/// unix socket there, and on 127.0.0.1 only if asked. Used when no database URL is configured, and by tests.
///
/// Nobody else on the machine can reach it: the socket directory is mode 0700 (socket 0700 too), unix
/// connections use `peer` authentication mapped to the cluster's owner, root and `postgres`, and TCP
/// connections need the superuser's generated password (SCRAM), kept in `passfile` (mode 0600).
public struct EmbeddedPostgres: Sendable {
    public let directory: URL
    public let port: Int
    public let listenOnLoopback: Bool
    public let databaseName: String

    public init(directory: String, port: Int = 5433, listenOnLoopback: Bool = false, databaseName: String = "evidence_ledger") {
        self.directory = URL(fileURLWithPath: directory, isDirectory: true).standardizedFileURL.appendingPathComponent("postgres")
        self.port = port
        self.listenOnLoopback = listenOnLoopback
        self.databaseName = databaseName
    }

    var dataDirectory: URL { directory.appendingPathComponent("data") }
    var socketDirectory: URL { directory.appendingPathComponent("run") }
    var logFile: URL { directory.appendingPathComponent("server.log") }
    /// A libpq password file (`*:*:*:postgres:<password>`) for TCP connections.
    public var passwordFile: URL { directory.appendingPathComponent("passfile") }

    /// The connection string for `database` (default: the ledger's database).
    public func conninfo(database: String? = nil) -> String {
        "host=\(socketDirectory.path) port=\(port) dbname=\(database ?? databaseName) user=postgres"
    }

    /// Starts the cluster unless it is already running (initialising it the first time) and creates the
    /// database. Returns whether this call started the server.
    @discardableResult
    public func start() throws(LedgerStoreError) -> Bool {
        let fm = FileManager.default
        let socketPath = socketDirectory.appendingPathComponent(".s.PGSQL.\(port)").path
        guard socketPath.utf8.count < 100 else {
            throw LedgerStoreError(.embedded, "the socket path \(socketPath) is too long for a unix socket; use a shorter data directory")
        }
        let bin = try Self.binaries()
        do {
            try fm.createDirectory(at: socketDirectory, withIntermediateDirectories: true)
        } catch {
            throw LedgerStoreError(.embedded, "cannot create \(socketDirectory.path): \(error.localizedDescription)")
        }
        if Self.isRoot { try run(["chown", "-R", "postgres:postgres", directory.path], asPostgres: false) }
        chmod(socketDirectory.path, 0o700)
        if !fm.fileExists(atPath: dataDirectory.appendingPathComponent("PG_VERSION").path) {
            try run([bin.appendingPathComponent("initdb").path, "-D", dataDirectory.path, "-U", "postgres", "--auth-local=peer",
                     "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "-N"])
        }
        // Written on every start, so a cluster made by an older version (with `trust`) is closed too.
        try writeAuthentication()
        var startedByUs = false
        if !isRunning(bin) {
            let listen = listenOnLoopback ? "127.0.0.1" : "''"
            try run([bin.appendingPathComponent("pg_ctl").path, "start", "-D", dataDirectory.path, "-l", logFile.path, "-w", "-t", "60",
                     "-o", "-k \(socketDirectory.path) -p \(port) -c listen_addresses=\(listen) -c max_connections=200 -c unix_socket_permissions=0700"])
            startedByUs = true
        } else {
            try run([bin.appendingPathComponent("pg_ctl").path, "reload", "-D", dataDirectory.path])
        }
        let admin = try PostgresConnection(conninfo: conninfo(database: "postgres"), statementTimeoutMilliseconds: 10_000, role: nil)
        defer { admin.close() }
        if !fm.fileExists(atPath: passwordFile.path) {
            // A password only TCP connections need (unix ones use peer), kept where only we can read it.
            var generator = SystemRandomNumberGenerator()
            let password = (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
            // DDL takes no bind parameters: the password (48 hex digits we generated) is a quoted constant.
            try admin.execute("ALTER ROLE postgres PASSWORD \(literal: password)")
            guard fm.createFile(atPath: passwordFile.path, contents: Data("*:*:*:postgres:\(password)\n".utf8), attributes: [.posixPermissions: 0o600])
            else { throw LedgerStoreError(.embedded, "cannot write \(passwordFile.path)") }
        }
        if try admin.query("SELECT 1 FROM pg_database WHERE datname = \(databaseName)").rows.isEmpty {
            try admin.execute("CREATE DATABASE \(identifier: databaseName)")
        }
        return startedByUs
    }

    /// `pg_hba.conf`: unix sockets by peer, mapped to the cluster's owner, root and `postgres`; TCP on
    /// loopback by SCRAM password; nothing else.
    func writeAuthentication() throws(LedgerStoreError) {
        let owner = String(cString: getpwuid(getuid())?.pointee.pw_name ?? strdup("postgres"))
        let hba = """
            # Written by evidence-ledger on every start: peer on the socket (mapped below), SCRAM on loopback TCP.
            local all all peer map=ledger
            host all all 127.0.0.1/32 scram-sha-256
            host all all ::1/128 scram-sha-256

            """
        let ident = Set(["postgres", "root", owner]).sorted().map { "ledger \($0) postgres" }.joined(separator: "\n") + "\n"
        for (name, text) in [("pg_hba.conf", hba), ("pg_ident.conf", ident)] {
            let path = dataDirectory.appendingPathComponent(name).path
            guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw LedgerStoreError(.embedded, "cannot write \(path)")
            }
            if Self.isRoot { try run(["chown", "postgres:postgres", path], asPostgres: false) }
        }
    }

    /// Stops the cluster if it is running: `fast` by default; `immediate` is a crash (recovery on the next start).
    public func stop(immediately: Bool = false) throws(LedgerStoreError) {
        let bin = try Self.binaries()
        guard isRunning(bin) else { return }
        try run([bin.appendingPathComponent("pg_ctl").path, "stop", "-D", dataDirectory.path, "-m", immediately ? "immediate" : "fast", "-w", "-t", "60"])
    }

    /// True when a server is running on the data directory.
    public func isRunning() -> Bool {
        guard let bin = try? Self.binaries() else { return false }
        return isRunning(bin)
    }

    private func isRunning(_ bin: URL) -> Bool {
        (try? run([bin.appendingPathComponent("pg_ctl").path, "status", "-D", dataDirectory.path])) != nil
    }

    static var isRoot: Bool { getuid() == 0 }

    /// The PostgreSQL server binaries: `LEDGER_POSTGRES_BIN`, else the newest `/usr/lib/postgresql/*/bin`, else PATH.
    static func binaries() throws(LedgerStoreError) -> URL {
        let fm = FileManager.default
        if let dir = ProcessInfo.processInfo.environment["LEDGER_POSTGRES_BIN"] { return URL(fileURLWithPath: dir) }
        if let versions = try? fm.contentsOfDirectory(atPath: "/usr/lib/postgresql") {
            for v in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) })
            where fm.isExecutableFile(atPath: "/usr/lib/postgresql/\(v)/bin/initdb") {
                return URL(fileURLWithPath: "/usr/lib/postgresql/\(v)/bin")
            }
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        where fm.isExecutableFile(atPath: "\(dir)/initdb") && fm.isExecutableFile(atPath: "\(dir)/pg_ctl") {
            return URL(fileURLWithPath: String(dir))
        }
        throw LedgerStoreError(.embedded, "PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql or set LEDGER_POSTGRES_BIN")
    }

    /// Runs a command (as the postgres user when we are root, since initdb refuses root); throws with its output on failure.
    @discardableResult
    func run(_ arguments: [String], asPostgres: Bool = true) throws(LedgerStoreError) -> String {
        let argv = asPostgres && Self.isRoot
            ? ["su", "postgres", "-s", "/bin/sh", "-c", arguments.map(Self.shellQuote).joined(separator: " ")]
            : arguments
        // Output goes to a file, not a pipe: the postmaster that `pg_ctl start` leaves running would
        // inherit a pipe and hold it open forever.
        let (code, output) = try ChildProcess.run(argv)
        guard code == 0 else {
            throw LedgerStoreError(
                .embedded, "\((arguments[0] as NSString).lastPathComponent) \(arguments.dropFirst().first ?? "") failed (exit \(code.map(String.init) ?? "by signal"))",
                detail: String(output.reversed().drop(while: \.isWhitespace).reversed()))
        }
        return output
    }

    static func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
