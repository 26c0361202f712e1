/// The live node's receipt (generation 3, `attestation.receipt.v1`, PROTOCOL.md §5.5).
public struct AttestationReceipt: Sendable, Equatable {
    public var attestationId: String
    public var attestedAt: String
    public var attestorKeyId: String
    public var certificateHash: String
    public var nodeId: String
    public var nodeRuntimeHash: String
    public var protocolVersion: String
    public var timestampProvider: String?
    public var timestampStatus: String?
    public var timestampType: String?

    public static let receiptVersion = "attestation.receipt.v1"

    public init(
        attestationId: String, attestedAt: String, attestorKeyId: String, certificateHash: String, nodeId: String,
        nodeRuntimeHash: String, protocolVersion: String, timestampProvider: String? = nil, timestampStatus: String? = nil,
        timestampType: String? = nil
    ) {
        self.attestationId = attestationId
        self.attestedAt = attestedAt
        self.attestorKeyId = attestorKeyId
        self.certificateHash = certificateHash
        self.nodeId = nodeId
        self.nodeRuntimeHash = nodeRuntimeHash
        self.protocolVersion = protocolVersion
        self.timestampProvider = timestampProvider
        self.timestampStatus = timestampStatus
        self.timestampType = timestampType
    }

    /// The receipt object exactly as it is signed and returned.
    public var json: JSONValue {
        var o = JSONObject()
        func s(_ v: String) -> JSONValue { .string(JSONString(v)) }
        o["attestationId"] = s(attestationId)
        o["attestedAt"] = s(attestedAt)
        o["attestorKeyId"] = s(attestorKeyId)
        o["certificateHash"] = s(certificateHash)
        o["nodeId"] = s(nodeId)
        o["nodeRuntimeHash"] = s(nodeRuntimeHash)
        o["protocolVersion"] = s(protocolVersion)
        o["receiptVersion"] = s(Self.receiptVersion)
        if let v = timestampProvider { o["timestampProvider"] = s(v) }
        if let v = timestampStatus { o["timestampStatus"] = s(v) }
        if let v = timestampType { o["timestampType"] = s(v) }
        return .object(o)
    }

    /// The receipt and its base64url signature.
    public func signed(with key: Ed25519SigningKey) throws(CanonicalizationError) -> (receipt: JSONValue, signature: String) {
        let receipt = json
        return (receipt, try ReceiptSignature.sign(receipt, with: key))
    }

    /// `nodeRuntimeHash`: SHA-256 of the canonical `{instance_id, node, sdk_version, version}` (§2.8).
    public static func nodeRuntimeHash(instanceId: String, node: String, sdkVersion: String, version: String) -> String {
        let fingerprint: JSONValue = [
            "instance_id": .string(JSONString(instanceId)), "node": .string(JSONString(node)),
            "sdk_version": .string(JSONString(sdkVersion)), "version": .string(JSONString(version)),
        ]
        return (try? ProtocolHash.canonical(fingerprint)) ?? ""
    }
}
