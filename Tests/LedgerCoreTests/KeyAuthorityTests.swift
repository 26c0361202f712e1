import CERKit
import Testing
@testable import LedgerCore

/// Key events count only when authorised: pinned, signed by the key a rotation retires, by an active key
/// for a revocation, or by a pinned root key. Everything else is ignored and reported.
@Suite struct KeyAuthorityTests {
    static func key(_ byte: UInt8) -> Ed25519SigningKey { Ed25519SigningKey(seed: [UInt8](repeating: byte, count: 32))! }
    static let k1 = key(1), k2 = key(2), k3 = key(3), attacker = key(66), root = key(99)
    static let pinnedK1 = TrustAnchors(pinnedKeys: [KeyFingerprint.of(k1.publicKey)])

    /// Ledger entries with consecutive indices from `first`, each on its body's key subject.
    static func entries(_ events: [(String, JSONValue)], from first: Int64 = 0, recordedAt: Int64 = 0) throws -> [LedgerEntry] {
        try events.enumerated().map { i, e in
            let kid = e.1["kid"]?.stringValue ?? "?"
            return try LedgerEntry(
                index: first + Int64(i), subject: NodeKeyHistory.subject(kid: kid), subjectIndex: 0, type: e.0, account: nil, recordedAt: recordedAt,
                body: e.1, payloadDigest: nil, prevSubjectLeaf: nil, idempotencyKey: nil)
        }
    }

    static func activation(_ kid: String, _ key: Ed25519SigningKey, supersedes: String? = nil, by: NodeKeyHistory.Authorizer? = nil) -> (String, JSONValue) {
        (NodeKeyHistory.activated, NodeKeyHistory.activationBody(kid: kid, key: key, validFrom: 1_000, nodeId: "n", supersedes: supersedes, authorizer: by))
    }

    static func rotation(_ old: String, _ oldKey: Ed25519SigningKey, to kid: String, _ key: Ed25519SigningKey) -> [(String, JSONValue)] {
        [
            (NodeKeyHistory.retired, NodeKeyHistory.retirementBody(kid: old, validTo: 69_000, nodeId: "n", successor: kid, authorizer: .node(kid: old, key: oldKey))),
            activation(kid, key, supersedes: old, by: .node(kid: old, key: oldKey)),
        ]
    }

    @Test func theStatementIsTheTypeSubjectAndCanonicalBodyWithoutSignatures() throws {
        let body = NodeKeyHistory.retirementBody(kid: "k1", validTo: 69_000, nodeId: "n", successor: "k2", authorizer: .node(kid: "k1", key: Self.k1))
        #expect(body["authorization"]?["kid"] == "k1")
        // Written out by hand: RFC 8785 sorts the members; the signatures are not covered.
        let expected = "evidence-ledger key event v1\nkey.retired\nkey:k1\n{\"kid\":\"k1\",\"nodeId\":\"n\",\"successor\":\"k2\",\"validTo\":\"1970-01-01T00:01:09.000Z\"}"
        #expect(NodeKeyHistory.statement(type: "key.retired", subject: "key:k1", body: body) == Array(expected.utf8))
        let signature = try #require(body["authorization"]?["signature"]?.stringValue.flatMap(Base64.decodeURL))
        #expect(Ed25519.isValidSignature(signature, of: Array(expected.utf8), publicKey: Self.k1.publicKey))
    }

    @Test func pinnedRotatedAndRevokedKeysFoldIntoTheManifest() throws {
        let events = try Self.entries(
            [Self.activation("k1", Self.k1)] + Self.rotation("k1", Self.k1, to: "k2", Self.k2)
                + [(NodeKeyHistory.revoked, NodeKeyHistory.revocationBody(kid: "k1", revokedAt: 5, reason: "leak", nodeId: "n", authorizer: .node(kid: "k2", key: Self.k2)))])
        let history = NodeKeyHistory.history(events: events.reversed(), anchors: Self.pinnedK1, nodeId: "n")
        #expect(history.ignored == [])
        #expect(history.keys.map(\.kid) == ["k1", "k2"])
        #expect(history.keys.map(\.authorisedBy) == ["pinned", "rotation from k1"])
        #expect(history.keys[0].isRevoked && history.keys[0].validTo == 69_000 && history.keys[0].successor == "k2")
        #expect(history.activeKey?.kid == "k2" && history.keys[1].activationIndex == 2)
        let manifest = history.manifest(nodeId: "n")
        #expect(manifest.activeKid == "k2" && manifest.keys.map(\.status) == ["revoked", "active"])
        // The published document reads back as the same keys (CERKit's reader is independent of the fold).
        let reread = try NodeKeyManifest(manifest.document())
        #expect(reread.keys.map(\.publicKey) == [Self.k1.publicKey, Self.k2.publicKey] && reread.activeKid == "k2")
        // Without the pin nothing counts, and each event says why.
        let unpinned = NodeKeyHistory.history(events: events, anchors: TrustAnchors(), nodeId: "n")
        #expect(unpinned.keys.isEmpty && unpinned.ignored.count == 4)
        #expect(unpinned.ignored[0].reason.contains("no authorization"))
        #expect(unpinned.ignored[1].reason == "the ledger has no authorised activation of k1")
    }

