public import CERKit
import Foundation
#if canImport(Glibc)
    import Glibc
#endif
// FoundationNetworking (the timestamp client) brings CoreFoundation's view of `struct stat` into this
// module; release builds then resolve `stat` through it and want the module imported here.
#if canImport(CoreFoundation)
    import CoreFoundation
#endif

/// Private key files: base64 of a 32-byte Ed25519 seed, mode 0600, owned by the user running us, in a
/// directory nobody else may write. Read without following symbolic links; created with `O_EXCL` and
/// made durable (the file, then its directory, fsynced) before the key is used.
public enum KeyFile {
    /// Reads the key at `path`, or nil when there is no file. Refuses a symbolic link, a file another user
    /// owns or others may read, a directory others may write, and anything but a base64 32-byte seed.
    public static func read(_ path: String) throws(LedgerServerError) -> Ed25519SigningKey? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            if errno == ELOOP { throw LedgerServerError(.forbidden, "\(path) is a symbolic link; a key file must be a regular file") }
            throw LedgerServerError(.forbidden, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw LedgerServerError(.forbidden, "\(path) is not a regular file")
        }
        if info.st_uid != geteuid() {
            throw LedgerServerError(.forbidden, "\(path) is owned by user \(info.st_uid), not by the user running the server (\(geteuid()))")
        }
        if info.st_mode & 0o077 != 0 {
            throw LedgerServerError(
                .forbidden, "\(path) can be read by other users (mode \(String(info.st_mode & 0o777, radix: 8))); run chmod 600 on it")
        }
        try checkDirectory(of: path)
        var bytes = [UInt8](repeating: 0, count: 256)
        let count = bytes.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
        guard count > 0, count < 256,
            let text = String(validating: bytes.prefix(count), as: UTF8.self),
            let seed = Base64.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            let key = Ed25519SigningKey(seed: seed)
        else { throw LedgerServerError(.badRequest, "\(path) does not hold a base64 32-byte Ed25519 seed") }
        return key
    }

    /// Creates `path` with a fresh random seed; refuses to overwrite anything (a link included).
    public static func create(_ path: String) throws(LedgerServerError) -> Ed25519SigningKey {
        let seed = randomSeed()
        try createText(path, contents: Base64.encode(seed) + "\n")
        return Ed25519SigningKey(seed: seed)!
    }

    /// 32 bytes from the system's random source.
    public static func randomSeed() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<Ed25519.seedLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// Creates `path` (mode 0600, durably) holding `contents`; refuses to overwrite anything (a link included).
    public static func createText(_ path: String, contents: String) throws(LedgerServerError) {
        let text = Array(contents.utf8)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let reason = errno == EEXIST ? "a file of that name already exists" : String(cString: strerror(errno))
            throw LedgerServerError(.conflict, "cannot create \(path): \(reason)")
        }
        let written = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == text.count, synced, syncDirectory(of: path) else {
            unlink(path)
            throw LedgerServerError(.internalError, "cannot write \(path) durably")
        }
    }

    /// Overwrites and removes the key at `path` (not following links). True when there was one.
    @discardableResult
    public static func destroy(_ path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        var info = stat()
        if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
            let zeros = [UInt8](repeating: 0, count: Int(info.st_size))
            _ = zeros.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            fsync(fd)
        }
        close(fd)
        let removed = unlink(path) == 0
        _ = syncDirectory(of: path)
        return removed
    }

    /// Refuses a directory that is a link, that another user owns, or that others may write (they could
    /// replace a key file).
    public static func checkDirectory(of path: String) throws(LedgerServerError) {
        let directory = (path as NSString).deletingLastPathComponent
        var info = stat()
        guard lstat(directory.isEmpty ? "." : directory, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFLNK { throw LedgerServerError(.forbidden, "the key directory \(directory) is a symbolic link") }
        if info.st_uid != geteuid() {
            throw LedgerServerError(.forbidden, "the key directory \(directory) is owned by user \(info.st_uid), not by the user running the server")
        }
        if info.st_mode & 0o022 != 0 {
            throw LedgerServerError(
                .forbidden, "the key directory \(directory) can be written by other users (mode \(String(info.st_mode & 0o777, radix: 8))); run chmod 700 on it")
        }
    }

    /// fsyncs the directory holding `path`, so a created or removed name survives a crash.
    static func syncDirectory(of path: String) -> Bool {
        let directory = (path as NSString).deletingLastPathComponent
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return fsync(fd) == 0
    }

    /// Writes `bytes` to `path` atomically and durably (a temporary file, fsync, rename, fsync of the directory).
    public static func replace(_ path: String, with bytes: [UInt8], mode: UInt32 = 0o600) throws(LedgerServerError) {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw LedgerServerError(.internalError, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary, path) == 0, syncDirectory(of: path) else {
            unlink(temporary)
            throw LedgerServerError(.internalError, "cannot write \(path) durably")
        }
    }
}
