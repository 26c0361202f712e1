import CERKit
import LedgerCore
import LedgerStore

/// The JSON shapes of the verifiable log: checkpoints.
extension LogRoutes {
    static func json(_ c: StoredCheckpoint) -> JSONValue {
        [
            "size": .number(Double(c.size)), "rootHash": .string(JSONString(Base64.encode(c.rootHash))),
            "signedAt": .string(JSONString(Timestamp.iso8601(milliseconds: c.signedAt))),
            "note": .string(JSONString(String(decoding: c.note, as: UTF8.self))),
        ]
    }
}
