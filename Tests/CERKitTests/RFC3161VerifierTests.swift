import CERKit
import Foundation
import LedgerTesting
import Testing

/// RFC 3161 tokens verified completely: NexArt's real DigiCert token against the system roots, and tokens
/// of a real `openssl ts -reply` authority, each checked independently with `openssl ts -verify`.
@Suite(.blockingIO) struct RFC3161VerifierTests {
    static let systemRoots = "/etc/ssl/certs/ca-certificates.crt"

    func roots(_ pem: String) throws -> RFC3161Verifier.Roots { try RFC3161Verifier.Roots(pem: pem) }

    func code(_ result: Result<RFC3161Verifier.Verified, RFC3161Verifier.Failure>) -> String {
        switch result {
        case .success: return "OK"
        case .failure(let failure): return failure.code.rawValue
        }
    }

    @Test func nexartsDigiCertTokenVerifiesAgainstTheSystemRoots() async throws {
        let package = try JSONParser.parse(try TestLocations.sharedBytes("fixtures/governed-attested-package.json"))
        let token = try #require(package["timestamp"]?["token"]?.stringValue.flatMap(Base64.decode))
        let hash = try #require(package["cer"]?["certificateHash"]?.stringValue)
        let imprint = try #require(ProtocolHash.digest(of: hash))
        let system = try roots(try String(contentsOfFile: Self.systemRoots, encoding: .utf8))
        let result = await RFC3161Verifier.verify(token, imprint: imprint, roots: system)
        let verified = try result.get()
        // The values `openssl ts -reply -text` prints for this token.
        #expect(verified.token.genTime == "2026-10-06T20:53:27.000Z")
        #expect(verified.serialNumber == "07c93261d753c98ba08caf7a9538cfeb")
        #expect(verified.signer.contains("DigiCert SHA256 RSA4096 Timestamp Responder 2026 1"))
        // Another imprint, or roots that are not DigiCert's, fail with their codes.
        #expect(code(await RFC3161Verifier.verify(token, imprint: [UInt8](repeating: 0, count: 32), roots: system)) == "TSA_IMPRINT_MISMATCH")
        let stranger = try TimestampAuthority()
        #expect(code(await RFC3161Verifier.verify(token, imprint: imprint, roots: try roots(stranger.rootPEM))) == "TSA_UNTRUSTED")
    }

    @Test func ourAuthoritysTokensVerifyHereAndWithOpenSSL() async throws {
        let tsa = try TimestampAuthority()
        let digest = ProtocolHash.sha256(Array("a checkpoint note\n".utf8))
        let reply = try tsa.stamp(sha256: digest)
        #expect(try tsa.opensslVerifies(reply: reply, sha256: digest))
        let verified = try await RFC3161Verifier.verify(reply, imprint: digest, roots: try roots(tsa.rootPEM)).get()
        #expect(verified.signer.contains("EvidenceLedger Loopback TSA") && abs(verified.genTime.timeIntervalSinceNow) < 300)

        // One bit of the TSA's signature flipped: both verifiers refuse it.
        var forged = reply
        forged[forged.count - 10] ^= 0x01
        #expect(try !tsa.opensslVerifies(reply: forged, sha256: digest))
        #expect(code(await RFC3161Verifier.verify(forged, imprint: digest, roots: try roots(tsa.rootPEM))) == "TSA_SIGNATURE_INVALID")
        #expect(code(await RFC3161Verifier.verify(Array("not a token".utf8), imprint: digest, roots: .none)) == "TSA_TOKEN_MALFORMED")
        #expect(code(await RFC3161Verifier.verify(reply, imprint: digest, roots: .none)) == "TSA_UNTRUSTED")
    }

    @Test func tokensOfAnExpiredCertificateFail() async throws {
        let digest = ProtocolHash.sha256(Array("x".utf8))
        let expired = try TimestampAuthority(.expired)
        let late = try expired.stamp(sha256: digest)
        #expect(try !expired.opensslVerifies(reply: late, sha256: digest), "openssl agrees the signer was not valid at genTime")
        #expect(code(await RFC3161Verifier.verify(late, imprint: digest, roots: try roots(expired.rootPEM))) == "TSA_CERTIFICATE_EXPIRED")
        // (A certificate without the critical timeStamping usage cannot be made to sign here: `openssl ts
        // -reply` itself refuses it, as RFC 3161 §2.3 asks; the check is covered by the refusal below.)
        #expect(throws: (any Error).self) { _ = try TimestampAuthority(.nonCriticalUsage).stamp(sha256: digest) }
    }
}
