import CERKit
import Foundation
import LedgerProcesses
import LedgerStore
import LedgerTesting
import Testing

/// A real `evidence-ledger serve` process on a fresh database in the cluster `./ops/test` starts,
/// with a signing key, one account and its API key. Tests talk to it over sockets only.
final class TestNode: @unchecked Sendable {
    struct Missing: Error, CustomStringConvertible {
        var description: String { "LEDGER_TEST_DATABASE_URL is not set: run the tests with ./ops/test, which starts a throwaway PostgreSQL" }
    }

    static var binary: String { TestLocations.binary }
    static var sharedRoot: URL { TestLocations.sharedRoot }

    static func fixture(_ name: String) throws -> [UInt8] { try TestLocations.sharedBytes("fixtures/\(name)") }

    let conninfo: String
    let directory: URL
    let keysDirectory: String
    let adminToken = "test-admin-token-0123456789"
    private(set) var port = 0
    /// The API key of account `alpha`.
    private(set) var apiKey = ""
    private var process: ChildProcess?

    /// Creates the database, a signing key, account `alpha` (with `monthlyLimit`) and its API key, and
    /// starts the server.
    /// `cluster` is an admin connection string of another cluster than the suite's (a fault test's own).
    init(monthlyLimit: Int = 1_000_000, serveArguments: [String] = [], cluster: String? = nil) throws {
        conninfo = try TestDatabase.create(migrate: false, prefix: "s_", cluster: cluster)
        let name = conninfo.split(separator: "=").last.map(String.init) ?? UUID().uuidString
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-node-\(name)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        keysDirectory = directory.appendingPathComponent("keys").path
        try Data(adminToken.utf8).write(to: directory.appendingPathComponent("admin-token"))
        try cliExpectingSuccess(["keys", "generate"] + keyArguments)
        try cliExpectingSuccess(["accounts", "create", "alpha", "--monthly-limit", "\(monthlyLimit)", "--database-url", conninfo])
        apiKey = try newAPIKey(account: "alpha")
        try start(serveArguments)
    }

    var keyArguments: [String] { ["--database-url", conninfo, "--keys-dir", keysDirectory] }

    /// Where the servers remember the latest checkpoint they signed.
    var stateDirectory: String { directory.appendingPathComponent("state").path }

    func start(_ extra: [String] = []) throws {
        (process, port) = try launch(extra)
    }

