public import CERKit
import Foundation
public import LedgerCore
import Synchronization

/// Data-subject references: an integrator names the people a record is about (`X-Data-Subject` on an
/// attestation), so that one erasure request can later reach every record of a person. The log never holds
/// the reference itself, which is personal data it could not erase: a `cer.attested` body holds
/// `hmac-sha256:<hex>` of the account and the reference under the node's data-subject secret (a file in the
/// keys directory), which nobody without the secret can test a guess against. The same reference under
/// another account gives another digest.
public struct DataSubjects: Sendable {
    let secret: [UInt8]

    public init(secret: [UInt8]) { self.secret = secret }

    /// Loads the secret from `data-subject.secret` in the keys directory, creating it on first use (mode
    /// 0600, like a private key file). Every server of a ledger must share it.
    public static func load(keys: NodeKeyStore) throws(LedgerServerError) -> DataSubjects {
        let path = (keys.directory as NSString).appendingPathComponent("data-subject.secret")
        if let key = try KeyFile.read(path) { return DataSubjects(secret: key.seed) }
        try keys.prepareDirectory()
        return DataSubjects(secret: try KeyFile.create(path).seed)
    }

    /// The header an attestation names its data subjects in (repeat it for several).
    public static let header = "X-Data-Subject"
    /// Most references one record names.
    public static let maxPerRecord = 16

    /// The digest of `reference` for `account`.
    public func digest(account: String, reference: String) -> String {
        "hmac-sha256:" + Hex.encode(HMACSHA256.authenticate(Array("evidence-ledger data subject v1\n\(account)\n\(reference)".utf8), key: secret))
    }

    /// Checks a reference: 1 to 256 bytes of printable characters.
    public static func check(_ reference: String) throws(LedgerServerError) {
        guard !reference.isEmpty, reference.utf8.count <= 256, reference.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw LedgerServerError(.invalidField, "a data-subject reference is 1 to 256 bytes of printable characters")
        }
    }
}

/// The data-subject secret, loaded (or created) on first use, so a server that never sees a data-subject
/// reference never touches the file.
public final class DataSubjectSecret: Sendable {
    let keys: NodeKeyStore
    private let loaded = Mutex<DataSubjects?>(nil)

    public init(keys: NodeKeyStore) { self.keys = keys }

    public func subjects() throws -> DataSubjects {
        try loaded.withLock { cached in
            if let cached { return cached }
            let subjects = try DataSubjects.load(keys: keys)
            cached = subjects
            return subjects
        }
    }
}
