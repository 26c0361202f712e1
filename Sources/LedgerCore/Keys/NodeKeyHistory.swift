public import CERKit

/// The node's signing keys as the ledger records them: `key.activated`, `key.retired` and `key.revoked`
/// events on `key:<kid>` subjects. An event counts only when it is authorised (docs/entry-format.md):
/// - the first key, or any key whose fingerprint the operator pinned, is authorised by the pin;
/// - a rotation's activation is signed by the key it retires, whose retirement names it as successor,
///   and carries a proof of possession by the new key;
/// - a retirement is signed by the retiring key, a revocation by an active key;
/// - an offline root key whose fingerprint is pinned may authorise any key event.
/// Everything else is ignored and reported: an operator with database access can append entries, but
/// cannot make a key the node trusts.
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

    // MARK: Signed statements

    /// Who signs a key event's authorisation.
    public enum Authorizer: Sendable {
        /// A node key, by kid (the retiring key of a rotation; the key itself or an active key otherwise).
        case node(kid: String, key: Ed25519SigningKey)
        /// An offline root key; its public key travels in the event, its fingerprint must be pinned.
        case root(Ed25519SigningKey)
    }

    /// The members a signature covers everything but.
    static let signatureMembers: Set<String> = ["authorization", "proofOfPossession"]

    /// The bytes a key event's signatures cover: a context line, the event type, the subject, then the
    /// body without its `authorization` and `proofOfPossession` members, as RFC 8785 canonical JSON.
    public static func statement(type: String, subject: String, body: JSONValue) -> [UInt8] {
        let covered = JSONValue.object((body.objectValue ?? JSONObject()).removing(signatureMembers))
        let canonical = (try? CanonicalJSON.encode(covered, profile: .jcsV1)) ?? []
        return Array("evidence-ledger key event v1\n\(type)\n\(subject)\n".utf8) + canonical
    }

    /// `body` with `authorization` signed by `authorizer` (and `proofOfPossession` by `possessing`).
    static func signed(type: String, kid: String, body: JSONObject, authorizer: Authorizer?, possessing: Ed25519SigningKey? = nil) -> JSONValue {
        var body = body
        let message = statement(type: type, subject: subject(kid: kid), body: .object(body))
        if let possessing { body["proofOfPossession"] = .string(JSONString(Base64.encodeURL(possessing.sign(message)))) }
        switch authorizer {
        case .node(let by, let key)?:
            body["authorization"] = ["kid": .string(JSONString(by)), "signature": .string(JSONString(Base64.encodeURL(key.sign(message))))]
        case .root(let key)?:
            body["authorization"] = [
                "root": .string(JSONString(Base64.encodeURL(key.publicKey))), "signature": .string(JSONString(Base64.encodeURL(key.sign(message)))),
            ]
        case nil:
            break
        }
        return .object(body)
    }

    /// Body of `key.activated`, with the new key's proof of possession. The first key needs no
    /// authoriser (it is pinned); a rotation's new key is authorised by the key it replaces (`supersedes`).
    public static func activationBody(
        kid: String, key: Ed25519SigningKey, validFrom: Int64, nodeId: String, supersedes: String? = nil, authorizer: Authorizer? = nil
    ) -> JSONValue {
        var o: JSONObject = [
            "kid": .string(JSONString(kid)), "alg": "Ed25519", "publicKey": .string(JSONString(Base64.encodeURL(key.publicKey))),
            "validFrom": .string(JSONString(Timestamp.iso8601(milliseconds: validFrom))), "nodeId": .string(JSONString(nodeId)),
        ]
        if let supersedes { o["supersedes"] = .string(JSONString(supersedes)) }
        return signed(type: activated, kid: kid, body: o, authorizer: authorizer, possessing: key)
    }

    /// Body of `key.retired`: the key stops signing; what it signed up to `validTo` stays valid. A
    /// rotation names the `successor` the retiring key authorises.
    public static func retirementBody(kid: String, validTo: Int64, nodeId: String, successor: String?, authorizer: Authorizer) -> JSONValue {
        var o: JSONObject = [
            "kid": .string(JSONString(kid)), "validTo": .string(JSONString(Timestamp.iso8601(milliseconds: validTo))),
            "nodeId": .string(JSONString(nodeId)),
        ]
        if let successor { o["successor"] = .string(JSONString(successor)) }
        return signed(type: retired, kid: kid, body: o, authorizer: authorizer)
    }

    /// Body of `key.revoked`: nothing the key signed is to be trusted any more.
    public static func revocationBody(kid: String, revokedAt: Int64, reason: String, nodeId: String, authorizer: Authorizer) -> JSONValue {
        let o: JSONObject = [
            "kid": .string(JSONString(kid)), "revokedAt": .string(JSONString(Timestamp.iso8601(milliseconds: revokedAt))),
            "reason": .string(JSONString(reason)), "nodeId": .string(JSONString(nodeId)),
        ]
        return signed(type: revoked, kid: kid, body: o, authorizer: authorizer)
    }

    /// A root-signed restatement of a key event written before key events were signed (`keys adopt`):
    /// the same members, the node's id where it was missing, and `adopts` naming the entry restated.
    /// Nil for an event that is not a key event of a kid.
    public static func adoptionBody(of legacy: LedgerEntry, nodeId: String, root: Ed25519SigningKey) -> JSONValue? {
        guard eventTypes.contains(legacy.type), let kid = legacy.body["kid"]?.stringValue, legacy.subject == subject(kid: kid),
            var body = legacy.body.objectValue?.removing(signatureMembers)
        else { return nil }
        if body["nodeId"] == nil { body["nodeId"] = .string(JSONString(nodeId)) }
        body["adopts"] = .number(Double(legacy.index))
        return signed(type: legacy.type, kid: kid, body: body, authorizer: .root(root))
    }

    // MARK: The fold

    /// Folds the key events of node `nodeId` (any order; read in ledger order) into the history of
    /// authorised keys. An event naming another node is ignored: a signature is not moved between nodes
    /// that share a root key.
    public static func history(events: [LedgerEntry], anchors: TrustAnchors, nodeId: String) -> KeyHistory {
        var history = KeyHistory(anchors: anchors, nodeId: nodeId)
        history.fold(events)
        return history
    }
}

