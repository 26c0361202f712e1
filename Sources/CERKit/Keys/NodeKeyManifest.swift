/// A node's published key set (`/.well-known/nexart-node.json`, PROTOCOL.md §5.4).
public struct NodeKeyManifest: Sendable, Equatable {
    /// One published key.
    public struct Key: Sendable, Equatable {
        public var kid: String
        public var algorithm: String
        /// `active`, `deprecated` or `revoked` (unknown values are refused at use).
        public var status: String
        public var isRevoked: Bool
        /// Start of validity (`validFrom`, or the SDK's `notBefore`), epoch ms.
        public var validFrom: Int64?
        /// End of validity (`validTo`, or the SDK's `notAfter`), epoch ms.
        public var validTo: Int64?
        /// The 32-byte Ed25519 public key, when one of its encodings decoded consistently.
        public var publicKey: [UInt8]?
        /// Why the key material could not be used, when it could not.
        public var formatProblem: String?

        public init(
            kid: String, algorithm: String, status: String, isRevoked: Bool, validFrom: Int64?, validTo: Int64?, publicKey: [UInt8]?,
            formatProblem: String?
        ) {
            self.kid = kid
            self.algorithm = algorithm
            self.status = status
            self.isRevoked = isRevoked
            self.validFrom = validFrom
            self.validTo = validTo
            self.publicKey = publicKey
            self.formatProblem = formatProblem
        }
    }

    public var nodeId: String?
    public var activeKid: String?
    public var keys: [Key]

