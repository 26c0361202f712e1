public import CERKit

/// The node's signing keys as the ledger records them: `key.activated`, `key.retired` and
/// `key.revoked` events on `key:<kid>` subjects, folded into the published key manifest.
public enum NodeKeyHistory {
    public static let activated = EventType.keyActivated
    public static let retired = EventType.keyRetired
    public static let revoked = EventType.keyRevoked
    /// Every event type this fold reads.
    public static let eventTypes = [activated, retired, revoked]

    /// The subject of a key's events.
    public static func subject(kid: String) -> String { Subject.key(kid) }

    /// Why a kid cannot be used, or nil. Kids appear in URLs, file names and signed notes.
    public static func kidProblem(_ kid: String) -> String? {
        let allowed = kid.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F || c == 0x2E
        }
        if kid.isEmpty || kid.utf8.count > 64 || !allowed || kid.hasPrefix(".") {
            return "a key id must be 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
        }
        return nil
    }

    /// Body of `key.activated`.
    public static func activationBody(kid: String, publicKey: [UInt8], validFrom: Int64, nodeId: String) -> JSONValue {
        [
            "kid": .string(JSONString(kid)), "alg": "Ed25519", "publicKey": .string(JSONString(Base64.encodeURL(publicKey))),
            "validFrom": .string(JSONString(Timestamp.iso8601(milliseconds: validFrom))), "nodeId": .string(JSONString(nodeId)),
        ]
    }

    /// Body of `key.retired`: the key stops signing; receipts it signed up to `validTo` stay valid.
    public static func retirementBody(kid: String, validTo: Int64) -> JSONValue {
        ["kid": .string(JSONString(kid)), "validTo": .string(JSONString(Timestamp.iso8601(milliseconds: validTo)))]
    }

    /// Body of `key.revoked`: nothing it signed is to be trusted any more.
    public static func revocationBody(kid: String, revokedAt: Int64, reason: String) -> JSONValue {
        [
            "kid": .string(JSONString(kid)), "revokedAt": .string(JSONString(Timestamp.iso8601(milliseconds: revokedAt))),
            "reason": .string(JSONString(reason)),
        ]
    }

    /// Folds key events (in ledger order) into a manifest: every key ever activated, in activation
    /// order, with its status; `activeKid` is the newest key that is neither retired nor revoked.
    public static func manifest(nodeId: String, events: [LedgerEntry]) -> NodeKeyManifest {
        var keys: [NodeKeyManifest.Key] = []
        var position: [String: Int] = [:]
        for event in events.sorted(by: { $0.index < $1.index }) {
            guard let kid = event.body["kid"]?.stringValue, event.subject == subject(kid: kid) else { continue }
            switch event.type {
            case activated:
                guard position[kid] == nil, let raw = event.body["publicKey"]?.stringValue else { continue }
                let publicKey = Base64.decodeURL(raw)
                position[kid] = keys.count
                keys.append(NodeKeyManifest.Key(
                    kid: kid, algorithm: "Ed25519", status: "active", isRevoked: false,
                    validFrom: event.body["validFrom"]?.stringValue.flatMap(Timestamp.milliseconds), validTo: nil,
                    publicKey: publicKey?.count == Ed25519.publicKeyLength ? publicKey : nil,
                    formatProblem: publicKey?.count == Ed25519.publicKeyLength ? nil : "key \(kid) was activated with a malformed public key"))
            case retired:
                guard let i = position[kid], !keys[i].isRevoked else { continue }
                keys[i].status = "deprecated"
                keys[i].validTo = event.body["validTo"]?.stringValue.flatMap(Timestamp.milliseconds)
            case revoked:
                guard let i = position[kid] else { continue }
                keys[i].status = "revoked"
                keys[i].isRevoked = true
            default:
                continue
            }
        }
        let active = keys.last(where: { $0.status == "active" && $0.formatProblem == nil })
        return NodeKeyManifest(nodeId: nodeId, activeKid: active?.kid, keys: keys)
    }
}

extension NodeKeyManifest {
    /// The published document (`/.well-known/nexart-node.json`): `nodeId`, `activeKid` and every key.
    public func document() -> JSONValue {
        var o = JSONObject()
        o["nodeId"] = nodeId.map { .string(JSONString($0)) } ?? .null
        o["activeKid"] = activeKid.map { .string(JSONString($0)) } ?? .null
        o["keys"] = .array(keys.map { $0.manifestEntry() })
        return .object(o)
    }
}
