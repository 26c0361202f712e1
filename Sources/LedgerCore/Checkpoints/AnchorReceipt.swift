public import CERKit

/// A checkpoint anchored in another log: that log's `/api/stamp-hash` reply over
/// `sha256:<hex SHA-256 of the signed checkpoint note>`, whose signed receipt must verify with a key of
/// that log's manifest.
public enum AnchorReceipt {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    public struct Verified: Sendable, Equatable {
        public var kid: String
        public var publicKey: [UInt8]
        public var attestedAt: String?
        public var attestationId: String?
    }

    /// The hash another log is asked to stamp for a checkpoint note.
    public static func anchoredHash(note: [UInt8]) -> String { "sha256:" + Hex.encode(ProtocolHash.sha256(note)) }

    /// Checks a stamp-hash reply: a signed receipt over `hash`, its signature by a usable key of `manifest`
    /// (chosen by the kid it names, never by fallback).
    public static func verify(reply: [UInt8], hash: String, manifest: NodeKeyManifest) throws(Failure) -> Verified {
        guard let json = try? JSONParser.parse(reply), let object = json.objectValue else { throw Failure("the reply is not a JSON object") }
        // NexArt nodes may nest the stamp under attestation, stamp or data.
        let container = [object["attestation"], object["stamp"], object["data"]].compactMap { $0?.objectValue }.first { $0["receipt"] != nil } ?? object
        guard let receipt = ReceiptLocator.find(in: container), let receiptObject = receipt.receiptObject else {
            throw Failure("the reply carries no signed receipt")
        }
        guard receiptObject["certificateHash"]?.stringValue == hash else { throw Failure("the receipt is not over the anchored hash \(hash)") }
        let attestedAt = (receiptObject["timestamp"] ?? container["attestedAt"] ?? container["timestamp"])?.stringValue
        let key: NodeKeyManifest.Key
        switch manifest.select(kid: receipt.effectiveKid, signedAt: attestedAt.flatMap(Timestamp.milliseconds)) {
        case .usable(let k): key = k
        case .rejected(let code, let why): throw Failure("\(code.rawValue): \(why)")
        }
        guard let publicKey = key.publicKey, let signature = receipt.signature.flatMap(ReceiptSignature.decodeSignature),
            let bytes = try? receipt.signedBytes(), Ed25519.isValidSignature(signature, of: bytes, publicKey: publicKey)
        else { throw Failure("the receipt's signature does not verify with key \(key.kid) of the node's manifest") }
        return Verified(
            kid: key.kid, publicKey: publicKey, attestedAt: attestedAt,
            attestationId: (receiptObject["attestationId"] ?? container["attestationId"])?.stringValue)
    }

    /// A manifest of the one key an `anchor.recorded` entry names (for re-checking it offline).
    public static func manifest(kid: String, publicKey: [UInt8]) -> NodeKeyManifest {
        NodeKeyManifest(nodeId: nil, activeKid: kid, keys: [
            NodeKeyManifest.Key(
                kid: kid, algorithm: "Ed25519", status: "active", isRevoked: false, validFrom: nil, validTo: nil, publicKey: publicKey, formatProblem: nil)
        ])
    }
}
