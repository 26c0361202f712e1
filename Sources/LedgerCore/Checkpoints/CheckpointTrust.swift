public import CERKit

extension KeyHistory {
    /// Opens a signed checkpoint the way an auditor must: under the configured `origin` only, and with a
    /// signature by a key that was valid for it (its activation inside the tree, never revoked, and, once
    /// retired, only over entries recorded before its validity ended). `lastEntryTime` is the recording
    /// time of the checkpoint's last entry, when known.
    public func openCheckpoint(_ note: [UInt8], origin: String, lastEntryTime: Int64?) throws(SignedNoteError) -> Checkpoint {
        let parsed = try SignedNote(parsing: note)
        let body = try Checkpoint(parsing: parsed.text)
        guard body.origin == origin else { throw SignedNoteError("it is for origin \"\(body.origin)\", not the configured \"\(origin)\"") }
        let size = Int64(clamping: body.size)
        let valid = keys.filter { $0.signsCheckpoint(size: size, lastEntryTime: lastEntryTime) }
        let verification = parsed.verify(with: valid.map { NoteVerifier(name: origin, publicKey: $0.publicKey) })
        if let bad = verification.invalid.first { throw SignedNoteError("the signature of \(bad) does not verify") }
        if verification.isOpen { return body }
        // Name the keys that did sign, and why they do not count.
        var reasons: [String] = []
        for signature in parsed.signatures where signature.name == origin {
            guard let key = keys.first(where: { NoteVerifier(name: origin, publicKey: $0.publicKey).keyId == signature.keyId }) else { continue }
            if key.isRevoked {
                reasons.append("\(key.kid), which is revoked")
            } else if key.activationIndex >= size {
                reasons.append("\(key.kid), whose activation (entry \(key.activationIndex)) is not in a tree of \(size) entries")
            } else if let validTo = key.validTo {
                if let lastEntryTime {
                    reasons.append(
                        "\(key.kid), which was retired at \(Timestamp.iso8601(milliseconds: validTo)), before its last entry (\(Timestamp.iso8601(milliseconds: lastEntryTime)))")
                } else {
                    reasons.append("\(key.kid), which is retired (it counts only over entries whose time is known to be inside its validity)")
                }
            }
        }
        if reasons.isEmpty { throw SignedNoteError("it has no signature by an authorised node key") }
        throw SignedNoteError("it is signed only by \(reasons.joined(separator: " and by "))", signedOnlyByKeysThatNoLongerCount: true)
    }
}
