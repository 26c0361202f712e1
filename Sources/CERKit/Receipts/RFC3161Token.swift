import SwiftASN1

/// The parts of an RFC 3161 timestamp token that bind it to a certificate hash.
public struct RFC3161Token: Sendable, Equatable {
    /// Dotted OID of the imprint's hash algorithm (2.16.840.1.101.3.4.2.1 is SHA-256).
    public var hashAlgorithm: String
    /// The hashed message the TSA signed.
    public var hashedMessage: [UInt8]
    /// The TSA's time (TSTInfo genTime), RFC 3339.
    public var genTime: String
    /// The TSA policy OID.
    public var policy: String

    public static let sha256OID = "2.16.840.1.101.3.4.2.1"

    /// Why a token could not be read.
    public struct FormatError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Reads a DER `TimeStampResp` (status + token) or a bare `TimeStampToken` (CMS ContentInfo).
    /// Only the structure is read; the TSA's CMS signature is not verified here.
    public init(der: [UInt8]) throws(FormatError) {
        do {
            var node = try DER.parse(der)
            var children = try Self.children(node)
            if children.first?.identifier == .sequence, children.count >= 2 {
                // TimeStampResp: PKIStatusInfo, then the token.
                let status = try Self.children(children[0])
                guard case .primitive(let s)? = status.first?.content, s.count == 1, s.first! <= 1 else {
                    throw FormatError(description: "the timestamp response's status is not granted")
                }
                node = children[1]
                children = try Self.children(node)
            }
            // ContentInfo { contentType, [0] SignedData }
            guard children.count == 2, try Self.oid(children[0]) == "1.2.840.113549.1.7.2" else {
                throw FormatError(description: "the token is not CMS SignedData")
            }
            let signedData = try Self.children(try Self.children(children[1])[0])
            guard signedData.count >= 3 else { throw FormatError(description: "SignedData is truncated") }
            let encap = try Self.children(signedData[2])
            guard encap.count == 2, try Self.oid(encap[0]) == "1.2.840.113549.1.9.16.1.4" else {
                throw FormatError(description: "the token does not hold a TSTInfo")
            }
            guard case .primitive(let tstBytes) = try Self.children(encap[1])[0].content else {
                throw FormatError(description: "the TSTInfo is not an OCTET STRING")
            }
            let tst = try Self.children(try DER.parse(tstBytes))
            guard tst.count >= 5 else { throw FormatError(description: "TSTInfo is truncated") }
            policy = try Self.oid(tst[1])
            let imprint = try Self.children(tst[2])
            hashAlgorithm = try Self.oid(try Self.children(imprint[0])[0])
            guard case .primitive(let hashed) = imprint[1].content else {
                throw FormatError(description: "messageImprint.hashedMessage is not an OCTET STRING")
            }
            hashedMessage = Array(hashed)
            let time = try GeneralizedTime(derEncoded: tst[4])
            let ms = Int((time.fractionalSeconds * 1000).rounded(.down))
            genTime = Self.rfc3339(time.year, time.month, time.day, time.hours, time.minutes, time.seconds, ms)
        } catch let error as FormatError {
            throw error
        } catch {
            throw FormatError(description: "the timestamp token is not valid DER: \(error)")
        }
    }

    static func rfc3339(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int, _ ms: Int) -> String {
        func p(_ v: Int, _ w: Int) -> String { String(repeating: "0", count: max(0, w - String(v).count)) + String(v) }
        return "\(p(y, 4))-\(p(mo, 2))-\(p(d, 2))T\(p(h, 2)):\(p(mi, 2)):\(p(s, 2)).\(p(ms, 3))Z"
    }

    static func children(_ node: ASN1Node) throws -> [ASN1Node] {
        guard case .constructed(let collection) = node.content else {
            throw FormatError(description: "expected a constructed ASN.1 element")
        }
        return Array(collection)
    }

    static func oid(_ node: ASN1Node) throws -> String {
        try ASN1ObjectIdentifier(derEncoded: node).description
    }
}

/// The timestamp layer: the token's message imprint must be the certificate hash's digest.
enum TimestampCheck {
    /// The artifact's timestamp object: the package's `timestamp`, the CER's `meta.timestamp`, or its first
    /// `trustedTimestamps` entry with a token.
    static func locate(artifact: JSONObject, cer: JSONObject) -> JSONObject? {
        let candidates = [artifact["timestamp"], cer["meta"]?["timestamp"]] + (cer["trustedTimestamps"]?.arrayValue ?? []).map { Optional($0) }
        return candidates.compactMap({ $0?.objectValue }).first(where: { $0["token"]?.stringValue != nil })
    }

    static func check(artifact: JSONObject, cer: JSONObject, certificateHash: String?) -> LayerCheck {
        guard let stamp = locate(artifact: artifact, cer: cer) else {
            return .skipped("no RFC 3161 timestamp")
        }
        guard stamp["type"]?.stringValue == nil || stamp["type"]?.stringValue == "rfc3161" else {
            return .skipped("timestamp of type \(stamp["type"]!.stringValue!) is not RFC 3161")
        }
        guard let der = Base64.decode(stamp["token"]!.stringValue!) else {
            return .fail(.unknownError, "the timestamp token is not base64")
        }
        let token: RFC3161Token
        do { token = try RFC3161Token(der: der) } catch { return .fail(.unknownError, error.description) }
        guard token.hashAlgorithm == RFC3161Token.sha256OID else {
            return .fail(.unknownError, "the timestamp imprint uses hash algorithm \(token.hashAlgorithm), not SHA-256")
        }
        guard let certificateHash, let digest = ProtocolHash.digest(of: certificateHash), digest == token.hashedMessage else {
            return .fail(.certificateHashMismatch, "the timestamp's message imprint is not the certificate hash's digest")
        }
        return .pass("RFC 3161 token imprint = certificateHash digest, genTime \(token.genTime) (TSA signature chain not checked)")
    }
}

extension ArtifactVerifier {
    /// The timestamp layer in full (`RFC3161Verifier`): the TSA's signature, certificate binding and
    /// usage, the chain to `roots` at genTime, and the imprint (the certificate hash's digest). Given roots,
    /// the layer is decisive: a token that does not verify fails the report with `TIMESTAMP_INVALID`.
    public static func verifyTimestamp(_ report: inout VerificationReport, artifact value: JSONValue, roots: RFC3161Verifier.Roots) async {
        guard let artifact = value.objectValue else { return }
        let cer = artifact["cer"]?.objectValue ?? artifact
        guard let stamp = TimestampCheck.locate(artifact: artifact, cer: cer) else { return }
        guard stamp["type"]?.stringValue == nil || stamp["type"]?.stringValue == "rfc3161" else { return }
        guard let der = stamp["token"]?.stringValue.flatMap(Base64.decode) else {
            report.timestamp = .fail(.timestampInvalid, "TSA_TOKEN_MALFORMED: the timestamp token is not base64")
            report.conclude(degraded: report.status == .degraded)
            return
        }
        guard let hash = report.certificateHash ?? cer["certificateHash"]?.stringValue, let imprint = ProtocolHash.digest(of: hash) else { return }
        switch await RFC3161Verifier.verify(der, imprint: imprint, roots: roots) {
        case .success(let verified):
            report.timestamp = .pass(
                "RFC 3161 token verified: signed by \(verified.signer), chained to a trusted root, genTime \(verified.token.genTime), imprint = certificateHash digest")
        case .failure(let failure):
            report.timestamp = .fail(.timestampInvalid, "\(failure.code.rawValue): \(failure.description)")
        }
        report.conclude(degraded: report.status == .degraded)
    }
}
