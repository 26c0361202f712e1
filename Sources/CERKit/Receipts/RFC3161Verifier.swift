public import Crypto
public import Foundation
import SwiftASN1
public import X509

/// Verifies an RFC 3161 timestamp token completely: the CMS SignedData signature over the signed
/// attributes (RFC 5652), the content type and message digest of the TSTInfo, the binding of the signer
/// certificate (ESSCertID or ESSCertIDv2, RFC 2634 / RFC 5035), the signer's critical `timeStamping`
/// extended key usage (RFC 3161 §2.3), the chain to the given trust anchors with every certificate valid at
/// genTime (swift-certificates' RFC 5280 verifier), and the message imprint.
public enum RFC3161Verifier {
    /// Why a token does not verify. `code` is stable; the description is a sentence.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public enum Code: String, Sendable, CaseIterable {
            /// Not a granted TimeStampResp or CMS SignedData holding a TSTInfo.
            case malformed = "TSA_TOKEN_MALFORMED"
            /// The imprint is not the expected one (other data or another hash algorithm).
            case imprintMismatch = "TSA_IMPRINT_MISMATCH"
            /// The CMS signature, the content type or the message digest does not verify.
            case signatureInvalid = "TSA_SIGNATURE_INVALID"
            /// The signing-certificate attribute does not name the certificate that signed.
            case signerNotBound = "TSA_SIGNER_NOT_BOUND"
            /// The signer's certificate is not a timestamping certificate (critical timeStamping EKU).
            case notTimestampingCertificate = "TSA_NOT_TIMESTAMPING"
            /// genTime falls outside the signer certificate's validity.
            case certificateExpired = "TSA_CERTIFICATE_EXPIRED"
            /// No chain to the given trust anchors.
            case untrusted = "TSA_UNTRUSTED"
            /// The signature algorithm is not one this verifier supports.
            case unsupportedAlgorithm = "TSA_UNSUPPORTED_ALGORITHM"
        }

        public var code: Code
        public var description: String

        public init(_ code: Code, _ description: String) {
            self.code = code
            self.description = description
        }
    }

    /// What a verified token says.
    public struct Verified: Sendable, Equatable {
        public var token: RFC3161Token
        /// genTime as a date.
        public var genTime: Date
        /// The TSA certificate's subject.
        public var signer: String
        /// TSTInfo serial number, hex.
        public var serialNumber: String
    }

    /// Trust anchors for timestamp authorities.
    public struct Roots: Sendable {
        public var certificates: [Certificate]
        public init(certificates: [Certificate]) { self.certificates = certificates }
        /// Every CERTIFICATE block of PEM text.
        public init(pem: String) throws {
            let documents = try PEMDocument.parseMultiple(pemString: pem)
            certificates = try documents.filter { $0.discriminator == "CERTIFICATE" }.map { try Certificate(pemDocument: $0) }
        }
        public static let none = Roots(certificates: [])
    }

    /// Verifies `der` (a TimeStampResp or a bare TimeStampToken) against `roots`: the imprint must be
    /// `imprint` under SHA-256.
    public static func verify(_ der: [UInt8], imprint: [UInt8], roots: Roots) async -> Result<Verified, Failure> {
        let parsed: Parsed
        do { parsed = try Parsed(der) } catch { return .failure(error) }
        let token = parsed.token
        guard token.hashAlgorithm == RFC3161Token.sha256OID else {
            return .failure(Failure(.imprintMismatch, "the imprint uses hash algorithm \(token.hashAlgorithm), not SHA-256"))
        }
        guard token.hashedMessage == imprint else {
            return .failure(Failure(.imprintMismatch, "the token's message imprint is not the expected digest"))
        }
        if let failure = parsed.checkSignature() { return .failure(failure) }
        let signer = parsed.signer
        // RFC 3161 §2.3: the signer's only extended key usage is timeStamping, and the extension is critical.
        guard let eku = try? signer.extensions.extendedKeyUsage, eku.contains(.timeStamping),
            signer.extensions[oid: .X509ExtensionID.extendedKeyUsage]?.critical == true
        else {
            return .failure(Failure(.notTimestampingCertificate, "the signer \(signer.subject) has no critical timeStamping extended key usage"))
        }
        guard signer.notValidBefore <= parsed.genTime, parsed.genTime <= signer.notValidAfter else {
            return .failure(Failure(
                .certificateExpired,
                "genTime \(token.genTime) is outside the validity of the TSA certificate \(signer.subject) (\(signer.notValidBefore) to \(signer.notValidAfter))"))
        }
        var verifier = Verifier(rootCertificates: CertificateStore(roots.certificates)) {
            RFC5280Policy(validationTime: parsed.genTime)
            TimestampingPolicy()
        }
        let result = await verifier.validate(leaf: signer, intermediates: CertificateStore(parsed.certificates))
        switch result {
        case .validCertificate:
            return .success(Verified(token: token, genTime: parsed.genTime, signer: "\(signer.subject)", serialNumber: parsed.serialNumber))
        case .couldNotValidate(let failures):
            let reasons = failures.prefix(2).map { "\($0.policyFailureReason)" }.joined(separator: "; ")
            return .failure(Failure(.untrusted, "the TSA certificate \(signer.subject) does not chain to a trusted root at genTime\(reasons.isEmpty ? "" : ": \(reasons)")"))
        }
    }

    /// The leaf must carry the timeStamping key purpose; the extension is handled here, so its being
    /// critical does not fail the chain.
    struct TimestampingPolicy: VerifierPolicy {
        let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.extendedKeyUsage]

        func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
            guard let eku = try? chain.leaf.extensions.extendedKeyUsage, eku.contains(.timeStamping) else {
                return .failsToMeetPolicy(reason: "the leaf is not a timestamping certificate")
            }
            return .meetsPolicy
        }
    }

    /// The pieces of a token the checks need.
    struct Parsed {
        var token: RFC3161Token
        var genTime: Date
        var serialNumber: String
        var tstInfo: [UInt8]
        var certificates: [Certificate]
        var signer: Certificate
        var digestAlgorithm: String
        var signatureAlgorithm: String
        var signedAttributes: [UInt8]?
        var attributes: [(type: String, value: ASN1Node)]
        var signature: [UInt8]

        static let signedDataOID = "1.2.840.113549.1.7.2"
        static let tstInfoOID = "1.2.840.113549.1.9.16.1.4"
        static let contentTypeOID = "1.2.840.113549.1.9.3"
        static let messageDigestOID = "1.2.840.113549.1.9.4"
        static let signingCertificateOID = "1.2.840.113549.1.9.16.2.12"
        static let signingCertificateV2OID = "1.2.840.113549.1.9.16.2.47"

        init(_ der: [UInt8]) throws(Failure) {
            do {
                token = try RFC3161Token(der: der)
            } catch {
                throw Failure(.malformed, error.description)
            }
            do {
                var node = try DER.parse(der)
                var children = try RFC3161Token.children(node)
                if children.first?.identifier == .sequence, children.count >= 2 { node = children[1] }  // TimeStampResp
                children = try RFC3161Token.children(node)
                guard children.count == 2, try RFC3161Token.oid(children[0]) == Self.signedDataOID else { throw Failure(.malformed, "not CMS SignedData") }
                let signedData = try RFC3161Token.children(try RFC3161Token.children(children[1])[0])
                let digestAlgorithms = try RFC3161Token.children(signedData[1]).map { try RFC3161Token.oid(try RFC3161Token.children($0)[0]) }
                let encap = try RFC3161Token.children(signedData[2])
                guard case .primitive(let content) = try RFC3161Token.children(encap[1])[0].content else { throw Failure(.malformed, "TSTInfo is not an OCTET STRING") }
                tstInfo = Array(content)
                let tst = try RFC3161Token.children(try DER.parse(tstInfo))
                serialNumber = Self.hex(try Self.primitive(tst[3]))
                let time = try GeneralizedTime(derEncoded: tst[4])
                var components = DateComponents()
                (components.year, components.month, components.day) = (time.year, time.month, time.day)
                (components.hour, components.minute, components.second) = (time.hours, time.minutes, time.seconds)
                var calendar = Calendar(identifier: .gregorian)
                calendar.timeZone = TimeZone(identifier: "UTC")!
                guard let date = calendar.date(from: components) else { throw Failure(.malformed, "genTime is not a date") }
                genTime = date.addingTimeInterval(time.fractionalSeconds)
                certificates = []
                var signerInfos: [ASN1Node] = []
                for child in signedData.dropFirst(3) {
                    if child.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                        for c in try RFC3161Token.children(child) where c.identifier == .sequence {
                            certificates.append(try Certificate(derEncoded: Array(c.encodedBytes)))
                        }
                    } else if child.identifier == .set {
                        signerInfos = try RFC3161Token.children(child)
                    }
                }
                guard signerInfos.count == 1 else { throw Failure(.malformed, "a timestamp token has exactly one signer (found \(signerInfos.count))") }
                let info = try RFC3161Token.children(signerInfos[0])
                guard info.count >= 5 else { throw Failure(.malformed, "SignerInfo is truncated") }
                // sid: IssuerAndSerialNumber, or [0] SubjectKeyIdentifier.
                let sid = info[1]
                let signerCertificate: Certificate?
                if sid.identifier == .sequence {
                    let parts = try RFC3161Token.children(sid)
                    let issuer = try DistinguishedName(derEncoded: parts[0])
                    let serial = Certificate.SerialNumber(bytes: try Self.primitive(parts[1]))
                    signerCertificate = certificates.first { $0.issuer == issuer && $0.serialNumber == serial }
                } else {
                    let keyId = try Self.primitive(sid)
                    signerCertificate = certificates.first { (try? $0.extensions.subjectKeyIdentifier)??.keyIdentifier.elementsEqual(keyId) == true }
                }
                guard let signerCertificate else { throw Failure(.signerNotBound, "the token does not carry the certificate of its signer") }
                signer = signerCertificate
                digestAlgorithm = try RFC3161Token.oid(try RFC3161Token.children(info[2])[0])
                guard digestAlgorithms.contains(digestAlgorithm) else { throw Failure(.malformed, "the signer's digest algorithm is not listed in SignedData") }
                var next = 3
                attributes = []
                if info[next].identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                    // Signed over the DER of the attributes as a SET (RFC 5652 §5.4): the implicit [0] becomes 0x31.
                    var bytes = Array(info[next].encodedBytes)
                    bytes[0] = 0x31
                    signedAttributes = bytes
                    for attribute in try RFC3161Token.children(info[next]) {
                        let pair = try RFC3161Token.children(attribute)
                        guard pair.count == 2, let value = try RFC3161Token.children(pair[1]).first else { throw Failure(.malformed, "a signed attribute has no value") }
                        attributes.append((try RFC3161Token.oid(pair[0]), value))
                    }
                    next += 1
                } else {
                    signedAttributes = nil
                }
                guard info.count > next + 1 else { throw Failure(.malformed, "SignerInfo is truncated") }
                signatureAlgorithm = try RFC3161Token.oid(try RFC3161Token.children(info[next])[0])
                signature = Array(try Self.primitive(info[next + 1]))
            } catch let failure as Failure {
                throw failure
            } catch {
                throw Failure(.malformed, "the token is not a well-formed CMS SignedData: \(error)")
            }
        }

        /// The signed attributes (content type, message digest, signing certificate) and the signature.
        func checkSignature() -> Failure? {
            guard let signedAttributes else {
                return Failure(.signatureInvalid, "the token has no signed attributes (RFC 3161 requires the signing certificate attribute)")
            }
            guard let digest = Self.digest(tstInfo, algorithm: digestAlgorithm) else {
                return Failure(.unsupportedAlgorithm, "digest algorithm \(digestAlgorithm) is not supported")
            }
            guard let contentType = attributes.first(where: { $0.type == Self.contentTypeOID })?.value, (try? RFC3161Token.oid(contentType)) == Self.tstInfoOID else {
                return Failure(.signatureInvalid, "the signed content type is not TSTInfo")
            }
            guard let messageDigest = attributes.first(where: { $0.type == Self.messageDigestOID })?.value,
                (try? Self.primitive(messageDigest)).map(Array.init) == digest
            else { return Failure(.signatureInvalid, "the signed message digest is not the digest of the TSTInfo") }
            if let failure = checkSigningCertificate() { return failure }
            guard let algorithm = Self.signatureAlgorithm(signatureAlgorithm, digest: digestAlgorithm) else {
                return Failure(.unsupportedAlgorithm, "signature algorithm \(signatureAlgorithm) with digest \(digestAlgorithm) is not supported")
            }
            guard signer.publicKey.isValidSignature(signature, for: signedAttributes, signatureAlgorithm: algorithm) else {
                return Failure(.signatureInvalid, "the TSA's signature does not verify with the certificate of \(signer.subject)")
            }
            return nil
        }

        /// ESSCertIDv2 (any hash, SHA-256 by default) or ESSCertID (SHA-1) of the signer's certificate.
        func checkSigningCertificate() -> Failure? {
            let certificate: [UInt8]
            do {
                var serializer = DER.Serializer()
                try serializer.serialize(signer)
                certificate = serializer.serializedBytes
            } catch {
                return Failure(.malformed, "the signer certificate cannot be encoded")
            }
            do {
                if let v2 = attributes.first(where: { $0.type == Self.signingCertificateV2OID })?.value {
                    let ids = try RFC3161Token.children(try RFC3161Token.children(v2)[0])
                    guard let first = ids.first else { return Failure(.signerNotBound, "the signing certificate attribute is empty") }
                    let fields = try RFC3161Token.children(first)
                    var algorithm = "2.16.840.1.101.3.4.2.1"
                    var hashField = fields[0]
                    if fields[0].identifier == .sequence {
                        algorithm = try RFC3161Token.oid(try RFC3161Token.children(fields[0])[0])
                        hashField = fields[1]
                    }
                    guard let expected = Self.digest(certificate, algorithm: algorithm), Array(try Self.primitive(hashField)) == expected else {
                        return Failure(.signerNotBound, "the signing certificate attribute (ESSCertIDv2) does not name the certificate that signed")
                    }
                    return nil
                }
                if let v1 = attributes.first(where: { $0.type == Self.signingCertificateOID })?.value {
                    let ids = try RFC3161Token.children(try RFC3161Token.children(v1)[0])
                    guard let first = ids.first else { return Failure(.signerNotBound, "the signing certificate attribute is empty") }
                    let hash = Array(try Self.primitive(try RFC3161Token.children(first)[0]))
                    guard hash == Array(Insecure.SHA1.hash(data: certificate)) else {
                        return Failure(.signerNotBound, "the signing certificate attribute (ESSCertID) does not name the certificate that signed")
                    }
                    return nil
                }
            } catch {
                return Failure(.malformed, "the signing certificate attribute is malformed")
            }
            return Failure(.signerNotBound, "the token has no signing certificate attribute (ESSCertID or ESSCertIDv2)")
        }

        static func digest(_ bytes: [UInt8], algorithm: String) -> [UInt8]? {
            switch algorithm {
            case "2.16.840.1.101.3.4.2.1": return Array(SHA256.hash(data: bytes))
            case "2.16.840.1.101.3.4.2.2": return Array(SHA384.hash(data: bytes))
            case "2.16.840.1.101.3.4.2.3": return Array(SHA512.hash(data: bytes))
            default: return nil
            }
        }

        /// The algorithm from the SignerInfo's signatureAlgorithm (often plain rsaEncryption) and its digest.
        static func signatureAlgorithm(_ oid: String, digest: String) -> Certificate.SignatureAlgorithm? {
            let hash = ["2.16.840.1.101.3.4.2.1": 256, "2.16.840.1.101.3.4.2.2": 384, "2.16.840.1.101.3.4.2.3": 512][digest]
            switch (oid, hash) {
            case ("1.2.840.113549.1.1.1", 256?), ("1.2.840.113549.1.1.11", 256?): return .sha256WithRSAEncryption
            case ("1.2.840.113549.1.1.1", 384?), ("1.2.840.113549.1.1.12", 384?): return .sha384WithRSAEncryption
            case ("1.2.840.113549.1.1.1", 512?), ("1.2.840.113549.1.1.13", 512?): return .sha512WithRSAEncryption
            case ("1.2.840.10045.4.3.2", 256?): return .ecdsaWithSHA256
            case ("1.2.840.10045.4.3.3", 384?): return .ecdsaWithSHA384
            case ("1.2.840.10045.4.3.4", 512?): return .ecdsaWithSHA512
            case ("1.3.101.112", _): return .ed25519
            default: return nil
            }
        }

        static func primitive(_ node: ASN1Node) throws -> ArraySlice<UInt8> {
            guard case .primitive(let bytes) = node.content else { throw Failure(.malformed, "expected a primitive ASN.1 element") }
            return bytes
        }

        static func hex(_ bytes: ArraySlice<UInt8>) -> String { Hex.encode(Array(bytes)) }
    }
}
