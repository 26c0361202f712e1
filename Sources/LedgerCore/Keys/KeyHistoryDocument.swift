public import CERKit

/// The node's key events as one document (`GET /v1/log/keys`), so that anyone holding the pinned
/// fingerprints can derive the node's keys offline instead of trusting a published manifest:
/// `{"nodeId", "keyEvents": [entry…]}`, each entry with the fields of `GET /v1/log/entries/{index}`.
/// It authenticates every key it yields (no event counts without its signatures), but it cannot show
/// that no event was left out: a server could withhold a later revocation, as it could from a manifest.
/// Completeness comes with the verification packages' proofs.
public enum KeyHistoryDocument {
    /// Why a key history document cannot be read.
    public struct FormatError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The public form of an entry (`GET /v1/log/entries/{index}`): its fields and the leaf bytes.
    public static func entryJSON(_ entry: LedgerEntry) -> JSONValue {
        let leafData = (try? entry.canonicalBytes()) ?? []
        return [
            "index": .number(Double(entry.index)), "subject": .string(JSONString(entry.subject)),
            "subjectIndex": .number(Double(entry.subjectIndex)), "type": .string(JSONString(entry.type)),
            "account": entry.account.map { .string(JSONString($0)) } ?? .null,
            "recordedAt": .string(JSONString(Timestamp.iso8601(milliseconds: entry.recordedAt))), "body": entry.body,
            "payloadDigest": entry.payloadDigest.map { .string(JSONString(Hex.encode($0))) } ?? .null,
            "prevSubjectLeaf": entry.prevSubjectLeaf.map { .string(JSONString(Hex.encode($0))) } ?? .null,
            "leafHash": .string(JSONString(Base64.encode(entry.leafHash))),
            "leafData": .string(JSONString(Base64.encode(leafData))),
        ]
    }

    public static func document(nodeId: String, events: [LedgerEntry]) -> JSONValue {
        ["nodeId": .string(JSONString(nodeId)), "keyEvents": .array(events.map(entryJSON))]
    }

    /// The key events of a document; each entry's leaf hash is recomputed and must match the one given.
    public static func events(_ document: JSONValue) throws(FormatError) -> [LedgerEntry] {
        guard let list = document["keyEvents"]?.arrayValue else { throw FormatError(description: "a key history has a \"keyEvents\" array") }
        guard list.count <= 100_000 else { throw FormatError(description: "a key history has at most 100000 events") }
        var out: [LedgerEntry] = []
        for (n, e) in list.enumerated() {
            guard let index = e["index"]?.numberValue.flatMap({ Int64(exactly: $0) }), index >= 0, let subject = e["subject"]?.stringValue,
                let subjectIndex = e["subjectIndex"]?.numberValue.flatMap({ Int64(exactly: $0) }), subjectIndex >= 0,
                let type = e["type"]?.stringValue,
                let recordedAt = e["recordedAt"]?.stringValue.flatMap(Timestamp.milliseconds), let body = e["body"], body.objectValue != nil
            else { throw FormatError(description: "key event \(n) lacks index, subject, subjectIndex, type, recordedAt or body (indices are integers ≥ 0)") }
            let entry: LedgerEntry
            do {
                entry = try LedgerEntry(
                    index: index, subject: subject, subjectIndex: subjectIndex, type: type, account: e["account"]?.stringValue,
                    recordedAt: recordedAt, body: body, payloadDigest: e["payloadDigest"]?.stringValue.flatMap(Hex.decode),
                    prevSubjectLeaf: e["prevSubjectLeaf"]?.stringValue.flatMap(Hex.decode), idempotencyKey: nil)
            } catch {
                throw FormatError(description: "key event \(n) cannot be canonicalised: \(error)")
            }
            if let given = e["leafHash"]?.stringValue, Base64.decode(given) != entry.leafHash {
                throw FormatError(description: "key event \(n) (entry \(index)): its leaf hash does not match its fields")
            }
            out.append(entry)
        }
        return out
    }
}
