public import CERKit
import Foundation
import LedgerCore

/// Private signing keys in files: one `<kid>.key` per key (base64 of the 32-byte Ed25519 seed), mode
/// 0600 in a 0700 directory. Never in the database, never logged.
public struct NodeKeyStore: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public func path(kid: String) -> String { (directory as NSString).appendingPathComponent("\(kid).key") }

    /// Creates a new key file for `kid` with a fresh random seed; refuses to overwrite one.
    public func generate(kid: String) throws(LedgerServerError) -> Ed25519SigningKey {
        if let problem = NodeKeyHistory.kidProblem(kid) { throw LedgerServerError(.badRequest, problem) }
        try ensureDirectory()
        var generator = SystemRandomNumberGenerator()
        let seed = (0..<Ed25519.seedLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let text = Array((Base64.encode(seed) + "\n").utf8)
        let fd = open(path(kid: kid), O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            let reason = errno == EEXIST ? "a key file for \(kid) already exists" : String(cString: strerror(errno))
            throw LedgerServerError(.conflict, "cannot create \(path(kid: kid)): \(reason)")
        }
        defer { close(fd) }
        let written = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == text.count, fsync(fd) == 0 else {
            unlink(path(kid: kid))
            throw LedgerServerError(.internalError, "cannot write \(path(kid: kid))")
        }
        return Ed25519SigningKey(seed: seed)!
    }

    /// Loads `kid`'s private key, or nil when there is no file for it. Refuses files others can read.
    public func load(kid: String) throws(LedgerServerError) -> Ed25519SigningKey? {
        if NodeKeyHistory.kidProblem(kid) != nil { return nil }
        var info = stat()
        guard stat(path(kid: kid), &info) == 0 else { return nil }
        if info.st_mode & 0o077 != 0 {
            throw LedgerServerError(
                .forbidden, "\(path(kid: kid)) can be read by other users (mode \(String(info.st_mode & 0o777, radix: 8))); run chmod 600 on it")
        }
        guard let data = FileManager.default.contents(atPath: path(kid: kid)),
            let text = String(data: data, encoding: .utf8),
            let seed = Base64.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            let key = Ed25519SigningKey(seed: seed)
        else { throw LedgerServerError(.badRequest, "\(path(kid: kid)) does not hold a base64 32-byte Ed25519 seed") }
        return key
    }

    /// Destroys `kid`'s private key file (overwritten, then removed). True when there was one.
    @discardableResult
    public func destroy(kid: String) -> Bool {
        guard NodeKeyHistory.kidProblem(kid) == nil else { return false }
        let p = path(kid: kid)
        let fd = open(p, O_WRONLY)
        guard fd >= 0 else { return false }
        var info = stat()
        if fstat(fd, &info) == 0 {
            let zeros = [UInt8](repeating: 0, count: Int(info.st_size))
            _ = zeros.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            fsync(fd)
        }
        close(fd)
        return unlink(p) == 0
    }

    /// Kids that have a key file.
    public func kids() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".key") }.map { String($0.dropLast(4)) }.filter { NodeKeyHistory.kidProblem($0) == nil }.sorted()
    }

    private func ensureDirectory() throws(LedgerServerError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw LedgerServerError(.badRequest, "\(directory) is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw LedgerServerError(.internalError, "cannot create the key directory \(directory): \(error.localizedDescription)")
        }
    }
}