    @Test func eventsWrittenWithoutTheNodesKeysAreIgnoredAndReported() throws {
        let k1 = try Self.entries([Self.activation("k1", Self.k1)])
        func fold(_ events: [(String, JSONValue)], anchors: TrustAnchors = Self.pinnedK1) throws -> KeyHistory {
            NodeKeyHistory.history(events: k1 + (try Self.entries(events, from: 1)), anchors: anchors, nodeId: "n")
        }
        // A key activated by someone holding only the database: proof of possession, no authority.
        let rogue = try fold([Self.activation("k9", Self.attacker)])
        #expect(rogue.activeKey?.kid == "k1" && rogue.ignored.map(\.index) == [1])
        #expect(rogue.ignored[0].reason.contains("no authorization"))
        // Signed by itself while claiming to be k1's successor: k1 never retired in its favour.
        let claimed = try fold([Self.activation("k9", Self.attacker, supersedes: "k1", by: .node(kid: "k1", key: Self.attacker))])
        #expect(claimed.activeKey?.kid == "k1" && claimed.ignored[0].reason.contains("did not retire in favour of k9"))
        // A retirement or revocation signed by another key.
        let retired = try fold([(NodeKeyHistory.retired, NodeKeyHistory.retirementBody(kid: "k1", validTo: 1, nodeId: "n", successor: nil, authorizer: .node(kid: "k1", key: Self.attacker)))])
        #expect(retired.activeKey?.kid == "k1" && retired.ignored[0].reason == "its authorisation by k1 does not verify")
        let revoked = try fold([(NodeKeyHistory.revoked, NodeKeyHistory.revocationBody(kid: "k1", revokedAt: 1, reason: "x", nodeId: "n", authorizer: .node(kid: "k7", key: Self.attacker)))])
        #expect(revoked.activeKey?.kid == "k1" && revoked.ignored[0].reason.contains("k7 is not active"))
        // A properly signed event whose body was changed afterwards.
        var changed = NodeKeyHistory.retirementBody(kid: "k1", validTo: 69_000, nodeId: "n", successor: "k2", authorizer: .node(kid: "k1", key: Self.k1)).objectValue!
        changed["validTo"] = "2099-01-01T00:00:00.000Z"
        #expect(try fold([(NodeKeyHistory.retired, .object(changed))]).ignored[0].reason == "its authorisation by k1 does not verify")
        // A proof of possession by another key.
        var stolen = Self.activation("k2", Self.k2, supersedes: "k1", by: .node(kid: "k1", key: Self.k1)).1.objectValue!
        stolen["publicKey"] = .string(JSONString(Base64.encodeURL(Self.attacker.publicKey)))
        #expect(try fold([(NodeKeyHistory.activated, .object(stolen))]).ignored[0].reason.contains("proof of possession does not verify"))
        // A second activation of a kid, and a rotation replayed after its key was revoked.
        let again = try fold([Self.activation("k1", Self.k1)])
        #expect(again.ignored[0].reason == "key k1 was already activated at entry 0")
        // The pinned key replayed under another kid (to revive it, or to make a key without a file active).
        let replayed = try fold([Self.activation("k7", Self.k1)])
        #expect(replayed.activeKey?.kid == "k1" && replayed.ignored[0].reason == "its public key was already activated as k1 (entry 0)")
        // A root-signed event of another node that shares the root.
        let rootPinned = TrustAnchors(pinnedKeys: Self.pinnedK1.pinnedKeys, rootKeys: [KeyFingerprint.of(Self.root.publicKey)])
        let foreign = (NodeKeyHistory.activated, NodeKeyHistory.activationBody(kid: "k5", key: Self.k3, validFrom: 1, nodeId: "other", authorizer: .root(Self.root)))
        let crossNode = try fold([foreign], anchors: rootPinned)
        #expect(crossNode.activeKey?.kid == "k1" && crossNode.ignored[0].reason == "it names node other, not n")
        // A retired key cannot revoke; an active one can.
        let chain = try fold(Self.rotation("k1", Self.k1, to: "k2", Self.k2) + [
            (NodeKeyHistory.revoked, NodeKeyHistory.revocationBody(kid: "k2", revokedAt: 1, reason: "x", nodeId: "n", authorizer: .node(kid: "k1", key: Self.k1))),
        ])
        #expect(chain.activeKey?.kid == "k2" && chain.ignored.count == 1 && chain.ignored[0].reason.contains("k1 is not active"))
    }

