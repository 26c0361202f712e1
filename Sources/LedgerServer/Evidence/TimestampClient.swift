public import CERKit

/// An RFC 3161 client: asks each configured timestamp authority in order (HTTP POST of a DER
/// `TimeStampReq`, `application/timestamp-query`) for a token over a SHA-256 imprint, and accepts a token
/// only once `RFC3161Verifier` has verified it in full against the configured roots.
public struct TimestampClient: Sendable {
    public let urls: [String]
    public let roots: RFC3161Verifier.Roots
    public let timeout: Duration

    public init(urls: [String], roots: RFC3161Verifier.Roots, timeout: Duration) {
        self.urls = urls
        self.roots = roots
        self.timeout = timeout
    }

    /// A token and what it says.
    public struct Stamp: Sendable {
        /// The DER `TimeStampResp`, as NexArt stores it.
        public var response: [UInt8]
        public var verified: RFC3161Verifier.Verified
        /// The authority that issued it.
        public var url: String
    }

    /// Why no authority gave a token: one sentence per authority tried.
    public struct Unavailable: Error, Sendable, CustomStringConvertible {
        public var attempts: [String]
        public var description: String { "no timestamp authority gave a valid token: " + attempts.joined(separator: "; ") }
    }

    /// A verified token over `imprint` (32 bytes), from the first authority that gives one.
    public func stamp(imprint: [UInt8]) async throws(Unavailable) -> Stamp {
        var attempts: [String] = []
        for url in urls {
            do {
                let response = try await request(url, body: Self.request(imprint: imprint))
                switch await RFC3161Verifier.verify(response, imprint: imprint, roots: roots) {
                case .success(let verified): return Stamp(response: response, verified: verified, url: url)
                case .failure(let failure): attempts.append("\(url): \(failure.code.rawValue): \(failure.description)")
                }
            } catch {
                attempts.append("\(url): \(error)")
            }
        }
        throw Unavailable(attempts: attempts)
    }

    func request(_ url: String, body: [UInt8]) async throws -> [UInt8] {
        let reply = try await OutboundHTTP.send(
            "POST", url, body: body, headers: [("Content-Type", "application/timestamp-query"), ("Accept", "application/timestamp-reply")],
            timeout: timeout)
        guard reply.status == 200 else { throw OutboundHTTP.Failure(description: "HTTP \(reply.status)") }
        return reply.body
    }

    /// A DER `TimeStampReq` (RFC 3161 §2.4.1): version 1, the SHA-256 imprint, certReq TRUE (the TSA's
    /// certificate is needed to verify the token offline).
    public static func request(imprint: [UInt8]) -> [UInt8] {
        let algorithm: [UInt8] = [0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00]
        let messageImprint: [UInt8] = [0x30, UInt8(algorithm.count + 2 + imprint.count)] + algorithm + [0x04, UInt8(imprint.count)] + imprint
        let content: [UInt8] = [0x02, 0x01, 0x01] + messageImprint + [0x01, 0x01, 0xFF]
        return [0x30, UInt8(content.count)] + content
    }
}
