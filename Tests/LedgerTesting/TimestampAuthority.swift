public import Foundation

/// A real RFC 3161 timestamp authority for tests: `openssl ts -reply` with a throwaway root CA and a TSA
/// certificate issued by it (`ops/tsa/make-authority`). Variants make the certificates tests must refuse.
public final class TimestampAuthority: @unchecked Sendable {
    public enum Variant: Sendable {
        /// A TSA certificate valid now, with `extendedKeyUsage = critical, timeStamping`.
        case valid
        /// Valid only on 2020-01-01: every token made now has genTime after its validity.
        case expired
        /// `timeStamping` present but the extension not critical (RFC 3161 §2.3 requires critical).
        case nonCriticalUsage
    }

    public let directory: URL
    /// PEM of the root CA (the trust anchor to give verifiers).
    public let rootPEM: String
    public var rootPath: String { directory.appendingPathComponent("ca.crt").path }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public init(_ variant: Variant = .valid) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tsa-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // The same authority `ops/bench/timestamps` uses, made by the same script.
        let flags: [String]
        switch variant {
        case .valid: flags = []
        case .expired: flags = ["--expired"]
        case .nonCriticalUsage: flags = ["--non-critical-usage"]
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [TestLocations.repositoryRoot.appendingPathComponent("ops/tsa/make-authority").path, directory.path] + flags
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "ops/tsa/make-authority failed: \(String(decoding: message, as: UTF8.self))")
        }
        rootPEM = try String(contentsOf: directory.appendingPathComponent("ca.crt"), encoding: .utf8)
    }

    deinit {
        stopServing()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A TimeStampResp (DER) over the SHA-256 `digest`, made by `openssl ts -reply`.
    public func stamp(sha256 digest: [UInt8]) throws -> [UInt8] {
        let id = UUID().uuidString.prefix(8)
        let hex = digest.map { String(format: "%02x", $0) }.joined()
        try Self.openssl(["ts", "-query", "-digest", hex, "-sha256", "-cert", "-no_nonce", "-out", "q-\(id).tsq"], in: directory)
        try Self.openssl(["ts", "-reply", "-config", "ca.cnf", "-section", "tsa_config", "-queryfile", "q-\(id).tsq", "-out", "r-\(id).tsr"], in: directory)
        return Array(try Data(contentsOf: directory.appendingPathComponent("r-\(id).tsr")))
    }

    /// `openssl ts -verify` of a reply against this authority's root: the independent check.
    public func opensslVerifies(reply: [UInt8], sha256 digest: [UInt8]) throws -> Bool {
        let path = directory.appendingPathComponent("check-\(UUID().uuidString.prefix(8)).tsr")
        try Data(reply).write(to: path)
        let hex = digest.map { String(format: "%02x", $0) }.joined()
        return (try? Self.openssl(["ts", "-verify", "-in", path.path, "-digest", hex, "-CAfile", rootPath], in: directory)) != nil
    }

    /// The HTTP face of the authority (RFC 3161 §3.4: POST `application/timestamp-query`, reply
    /// `application/timestamp-reply`): `ops/tsa/loopback-tsa.py`, which runs `openssl ts -reply` per request.
    private var server: Process?
    public private(set) var url: String?

    /// Starts the HTTP server on a free loopback port (or `port`); returns its URL.
    @discardableResult
    public func serve(port: Int = 0) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [TestLocations.repositoryRoot.appendingPathComponent("ops/tsa/loopback-tsa.py").path, String(port)]
        process.currentDirectoryURL = directory
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while !line.contains(0x0A) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { throw Failure(description: "the TSA server did not start") }
            line.append(chunk)
        }
        guard let bound = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw Failure(description: "the TSA server did not print its port")
        }
        server = process
        url = "http://127.0.0.1:\(bound)/"
        return url!
    }

    /// Stops the HTTP server (the authority's files stay, so it can serve again on the same port).
    public func stopServing() {
        // SIGKILL: a child inherits the test process's signal mask, in which SIGTERM may be blocked.
        if let server, server.isRunning { kill(server.processIdentifier, SIGKILL) }
        server?.waitUntilExit()
        server = nil
    }

    @discardableResult
    public static func openssl(_ arguments: [String], in directory: URL) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(String(decoding: errors, as: UTF8.self))")
        }
        return String(decoding: output, as: UTF8.self)
    }
}