    @Test func aPinnedRootKeyAuthorisesAnyKeyEventAndAnUnpinnedOneNone() throws {
        // k1 is lost: the root revokes it and activates k3.
        let events = try Self.entries([
            Self.activation("k1", Self.k1),
            (NodeKeyHistory.revoked, NodeKeyHistory.revocationBody(kid: "k1", revokedAt: 7, reason: "lost", nodeId: "n", authorizer: .root(Self.root))),
            Self.activation("k3", Self.k3, by: .root(Self.root)),
        ])
        let rooted = TrustAnchors(pinnedKeys: Self.pinnedK1.pinnedKeys, rootKeys: [KeyFingerprint.of(Self.root.publicKey)])
        let history = NodeKeyHistory.history(events: events, anchors: rooted, nodeId: "n")
        #expect(history.ignored == [] && history.activeKey?.kid == "k3" && history.keys[0].isRevoked)
        #expect(history.keys[1].authorisedBy == "root \(KeyFingerprint.of(Self.root.publicKey))")
        let unpinned = NodeKeyHistory.history(events: events, anchors: Self.pinnedK1, nodeId: "n")
        #expect(unpinned.activeKey?.kid == "k1" && unpinned.ignored.count == 2)
        #expect(unpinned.ignored.allSatisfy { $0.reason.contains("which is not pinned") })
    }

    @Test func aRootKeyAdoptsKeyEventsWrittenBeforeTheyWereSigned() throws {
        // Milestone 1 wrote key events without signatures (and without nodeId on retirements).
        let legacy = try Self.entries([
            (NodeKeyHistory.activated, ["kid": "k1", "alg": "Ed25519", "publicKey": .string(JSONString(Base64.encodeURL(Self.k1.publicKey))),
                "validFrom": "1970-01-01T00:00:01.000Z", "nodeId": "n"]),
            (NodeKeyHistory.retired, ["kid": "k1", "validTo": "1970-01-01T00:01:09.000Z"]),
            (NodeKeyHistory.activated, ["kid": "k2", "alg": "Ed25519", "publicKey": .string(JSONString(Base64.encodeURL(Self.k2.publicKey))),
                "validFrom": "1970-01-01T00:00:09.000Z", "nodeId": "n"]),
        ])
        let rooted = TrustAnchors(rootKeys: [KeyFingerprint.of(Self.root.publicKey)])
        #expect(NodeKeyHistory.history(events: legacy, anchors: rooted, nodeId: "n").keys.isEmpty)
        let adoptions = try Self.entries(
            legacy.compactMap { e in NodeKeyHistory.adoptionBody(of: e, nodeId: "n", root: Self.root).map { (e.type, $0) } }, from: 3)
        #expect(adoptions.count == 3 && adoptions[1].body["adopts"] == 1 && adoptions[1].body["nodeId"] == "n")
        let history = NodeKeyHistory.history(events: legacy + adoptions, anchors: rooted, nodeId: "n")
        #expect(history.keys.map(\.kid) == ["k1", "k2"] && history.activeKey?.kid == "k2")
        #expect(history.keys[0].validTo == 69_000 && history.keys[0].validFrom == 1_000)
        #expect(history.ignored.isEmpty && history.ignoredCount == 0 && history.adoptedCount == 3, "the restated events are no longer reported")
        // Not with an unpinned root.
        #expect(NodeKeyHistory.history(events: legacy + adoptions, anchors: Self.pinnedK1, nodeId: "n").keys.map(\.kid) == ["k1"])
    }

