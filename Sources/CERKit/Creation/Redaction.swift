/// Verifiable redaction (the SDK's `redactBeforeSeal` and `exportVerifiableRedacted`).
public enum Redaction {
    /// Snapshot fields that can be redacted without breaking the snapshot schema.
    public static let redactablePaths: Set<String> = ["input", "output"]

    /// Replaces each path's value with `{_redacted: true, hash}` (hash of the original by the input/output
    /// rule) and recomputes its `…Hash` from the envelope, so the sealed bundle still verifies.
    public static func redactBeforeSeal(_ snapshot: JSONObject, paths: [String]) throws(CreationError) -> JSONObject {
        let profile = CanonicalizationProfile.forProtocolVersion(snapshot["protocolVersion"]?.stringValue ?? "") ?? .nexartV1
        var out = snapshot
        for path in paths {
            guard redactablePaths.contains(path) else {
                throw CreationError(.schemaError, "\(path) cannot be redacted before sealing (only input and output)")
            }
            guard let value = snapshot[path], !value.isNull else { throw CreationError(.schemaError, "snapshot.\(path) is missing") }
            if value["_redacted"]?.boolValue == true { continue }
            do {
                var envelope = JSONObject()
                envelope["_redacted"] = true
                envelope["hash"] = .string(JSONString(try ProtocolHash.value(value, profile: profile)))
                out[path] = .object(envelope)
                out["\(path)Hash"] = .string(JSONString(try ProtocolHash.value(.object(envelope), profile: profile)))
            } catch {
                throw CreationError(.canonicalizationError, error.message)
            }
        }
        return out
    }

    /// A new, independently verifiable bundle with the paths redacted; the original's hash is kept in
    /// `meta.provenance.originalCertificateHash` as a reference (it is not part of the new hash).
    public static func exportVerifiableRedacted(_ bundle: JSONObject, paths: [String], redactedAt: String? = nil)
        throws(CreationError) -> (bundle: JSONObject, originalCertificateHash: String)
    {
        guard let snapshot = bundle["snapshot"]?.objectValue, let createdAt = bundle["createdAt"]?.stringValue,
            let original = bundle["certificateHash"]?.stringValue
        else {
            throw CreationError(.schemaError, "the bundle has no snapshot, createdAt or certificateHash")
        }
        var meta = bundle["meta"]?.objectValue ?? JSONObject()
        var provenance = JSONObject()
        provenance["kind"] = "verifiable_redaction"
        provenance["originalCertificateHash"] = .string(JSONString(original))
        provenance["redactedPaths"] = .array(paths.map { .string(JSONString($0)) })
        if let redactedAt { provenance["redactedAt"] = .string(JSONString(redactedAt)) }
        meta["provenance"] = .object(provenance)
        meta["attestation"] = nil  // the original's receipt does not cover the new record
        let redacted = try redactBeforeSeal(snapshot, paths: paths)
        let signals = bundle["context"]?["signals"]?.arrayValue
        let sealed = try CERBuilder.seal(snapshot: redacted, createdAt: createdAt, signals: signals, meta: meta)
        return (sealed, original)
    }
}