/// The keys a node may use, as authorised key events made them, and the events that were ignored.
public struct KeyHistory: Sendable, Equatable {
    /// One authorised key.
    public struct Key: Sendable, Equatable {
        public var kid: String
        public var publicKey: [UInt8]
        /// The ledger index of its activation: a checkpoint it signs must contain it.
        public var activationIndex: Int64
        public var validFrom: Int64
        /// End of validity after a retirement (epoch ms).
        public var validTo: Int64?
        /// The kid its retirement authorised as successor.
        public var successor: String?
        public var revokedAt: Int64?
        /// How the activation was authorised: `pinned`, `rotation from k1`, `root ed25519:…`.
        public var authorisedBy: String
        public var isRetired: Bool { validTo != nil }
        public var isRevoked: Bool { revokedAt != nil }
        public var isActive: Bool { !isRetired && !isRevoked }
        public var status: String { isRevoked ? "revoked" : isRetired ? "deprecated" : "active" }
        public var fingerprint: String { KeyFingerprint.of(publicKey) }

        /// Whether a signature by this key counts for a checkpoint of `size` entries whose last entry was
        /// recorded at `lastEntryTime`: its activation is inside the tree, it is not revoked, and a
        /// retired key signs only entries recorded before its validity ended (and nothing whose last
        /// entry's time is unknown).
        public func signsCheckpoint(size: Int64, lastEntryTime: Int64?) -> Bool {
            guard !isRevoked, activationIndex < size else { return false }
            if let validTo {
                guard let lastEntryTime, lastEntryTime <= validTo else { return false }
            }
            return true
        }
    }