    /// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the key's 32 bytes follow.
    public static let ed25519SpkiPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]

    /// Why a manifest document could not be read at all.
    public struct FormatError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Reads a manifest; keys under `keys` (or `publicKeys`). Individual unusable keys are kept with a
    /// `formatProblem` so that selecting them fails with a precise code.
    public init(_ document: JSONValue) throws(FormatError) {
        guard let o = document.objectValue else { throw FormatError(description: "key manifest must be a JSON object") }
        guard let list = (o["keys"] ?? o["publicKeys"])?.arrayValue else {
            throw FormatError(description: "key manifest has no \"keys\" array")
        }
        nodeId = o["nodeId"]?.stringValue
        activeKid = o["activeKid"]?.stringValue
        keys = list.compactMap { Self.readKey($0) }
    }

    /// A manifest from already-decoded keys (used when publishing our own).
    public init(nodeId: String?, activeKid: String?, keys: [Key]) {
        self.nodeId = nodeId
        self.activeKid = activeKid
        self.keys = keys
    }

    static func readKey(_ value: JSONValue) -> Key? {
        guard let k = value.objectValue, let kid = (k["kid"] ?? k["id"])?.stringValue else { return nil }
        let algorithm = (k["alg"] ?? k["algorithm"])?.stringValue ?? "Ed25519"
        let status = k["status"]?.stringValue ?? "active"
        var key = Key(
            kid: kid, algorithm: algorithm, status: status, isRevoked: k["revoked"]?.boolValue == true || status == "revoked",
            validFrom: nil, validTo: nil, publicKey: nil, formatProblem: nil)
        for (field, alias) in [("validFrom", "notBefore"), ("validTo", "notAfter")] {
            guard let v = k[field] ?? k[alias], !v.isNull else { continue }
            guard let text = v.stringValue, let ms = Timestamp.milliseconds(text) else {
                key.formatProblem = "\(field) is not an ISO-8601 timestamp"
                continue
            }
            if field == "validFrom" { key.validFrom = ms } else { key.validTo = ms }
        }
        guard algorithm.lowercased() == "ed25519" || algorithm == "EdDSA" else {
            key.formatProblem = "algorithm \(algorithm) is not supported (Ed25519 only)"
            return key
        }
        // Every published encoding must decode to the same 32 bytes.
        var candidates: [(String, [UInt8]?)] = []
        if let jwk = k["publicKeyJwk"]?.objectValue {
            if jwk["kty"]?.stringValue == "OKP", jwk["crv"]?.stringValue == "Ed25519", let x = jwk["x"]?.stringValue {
                candidates.append(("publicKeyJwk", Base64.decodeURL(x)))
            } else {
                candidates.append(("publicKeyJwk", nil))
            }
        }
        if let raw = k["publicKey"]?.stringValue {
            candidates.append(("publicKey", decodeRawOrSpki(raw)))
        }
        if let spki = (k["publicKeySpkiB64"] ?? k["spki"])?.stringValue {
            candidates.append(("publicKeySpkiB64", Base64.decode(spki).flatMap(spkiKey)))
        }
        if candidates.isEmpty {
            key.formatProblem = key.formatProblem ?? "key \(kid) publishes no public key"
            return key
        }
        var agreed: [UInt8]? = nil
        for (name, bytes) in candidates {
            guard let bytes, bytes.count == Ed25519.publicKeyLength else {
                key.formatProblem = "\(name) of key \(kid) is not a 32-byte Ed25519 public key"
                return key
            }
            if let agreed, agreed != bytes {
                key.formatProblem = "the published encodings of key \(kid) disagree"
                return key
            }
            agreed = bytes
        }
        key.publicKey = agreed
        return key
    }

    /// `publicKey` is raw base64url in current manifests; older docs put SPKI (base64) there.
    static func decodeRawOrSpki(_ text: String) -> [UInt8]? {
        if let raw = Base64.decodeURL(text), raw.count == 32 { return raw }
        if let der = Base64.decode(text) ?? Base64.decodeURL(text) { return spkiKey(der) }
        return nil
    }

    static func spkiKey(_ der: [UInt8]) -> [UInt8]? {
        guard der.count == 44, Array(der.prefix(12)) == ed25519SpkiPrefix else { return nil }
        return Array(der.suffix(32))
    }

    /// The outcome of choosing a key to trust for a signature.
    public enum Selection: Sendable, Equatable {
        case usable(Key)
        case rejected(CerVerifyCode, String)
    }

    /// Chooses the key for `kid`, failing closed: no fallback to `activeKid` or to the first key, revoked
    /// keys refused, and `signedAt` (epoch ms) must fall inside the key's validity window when it has one.
    public func select(kid: String?, signedAt: Int64?) -> Selection {
        guard let kid, !kid.isEmpty else {
            return .rejected(.attestationKeyNotFound, "the signature names no key id (kid); no fallback key is used")
        }
        guard let key = keys.first(where: { $0.kid == kid }) else {
            return .rejected(.attestationKeyNotFound, "key \"\(kid)\" is not in the node's key manifest")
        }
        if key.isRevoked { return .rejected(.keyRevoked, "key \"\(kid)\" is revoked") }
        guard ["active", "deprecated", "retired"].contains(key.status) else {
            return .rejected(.schemaKeyInvalid, "key \"\(kid)\" has unknown status \"\(key.status)\"")
        }
        if let problem = key.formatProblem { return .rejected(.attestationKeyFormatUnsupported, problem) }
        if key.validFrom != nil || key.validTo != nil {
            guard let signedAt else {
                return .rejected(.schemaKeyInvalid, "key \"\(kid)\" has a validity window but the signing time is unknown")
            }
            if let from = key.validFrom, signedAt < from {
                return .rejected(.schemaKeyInvalid, "signed at \(Timestamp.iso8601(milliseconds: signedAt)), before key \"\(kid)\" became valid")
            }
            if let to = key.validTo, signedAt > to {
                return .rejected(.schemaKeyInvalid, "signed at \(Timestamp.iso8601(milliseconds: signedAt)), after key \"\(kid)\" expired")
            }
        }
        return .usable(key)
    }
}

extension NodeKeyManifest.Key {
    /// The manifest entry in every published format (raw base64url, JWK, SPKI, `alg` and `algorithm`).
    public func manifestEntry() -> JSONValue {
        var o = JSONObject()
        o["kid"] = .string(JSONString(kid))
        o["alg"] = "Ed25519"
        o["algorithm"] = "Ed25519"
        o["status"] = .string(JSONString(status))
        o["revoked"] = .bool(isRevoked)
        if let validFrom { o["validFrom"] = .string(JSONString(Timestamp.iso8601(milliseconds: validFrom))) }
        if let validTo { o["validTo"] = .string(JSONString(Timestamp.iso8601(milliseconds: validTo))) }
        if let publicKey {
            o["publicKey"] = .string(JSONString(Base64.encodeURL(publicKey)))
            o["publicKeyJwk"] = ["kty": "OKP", "crv": "Ed25519", "x": .string(JSONString(Base64.encodeURL(publicKey)))]
            o["publicKeySpkiB64"] = .string(JSONString(Base64.encode(NodeKeyManifest.ed25519SpkiPrefix + publicKey)))
        }
        return .object(o)
    }
}
