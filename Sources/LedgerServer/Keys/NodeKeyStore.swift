public import CERKit
import Foundation
public import LedgerCore

/// Private signing keys in files: one `<kid>.key` per key (base64 of the 32-byte Ed25519 seed), mode
/// 0600 in a 0700 directory (`KeyFile` checks both). Never in the database, never logged. The directory
/// also holds `trust`: the fingerprints this machine pins (`pinned <fingerprint>`, `root <fingerprint>`).
public struct NodeKeyStore: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public func path(kid: String) -> String { (directory as NSString).appendingPathComponent("\(kid).key") }

    /// The trust file's path.
    public var trustPath: String { (directory as NSString).appendingPathComponent("trust") }

    /// Creates a new key file for `kid` with a fresh random seed; refuses to overwrite one.
    public func generate(kid: String) throws(LedgerServerError) -> Ed25519SigningKey {
        if let problem = NodeKeyHistory.kidProblem(kid) { throw LedgerServerError(.badRequest, problem) }
        try ensureDirectory()
        try KeyFile.checkDirectory(of: path(kid: kid))
        return try KeyFile.create(path(kid: kid))
    }

    /// Loads `kid`'s private key, or nil when there is no file for it (see `KeyFile.read` for what is refused).
    public func load(kid: String) throws(LedgerServerError) -> Ed25519SigningKey? {
        if NodeKeyHistory.kidProblem(kid) != nil { return nil }
        return try KeyFile.read(path(kid: kid))
    }

    /// Destroys `kid`'s private key file (overwritten, then removed). True when there was one.
    @discardableResult
    public func destroy(kid: String) -> Bool {
        guard NodeKeyHistory.kidProblem(kid) == nil else { return false }
        return KeyFile.destroy(path(kid: kid))
    }

    /// Kids that have a key file.
    public func kids() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".key") }.map { String($0.dropLast(4)) }.filter { NodeKeyHistory.kidProblem($0) == nil }.sorted()
    }

    /// The anchors in the trust file (none when there is no file).
    public func trustAnchors() throws(LedgerServerError) -> TrustAnchors {
        guard let data = FileManager.default.contents(atPath: trustPath) else { return TrustAnchors() }
        do {
            return try TrustAnchors(file: String(decoding: data, as: UTF8.self))
        } catch {
            throw LedgerServerError(.badRequest, "\(trustPath): \(error.description)")
        }
    }

    /// Adds anchors to the trust file.
    public func trust(_ anchors: TrustAnchors) throws(LedgerServerError) {
        try ensureDirectory()
        let merged = try trustAnchors().union(anchors)
        try KeyFile.replace(trustPath, with: Array(("# Keys this machine trusts without the database (docs/operations.md, \"Trust\").\n" + merged.fileText).utf8), mode: 0o644)
    }

    /// Pins the key whose private key file is here for `kid` (for a ledger whose keys predate pinning):
    /// the fingerprint comes from the file, never from the database. Returns it.
    public func pin(kid: String) throws(LedgerServerError) -> String {
        guard let key = try load(kid: kid) else { throw LedgerServerError(.notFound, "there is no private key file for \(kid) in \(directory)") }
        let fingerprint = KeyFingerprint.of(key.publicKey)
        try trust(TrustAnchors(pinnedKeys: [fingerprint]))
        return fingerprint
    }

    /// Creates the directory (0700) when it is missing, and checks it.
    public func prepareDirectory() throws(LedgerServerError) {
        try ensureDirectory()
        try KeyFile.checkDirectory(of: (directory as NSString).appendingPathComponent("x"))
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