    /// A key event that does not count, and why.
    public struct IgnoredEvent: Sendable, Equatable, CustomStringConvertible {
        public var index: Int64
        public var type: String
        public var kid: String?
        public var reason: String
        public var description: String { "entry \(index): \(type) of \(kid ?? "no kid") is ignored: \(reason)" }
    }

    /// What authorises events, and the node they must name.
    public let anchors: TrustAnchors
    public let nodeId: String
    /// The index of the last event folded (the next fold continues after it).
    public private(set) var lastIndex: Int64 = -1
    /// Authorised keys in activation order.
    public private(set) var keys: [Key] = []
    /// Ignored events, the first `ignoredKept` of them (a flood of inserted rows costs no memory).
    public private(set) var ignored: [IgnoredEvent] = []
    /// How many events were ignored in all.
    public private(set) var ignoredCount = 0
    /// Unsigned events restated by an authorised one (`keys adopt`): no longer counted as ignored.
    public private(set) var adoptedCount = 0
    public static let ignoredKept = 1000

    public init(anchors: TrustAnchors = TrustAnchors(), nodeId: String = "") {
        self.anchors = anchors
        self.nodeId = nodeId
    }

    /// Folds further events; those at or before `lastIndex` were folded already and are skipped.
    public mutating func fold(_ events: [LedgerEntry]) {
        for event in events.sorted(by: { $0.index < $1.index }) where event.index > lastIndex {
            lastIndex = event.index
            guard NodeKeyHistory.eventTypes.contains(event.type) else { continue }
            if let reason = apply(event, anchors: anchors) {
                ignoredCount += 1
                if ignored.count < Self.ignoredKept {
                    ignored.append(IgnoredEvent(index: event.index, type: event.type, kid: event.body["kid"]?.stringValue, reason: reason))
                }
            } else if let restated = event.body["adopts"]?.numberValue.flatMap({ Int64(exactly: $0) }),
                let position = ignored.firstIndex(where: { $0.index == restated && $0.type == event.type && $0.kid == event.body["kid"]?.stringValue })
            {
                // An unsigned event from before key events were signed, restated by an authorised one.
                ignored.remove(at: position)
                ignoredCount -= 1
                adoptedCount += 1
            }
        }
    }

    /// The newest key that is neither retired nor revoked.
    public var activeKey: Key? { keys.last(where: \.isActive) }

    public func key(_ kid: String) -> Key? { keys.first { $0.kid == kid } }

    /// The published manifest: every authorised key with its status.
    public func manifest(nodeId: String) -> NodeKeyManifest {
        NodeKeyManifest(
            nodeId: nodeId, activeKid: activeKey?.kid,
            keys: keys.map { k in
                NodeKeyManifest.Key(
                    kid: k.kid, algorithm: "Ed25519", status: k.status, isRevoked: k.isRevoked, validFrom: k.validFrom, validTo: k.validTo,
                    publicKey: k.publicKey, formatProblem: nil)
            })
    }