    /// Another server process on the same database and keys (stopped when the returned process is dropped
    /// or sent SIGTERM). Returns it and its port.
    func launch(_ extra: [String] = []) throws -> (ChildProcess, Int) {
        let out = directory.appendingPathComponent("serve-\(UUID().uuidString.prefix(8)).out").path
        let err = directory.appendingPathComponent("serve.err").path
        let process = try ChildProcess(
            [Self.binary, "serve", "--port", "0", "--key-refresh", "1", "--log-level", "warning",
             "--admin-token-file", directory.appendingPathComponent("admin-token").path, "--state-dir", stateDirectory] + keyArguments + extra,
            stdout: out, stderr: err)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on http://127.0.0.1:") {
                let digits = text[range.upperBound...].prefix(while: \.isNumber)
                if let p = Int(digits) { return (process, p) }
            }
            if !process.isRunning {
                throw HTTPFailure(description: "the server exited: \((try? String(contentsOfFile: err, encoding: .utf8)) ?? "")")
            }
            usleep(50_000)
        }
        throw HTTPFailure(description: "the server did not start within 60 s")
    }

    /// Sends SIGTERM and waits; returns the exit status.
    @discardableResult
    func stop() -> Int32? {
        guard let p = process else { return nil }
        p.send(SIGTERM)
        process = nil
        return p.exitCode
    }

    deinit { stop() }

    /// Runs the CLI; returns exit code, stdout and stderr.
    @discardableResult
    func cli(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let out = directory.appendingPathComponent("cli-\(UUID().uuidString).out").path
        let err = out + ".err"
        let p = try ChildProcess([Self.binary] + arguments, stdout: out, stderr: err)
        let status = p.exitCode ?? -1
        let o = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        let e = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: out)
        try? FileManager.default.removeItem(atPath: err)
        return (status, o, e)
    }

    func cliExpectingSuccess(_ arguments: [String]) throws {
        let r = try cli(arguments)
        guard r.status == 0 else { throw HTTPFailure(description: "\(arguments.prefix(2).joined(separator: " ")) failed: \(r.stderr)") }
    }

    /// Creates an API key for `account` with the CLI and returns it.
    func newAPIKey(account: String) throws -> String {
        let r = try cli(["api-keys", "create", account, "--database-url", conninfo])
        guard r.status == 0 else { throw HTTPFailure(description: "api-keys create failed: \(r.stderr)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func createAccount(_ id: String, monthlyLimit: Int = 1_000_000) throws -> String {
        try cliExpectingSuccess(["accounts", "create", id, "--monthly-limit", "\(monthlyLimit)", "--database-url", conninfo])
        return try newAPIKey(account: id)
    }

    /// Runs a query as the login role and returns the first column of the first row.
    func scalar(_ sql: String) throws -> String? {
        let c = try PostgresConnection(conninfo: conninfo, statementTimeoutMilliseconds: 30_000, role: nil)
        defer { c.close() }
        return try c.executeScript(sql).rows.first?[0]
    }

    func ledgerSize() throws -> Int { Int(try scalar("SELECT size FROM ledger_head WHERE id = 1") ?? "-1") ?? -1 }

    // MARK: HTTP

    func get(_ path: String, key: String? = nil, headers: [(String, String)] = []) throws -> HTTPResult {
        try RawHTTP.get(port: port, path, key: key, headers: headers)
    }

    func post(_ path: String, _ body: [UInt8], key: String? = nil, headers: [(String, String)] = []) throws -> HTTPResult {
        try RawHTTP.post(port: port, path, json: body, key: key, headers: headers)
    }

    func post(_ path: String, json: JSONValue, key: String? = nil) throws -> HTTPResult {
        try post(path, try CanonicalJSON.encode(json, profile: .nexartV1), key: key)
    }

    /// The published key manifest.
    func manifest() throws -> NodeKeyManifest {
        let r = try get("/.well-known/nexart-node.json")
        guard r.status == 200, let doc = r.json else { throw HTTPFailure(description: "manifest: \(r.status) \(r.text)") }
        return try NodeKeyManifest(doc)
    }
}

/// A sealed AI CER built from raw fields with a distinct execution id (an independent bundle each call).
func freshBundle(_ tag: String, output: String = "an answer") throws -> [UInt8] {
    var p = CertifyParameters(
        executionId: "exec-\(tag)", timestamp: "2026-11-22T00:00:00.000Z", createdAt: "2026-11-22T00:00:01.000Z",
        provider: "openai", model: "gpt-test", input: .string(JSONString("question \(tag)")), output: .string(JSONString(output)))
    p.parameters = ["temperature": 0, "maxTokens": 64, "topP": 1, "seed": 7]
    return try CanonicalJSON.encode(.object(try CERBuilder.certifyDecision(p)), profile: .nexartV1)
}

/// A CER package made of a bundle and an attestation response, as a client would assemble it.
func package(cer: JSONValue, response: JSONValue) -> JSONValue {
    [
        "cer": cer, "receipt": response["receipt"] ?? .null, "signature": response["signature"] ?? .null,
        "attestation": response["attestation"] ?? .null, "verificationEnvelope": response["verificationEnvelope"] ?? .null,
        "verificationEnvelopeSignature": response["verificationEnvelopeSignature"] ?? .null,
    ]
}

/// Polls `body` every 125 ms until it returns a value (servers sign checkpoints, stamp and witness in the
/// background), failing after `seconds`.
func eventually<T>(_ what: String, seconds: Int = 20, _ body: () throws -> T?) throws -> T {
    for _ in 0..<(seconds * 8) {
        if let v = try body() { return v }
        usleep(125_000)
    }
    throw HTTPFailure(description: "timed out waiting for \(what)")
}
