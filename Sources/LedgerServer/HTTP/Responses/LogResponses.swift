import CERKit
import LedgerCore
import LedgerStore

/// The JSON shapes of the verifiable log: checkpoints, witnesses.
extension LogRoutes {
    /// A checkpoint; with cosignatures, its `note` carries their lines and `witnessedBy` names the witnesses.
    static func json(_ c: StoredCheckpoint, cosignatures: [StoredCosignature]) -> JSONValue {
        var o: JSONObject = [
            "size": .number(Double(c.size)), "rootHash": .string(JSONString(Base64.encode(c.rootHash))),
            "signedAt": .string(JSONString(Timestamp.iso8601(milliseconds: c.signedAt))),
            "note": .string(JSONString(String(decoding: PostgresEventLog.cosignedNote(c.note, cosignatures), as: UTF8.self))),
        ]
        o["witnessedBy"] = .array(cosignatures.map { .string(JSONString($0.witness)) })
        return .object(o)
    }

    static func json(_ c: StoredCheckpoint) -> JSONValue { json(c, cosignatures: []) }

    static func json(_ s: CheckpointWitnesses.Status) -> JSONValue {
        [
            "name": .string(JSONString(s.witness.verifier.name)), "verifierKey": .string(JSONString(s.witness.verifier.encoded)),
            "url": .string(JSONString(s.witness.url)),
            "lastCosignedSize": s.lastCosignedSize.map { .number(Double($0)) } ?? .null,
            "lastProblem": s.lastProblem.map { .string(JSONString($0)) } ?? .null,
            "splitView": .bool(s.splitView), "refusals": .number(Double(s.refusals)),
        ]
    }
}
