public import CERKit
import Foundation
public import LedgerCore
#if canImport(Glibc)
    import Glibc
#endif

/// The latest checkpoint this server signed, kept in its state directory, outside the database: the
/// log's growth is remembered somewhere an operator with database access cannot reach. A server refuses
/// to start, and to sign, on a database whose tree is not a consistent extension of it (the tail deleted
/// and the head rolled back, or another database). Only ever moves forward; processes sharing the
/// directory take a lock around the read-compare-replace.
public struct CheckpointMemory: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public var path: String { (directory as NSString).appendingPathComponent("latest-checkpoint") }

    /// The remembered note and its body, or nil when nothing was signed from here yet.
    public func read() throws(LedgerServerError) -> (note: [UInt8], checkpoint: Checkpoint)? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let note = [UInt8](data)
        do {
            return (note, try Checkpoint(parsing: SignedNote(parsing: note).text))
        } catch {
            throw LedgerServerError(.logNotConsistent, "\(path) does not hold a signed checkpoint: \(error); it is this server's memory of the log, do not edit it")
        }
    }

    /// Remembers `note` (a checkpoint of `size` entries) unless a larger one is remembered already.
    public func remember(_ note: [UInt8], size: UInt64) throws(LedgerServerError) {
        try ensureDirectory()
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LedgerServerError(.internalError, "cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw LedgerServerError(.internalError, "cannot lock \(lockPath)") }
        defer { flock(fd, LOCK_UN) }
        if let current = try read(), current.checkpoint.size >= size { return }
        try KeyFile.replace(path, with: note)
    }

    private func ensureDirectory() throws(LedgerServerError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw LedgerServerError(.internalError, "cannot create the state directory \(directory): \(error.localizedDescription)")
        }
    }
}