    /// Applies one event; returns why it is ignored, or nil when it counts.
    mutating func apply(_ event: LedgerEntry, anchors: TrustAnchors) -> String? {
        guard let kid = event.body["kid"]?.stringValue else { return "its body names no kid" }
        guard event.subject == NodeKeyHistory.subject(kid: kid) else { return "it is recorded on \(event.subject), not key:\(kid)" }
        guard let node = event.body["nodeId"]?.stringValue, node == nodeId else {
            return "it names node \(event.body["nodeId"]?.stringValue ?? "none"), not \(nodeId)"
        }
        let statement = NodeKeyHistory.statement(type: event.type, subject: event.subject, body: event.body)
        let position = keys.firstIndex { $0.kid == kid }
        switch event.type {
        case NodeKeyHistory.activated:
            if let position { return "key \(kid) was already activated at entry \(keys[position].activationIndex)" }
            guard let raw = event.body["publicKey"]?.stringValue, let publicKey = Base64.decodeURL(raw), publicKey.count == Ed25519.publicKeyLength else {
                return "its public key is not base64url of 32 bytes"
            }
            guard let validFrom = event.body["validFrom"]?.stringValue.flatMap(Timestamp.milliseconds) else { return "its validFrom is not a timestamp" }
            let fingerprint = KeyFingerprint.of(publicKey)
            // A public key is a key once: a pin or a rotation cannot be replayed under another kid to
            // revive a retired or revoked key, or to make a key without a private key file the active one.
            if let earlier = keys.first(where: { $0.publicKey == publicKey }) {
                return "its public key was already activated as \(earlier.kid) (entry \(earlier.activationIndex))"
            }
            let possession = event.body["proofOfPossession"]?.stringValue.flatMap(Base64.decodeURL)
            if let possession, !Ed25519.isValidSignature(possession, of: statement, publicKey: publicKey) {
                return "its proof of possession does not verify with the key it activates"
            }
            let authorisedBy: String
            if anchors.pinnedKeys.contains(fingerprint) {
                authorisedBy = "pinned"
            } else {
                switch authority(event, statement) {
                case .failure(let reason): return reason.text
                case .success(.root(let fingerprint)):
                    // The root vouches for the key itself (it may adopt a key whose private part is gone).
                    guard anchors.rootKeys.contains(fingerprint) else { return "it is signed by root key \(fingerprint), which is not pinned" }
                    authorisedBy = "root \(fingerprint)"
                case .success(.node(let by)):
                    guard possession != nil else { return "it carries no proof of possession by the new key" }
                    guard let old = key(by), old.successor == kid, !old.isRevoked else {
                        return "it is signed by \(by), which did not retire in favour of \(kid); a new key is authorised by the key it replaces or by a root key"
                    }
                    guard authority(event, statement, verifiedWith: old.publicKey) else { return "its authorisation by \(by) does not verify" }
                    authorisedBy = "rotation from \(by)"
                }
            }
            keys.append(Key(
                kid: kid, publicKey: publicKey, activationIndex: event.index, validFrom: validFrom, validTo: nil,
                successor: nil, revokedAt: nil, authorisedBy: authorisedBy))
        case NodeKeyHistory.retired, NodeKeyHistory.revoked:
            guard let position else { return "the ledger has no authorised activation of \(kid)" }
            let target = keys[position]
            let isRetirement = event.type == NodeKeyHistory.retired
            if target.isRevoked { return "key \(kid) is already revoked" }
            if isRetirement, target.isRetired { return "key \(kid) is already retired" }
            switch authority(event, statement) {
            case .failure(let reason): return reason.text
            case .success(.root(let fingerprint)):
                guard anchors.rootKeys.contains(fingerprint) else { return "it is signed by root key \(fingerprint), which is not pinned" }
            case .success(.node(let by)):
                // A key retires itself; any active key may revoke (the compromised one included).
                guard let signer = key(by), isRetirement ? by == kid && signer.isActive : signer.isActive else {
                    return isRetirement
                        ? "a retirement is signed by the retiring key while it is active, or by a root key; it is signed by \(by)"
                        : "a revocation is signed by an active key or by a root key; \(by) is not active"
                }
                guard authority(event, statement, verifiedWith: signer.publicKey) else { return "its authorisation by \(by) does not verify" }
            }
            if isRetirement {
                guard let validTo = event.body["validTo"]?.stringValue.flatMap(Timestamp.milliseconds) else { return "its validTo is not a timestamp" }
                keys[position].validTo = validTo
                keys[position].successor = event.body["successor"]?.stringValue
            } else {
                keys[position].revokedAt = event.body["revokedAt"]?.stringValue.flatMap(Timestamp.milliseconds) ?? event.recordedAt
            }
        default:
            return "it is not a key event"
        }
        return nil
    }

    enum Signer { case node(String), root(String) }