    @Test func aCheckpointCountsOnlyWithASignatureByAKeyValidForIt() throws {
        let events = try Self.entries([Self.activation("k1", Self.k1)] + Self.rotation("k1", Self.k1, to: "k2", Self.k2))
        var history = NodeKeyHistory.history(events: events, anchors: Self.pinnedK1, nodeId: "n")
        func note(_ size: UInt64, _ keys: [Ed25519SigningKey], origin: String = "log.example/a") throws -> [UInt8] {
            let body = Checkpoint(origin: origin, size: size, rootHash: [UInt8](repeating: 5, count: 32))
            return try SignedNote.sign(text: body.text, signers: try keys.map { try NoteSigner(name: origin, key: $0) })
        }
        #expect(try history.openCheckpoint(note(10, [Self.k1]), origin: "log.example/a", lastEntryTime: 60_000).size == 10)
        #expect(try history.openCheckpoint(note(10, [Self.k2]), origin: "log.example/a", lastEntryTime: 60_000).size == 10)
        // k1 retired (validTo 69 000): not over entries recorded after it; k2's activation is entry 2.
        #expect(throws: SignedNoteError.self) { try history.openCheckpoint(note(10, [Self.k1]), origin: "log.example/a", lastEntryTime: 70_000) }
        // Where the last entry's time is unknown (a checkpoint beyond the log), a retired key does not count.
        #expect(throws: SignedNoteError.self) { try history.openCheckpoint(note(10, [Self.k1]), origin: "log.example/a", lastEntryTime: nil) }
        #expect(throws: SignedNoteError("it is signed only by k2, whose activation (entry 2) is not in a tree of 2 entries", signedOnlyByKeysThatNoLongerCount: true)) {
            try history.openCheckpoint(note(2, [Self.k2]), origin: "log.example/a", lastEntryTime: 0)
        }
        // Another origin, even with a valid key.
        #expect(throws: SignedNoteError("it is for origin \"log.example/b\", not the configured \"log.example/a\"")) {
            try history.openCheckpoint(note(10, [Self.k2], origin: "log.example/b"), origin: "log.example/a", lastEntryTime: 0)
        }
        // A revoked key: nothing it signed counts; a stranger's key is not named.
        history = NodeKeyHistory.history(
            events: events + (try Self.entries(
                [(NodeKeyHistory.revoked, NodeKeyHistory.revocationBody(kid: "k1", revokedAt: 1, reason: "x", nodeId: "n", authorizer: .node(kid: "k2", key: Self.k2)))],
                from: 3)),
            anchors: Self.pinnedK1, nodeId: "n")
        #expect(throws: SignedNoteError("it is signed only by k1, which is revoked", signedOnlyByKeysThatNoLongerCount: true)) {
            try history.openCheckpoint(note(10, [Self.k1]), origin: "log.example/a", lastEntryTime: 0)
        }
        #expect(throws: SignedNoteError("it has no signature by an authorised node key")) {
            try history.openCheckpoint(note(10, [Self.attacker]), origin: "log.example/a", lastEntryTime: 0)
        }
        #expect(try history.openCheckpoint(note(10, [Self.k1, Self.k2]), origin: "log.example/a", lastEntryTime: 0).size == 10)
    }

    @Test func trustFilesAndFingerprints() throws {
        let fp = KeyFingerprint.of(Self.k1.publicKey)
        #expect(fp == "ed25519:" + Hex.encode(ProtocolHash.sha256(Self.k1.publicKey)) && KeyFingerprint.problem(fp) == nil)
        for bad in ["", "ed25519:", "ed25519:" + String(repeating: "A", count: 64), "sha256:" + String(repeating: "a", count: 64), fp + "0"] {
            #expect(KeyFingerprint.problem(bad) != nil, "\(bad)")
        }
        let anchors = try TrustAnchors(file: "# pins\npinned \(fp)  # k1\n\nroot \(fp)\n")
        #expect(anchors.pinnedKeys == [fp] && anchors.rootKeys == [fp])
        #expect(try TrustAnchors(file: anchors.fileText) == anchors)
        #expect(throws: TrustAnchors.FormatError.self) { try TrustAnchors(file: "pinned\n") }
        #expect(throws: TrustAnchors.FormatError.self) { try TrustAnchors(file: "trusted \(fp)\n") }
        #expect(throws: TrustAnchors.FormatError.self) { try TrustAnchors(file: "pinned ed25519:00\n") }
        #expect(NodeKeyHistory.kidProblem("../k1") != nil && NodeKeyHistory.kidProblem("k1") == nil && NodeKeyHistory.kidProblem("") != nil)
    }
}
