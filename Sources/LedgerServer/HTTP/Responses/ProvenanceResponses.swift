import CERKit
import LedgerCore
import LedgerStore

/// The JSON shapes of provenance: one event.
extension ProjectionRoutes {
    static func entryJSON(_ e: LedgerEntry, publicURL: String) -> JSONObject {
        [
            "ledgerIndex": .number(Double(e.index)), "subject": .string(JSONString(e.subject)), "subjectIndex": .number(Double(e.subjectIndex)),
            "type": .string(JSONString(e.type)), "account": e.account.map { .string(JSONString($0)) } ?? .null,
            "recordedAt": .string(JSONString(Timestamp.iso8601(milliseconds: e.recordedAt))), "body": e.body,
            "leafHash": .string(JSONString(Base64.encode(e.leafHash))), "hasPayload": .bool(e.payloadDigest != nil),
            "inclusionProofUrl": .string(JSONString(publicURL + "/v1/log/proof/inclusion?index=\(e.index)")),
        ]
    }
}