    /// Who the event's `authorization` names; a root signature is verified here (its key is inside).
    func authority(_ event: LedgerEntry, _ statement: [UInt8]) -> Result<Signer, Reason> {
        guard let auth = event.body["authorization"]?.objectValue else {
            return .failure(Reason("it carries no authorization: it is signed neither by a node key nor by a root key"))
        }
        if let root = auth["root"]?.stringValue {
            guard let publicKey = Base64.decodeURL(root), publicKey.count == Ed25519.publicKeyLength,
                let signature = auth["signature"]?.stringValue.flatMap(Base64.decodeURL),
                Ed25519.isValidSignature(signature, of: statement, publicKey: publicKey)
            else { return .failure(Reason("its root signature does not verify")) }
            return .success(.root(KeyFingerprint.of(publicKey)))
        }
        guard let by = auth["kid"]?.stringValue else { return .failure(Reason("its authorization names neither a kid nor a root key")) }
        return .success(.node(by))
    }

    func authority(_ event: LedgerEntry, _ statement: [UInt8], verifiedWith publicKey: [UInt8]) -> Bool {
        guard let signature = event.body["authorization"]?["signature"]?.stringValue.flatMap(Base64.decodeURL) else { return false }
        return Ed25519.isValidSignature(signature, of: statement, publicKey: publicKey)
    }

    struct Reason: Error, ExpressibleByStringLiteral {
        var text: String
        init(_ text: String) { self.text = text }
        init(stringLiteral text: String) { self.text = text }
    }
}

/// A key's fingerprint, as operators pin it: `ed25519:` and the hex SHA-256 of the raw 32-byte public key.
public enum KeyFingerprint {
    public static func of(_ publicKey: [UInt8]) -> String { "ed25519:" + Hex.encode(ProtocolHash.sha256(publicKey)) }

    /// Why `text` is not a fingerprint, or nil.
    public static func problem(_ text: String) -> String? {
        guard text.hasPrefix("ed25519:"), text.utf8.count == 8 + 64, let raw = Hex.decode(String(text.dropFirst(8))), raw.count == 32,
            text == text.lowercased()
        else { return "\"\(text.prefix(80))\" is not a key fingerprint (ed25519: and 64 lowercase hex digits)" }
        return nil
    }
}

/// What the node and its auditors trust without the database: the fingerprints of pinned node keys (the
/// first key, like a TUF root) and of offline root keys that may authorise any key event.
public struct TrustAnchors: Sendable, Equatable {
    public var pinnedKeys: Set<String>
    public var rootKeys: Set<String>

    public init(pinnedKeys: Set<String> = [], rootKeys: Set<String> = []) {
        self.pinnedKeys = pinnedKeys
        self.rootKeys = rootKeys
    }

    public var isEmpty: Bool { pinnedKeys.isEmpty && rootKeys.isEmpty }

    public func union(_ other: TrustAnchors) -> TrustAnchors {
        TrustAnchors(pinnedKeys: pinnedKeys.union(other.pinnedKeys), rootKeys: rootKeys.union(other.rootKeys))
    }

    /// Why anchors cannot be read.
    public struct FormatError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Reads a trust file: one `pinned <fingerprint>` or `root <fingerprint>` per line; `#` starts a comment.
    public init(file text: String) throws(FormatError) {
        self.init()
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            if words.isEmpty { continue }
            guard words.count == 2, words[0] == "pinned" || words[0] == "root" else {
                throw FormatError(description: "line \(n + 1): expected `pinned <fingerprint>` or `root <fingerprint>`")
            }
            if let problem = KeyFingerprint.problem(words[1]) { throw FormatError(description: "line \(n + 1): \(problem)") }
            if words[0] == "pinned" { pinnedKeys.insert(words[1]) } else { rootKeys.insert(words[1]) }
        }
    }

    /// The trust file's text.
    public var fileText: String {
        pinnedKeys.sorted().map { "pinned \($0)\n" }.joined() + rootKeys.sorted().map { "root \($0)\n" }.joined()
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
