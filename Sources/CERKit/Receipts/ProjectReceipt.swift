/// The node's receipt for a registered project bundle (PROTOCOL.md §4.4): a flat object with
/// `projectHash`, `registeredAt`, `kid`, `nodeId`, … and `signature`, the base64url Ed25519 signature
/// over `JSON.stringify` of the receipt without `signature`, top-level keys sorted (NexArt's verifier
/// sorts only the top level; for a flat receipt that is its canonical JSON).
public enum ProjectReceipt {
    /// The bytes the signature covers.
    public static func signedBytes(_ receipt: JSONObject) -> [UInt8] {
        var out: [UInt8] = [0x7B]
        let keys = receipt.keys.filter { $0 != "signature" }.sorted { Array($0.utf16).lexicographicallyPrecedes(Array($1.utf16)) }
        for (i, key) in keys.enumerated() {
            if i > 0 { out.append(0x2C) }
            out += JSONValue.string(JSONString(key)).compactBytes()
            out.append(0x3A)
            out += receipt[key]!.compactBytes()
        }
        out.append(0x7D)
        return out
    }

    /// Signs `receipt` (without `signature`) and returns it with `signature` added.
    public static func sign(_ receipt: JSONObject, with key: Ed25519SigningKey) -> JSONObject {
        var signed = receipt
        signed["signature"] = .string(JSONString(Base64.encodeURL(key.sign(signedBytes(receipt)))))
        return signed
    }

    /// Why a project receipt does not verify, or nil when it does: its kid is a published, unrevoked key
    /// of `manifest`, the signature verifies, and it is for `projectHash`.
    public static func problem(_ receipt: JSONValue, projectHash: String, manifest: NodeKeyManifest) -> String? {
        guard let o = receipt.objectValue else { return "the node receipt is not an object" }
        guard let kid = o["kid"]?.stringValue else { return "the node receipt has no kid" }
        guard let key = manifest.keys.first(where: { $0.kid == kid }), let publicKey = key.publicKey else {
            return "key \(kid) is not in the node's key manifest"
        }
        if key.isRevoked { return "key \(kid) is revoked" }
        guard let text = o["signature"]?.stringValue, let signature = ReceiptSignature.decodeSignature(text) else {
            return "the node receipt has no readable signature"
        }
        guard Ed25519.isValidSignature(signature, of: signedBytes(o), publicKey: publicKey) else { return "the node receipt's signature does not verify" }
        guard o["projectHash"]?.stringValue == projectHash else { return "the node receipt is for another projectHash" }
        return nil
    }
}
