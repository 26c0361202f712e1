import CERKit
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal HTTP/1.1 client over a plain socket, so tests can send exactly the bytes they mean
/// (truncated bodies, forged headers, invalid UTF-8) to the real server.
struct HTTPResult: Sendable {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    var json: JSONValue? { try? JSONParser.parse(body) }
    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers[name.lowercased()] }
    /// The error body's `error` code, if the body is a JSON error.
    var errorCode: String? { json?["error"]?.stringValue }
}

struct HTTPFailure: Error, CustomStringConvertible {
    var description: String
}

enum RawHTTP {
    /// Sends a request and reads the whole response (the connection is closed after it).
    static func request(
        port: Int, _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil, timeout: Int = 30
    ) throws -> HTTPResult {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body, !headers.contains(where: { $0.0.lowercased() == "content-length" }) { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        return try send(port: port, Array(head.utf8) + (body ?? []), timeout: timeout)
    }

    /// A JSON POST with an optional bearer key.
    static func post(port: Int, _ path: String, json: [UInt8], key: String? = nil, headers: [(String, String)] = []) throws -> HTTPResult {
        var h = [("Content-Type", "application/json")] + headers
        if let key { h.append(("Authorization", "Bearer \(key)")) }
        return try request(port: port, "POST", path, headers: h, body: json)
    }

    static func get(port: Int, _ path: String, key: String? = nil, headers: [(String, String)] = []) throws -> HTTPResult {
        var h = headers
        if let key { h.append(("Authorization", "Bearer \(key)")) }
        return try request(port: port, "GET", path, headers: h)
    }

    /// Writes `bytes` as they are, optionally half-closes, and reads until the server closes.
    static func send(port: Int, _ bytes: [UInt8], shutdownWrite: Bool = false, timeout: Int = 30) throws -> HTTPResult {
        guard let fd = connectSocket(port: port) else { throw HTTPFailure(description: "cannot connect to 127.0.0.1:\(port)") }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the server may answer (413) and close before reading everything
            offset += n
        }
        if shutdownWrite { shutdown(fd, Int32(SHUT_WR)) }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response += chunk[0..<n]
            if let parsed = parse(response), parsed.complete { return parsed.result }
        }
        guard let parsed = parse(response) else {
            throw HTTPFailure(description: "no HTTP response (\(response.count) bytes: \(String(decoding: response.prefix(200), as: UTF8.self)))")
        }
        return parsed.result
    }

    /// A TCP connection to 127.0.0.1:`port`, or nil.
    static func connectSocket(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    static func parse(_ data: [UInt8]) -> (result: HTTPResult, complete: Bool)? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, data.count - 3)).first(where: { Array(data[$0..<$0 + 4]) == separator }) else { return nil }
        let head = String(decoding: data[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let parts = head[0].split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(data[(end + 4)...])
        var complete = false
        if let length = headers["content-length"].flatMap({ Int($0) }) {
            complete = body.count >= length
            body = Array(body.prefix(length))
        } else if headers["transfer-encoding"]?.lowercased() == "chunked" {
            var decoded: [UInt8] = []
            var i = 0
            while let lineEnd = (i..<max(i, body.count - 1)).first(where: { body[$0] == 13 && body[$0 + 1] == 10 }),
                let size = Int(String(decoding: body[i..<lineEnd], as: UTF8.self), radix: 16)
            {
                if size == 0 {
                    complete = true
                    break
                }
                let start = lineEnd + 2
                guard start + size <= body.count else { break }
                decoded += body[start..<(start + size)]
                i = start + size + 2
            }
            body = decoded
        } else if status == 304 || status == 204 {
            complete = true
        }
        return (HTTPResult(status: status, headers: headers, body: body), complete)
    }
}
