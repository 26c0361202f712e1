/// A signed attestation receipt found in an artifact.
public struct SignedReceipt: Sendable, Equatable {
    /// The receipt object, or a string holding its already-canonical JSON.
    public var receipt: JSONValue
    /// The base64url signature, when present.
    public var signature: String?
    /// The key id named next to the receipt (`attestorKeyId` or `kid`), when present.
    public var kid: String?
    /// Where it was found (`attestation`, `top-level`, `meta.attestation`, …).
    public var location: String

    /// The key id to verify with: the container's, else the receipt's own `attestorKeyId`/`kid`.
    public var effectiveKid: String? {
        kid ?? receipt["attestorKeyId"]?.stringValue ?? receipt["kid"]?.stringValue
    }

    /// The receipt as an object (parsing a string receipt), when it is one.
    public var receiptObject: JSONObject? {
        if let o = receipt.objectValue { return o }
        if case .string(let s) = receipt, let parsed = try? JSONParser.parse(s.bytes) { return parsed.objectValue }
        return nil
    }

    /// The exact bytes the node signed: the canonical JSON of the receipt object as returned (all
    /// fields, including `timestamp*`), or a string receipt's own bytes.
    public func signedBytes() throws(CanonicalizationError) -> [UInt8] {
        if case .string(let s) = receipt { return s.bytes }
        return try CanonicalJSON.encode(receipt, profile: .nexartV1)
    }
}

/// Finds receipts and legacy stamps in bundles, packages and node responses.
public enum ReceiptLocator {
    /// Containers probed in order (Verify-nexart-io `extractSignedReceipt`).
    static let containerPaths: [[String]] = [["attestation"], [], ["meta", "attestation"], ["proof"], ["certification"], ["seal"]]

    /// The first signed receipt in `artifact` (a package, a response, or a bundle).
    public static func find(in artifact: JSONObject) -> SignedReceipt? {
        for path in containerPaths {
            var node: JSONValue? = .object(artifact)
            for p in path { node = node?[p] }
            guard let container = node?.objectValue, let receipt = container["receipt"] else { continue }
            guard receipt.objectValue != nil || receipt.stringValue != nil else { continue }
            let signature = (container["signatureB64Url"] ?? container["signature"])?.stringValue
            let kid = (container["attestorKeyId"] ?? container["kid"])?.stringValue
            return SignedReceipt(
                receipt: receipt, signature: signature, kid: kid,
                location: path.isEmpty ? "top-level" : path.joined(separator: "."))
        }
        return nil
    }

    /// True when the artifact carries a pre-v0.5 stamp (`attestationId`/`nodeRuntimeHash`) but no signed receipt.
    public static func hasLegacyStamp(in artifact: JSONObject) -> Bool {
        for container in [artifact["meta"]?["attestation"], artifact["attestation"], .object(artifact)] {
            guard let c = container?.objectValue else { continue }
            if c["attestationId"] != nil || c["nodeRuntimeHash"] != nil { return true }
        }
        return false
    }
}

/// Signing and checking receipts with Ed25519 (PROTOCOL.md §5.6).
public enum ReceiptSignature {
    /// base64url (no padding) of the Ed25519 signature over the receipt's canonical bytes.
    public static func sign(_ receipt: JSONValue, with key: Ed25519SigningKey) throws(CanonicalizationError) -> String {
        Base64.encodeURL(key.sign(try CanonicalJSON.encode(receipt, profile: .nexartV1)))
    }

    /// Decodes a base64url (or, leniently, standard base64) signature.
    public static func decodeSignature(_ text: String) -> [UInt8]? {
        Base64.decodeURL(text) ?? Base64.decode(text)
    }
}
