#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reading inputs and writing outputs for the CLI (the only place the CLI touches files).
enum FileOutput {
    /// Writes a line to standard error.
    static func standardError(_ text: String) {
        writeAll(2, Array((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    /// Writes text to standard output.
    static func standardOutput(_ text: String) {
        writeAll(1, Array(text.utf8))
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }

    /// Why an input could not be read.
    struct ReadError: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads a whole file (or standard input for "-"), refusing more than `limit` bytes.
    static func read(_ path: String, limit: Int) throws(ReadError) -> [UInt8] {
        let fd: Int32
        if path == "-" {
            fd = 0
        } else {
            var info = stat()
            guard stat(path, &info) == 0 else { throw ReadError(description: String(cString: strerror(errno))) }
            if (info.st_mode & S_IFMT) == S_IFDIR { throw ReadError(description: "it is a directory, not a file") }
            if info.st_size > limit {
                throw ReadError(description: "it is \(info.st_size) bytes, larger than the limit of \(limit) bytes")
            }
            fd = open(path, O_RDONLY)
            guard fd >= 0 else { throw ReadError(description: String(cString: strerror(errno))) }
        }
        defer { if fd != 0 { close(fd) } }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ReadError(description: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit { throw ReadError(description: "it is larger than the limit of \(limit) bytes") }
        }
        return out
    }
}
