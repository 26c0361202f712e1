public import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One outbound HTTP exchange with a party outside the node (a witness, another node), bounded in time
/// and in the size of what is read back.
enum OutboundHTTP {
    struct Reply: Sendable {
        var status: Int
        var contentType: String?
        var body: [UInt8]
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func send(
        _ method: String, _ url: String, body: [UInt8]?, headers: [(String, String)], timeout: Duration, maxReplyBytes: Int = 1 << 20
    ) async throws -> Reply {
        guard let target = URL(string: url) else { throw Failure(description: "\(url.prefix(80)) is not a URL") }
        var request = URLRequest(url: target)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = body.map { Data($0) }
        request.timeoutInterval = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw Failure(description: "\(error.localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else { throw Failure(description: "no HTTP response") }
        guard data.count <= maxReplyBytes else { throw Failure(description: "the reply is over \(maxReplyBytes) bytes") }
        return Reply(status: http.statusCode, contentType: http.value(forHTTPHeaderField: "Content-Type"), body: [UInt8](data))
    }
}
