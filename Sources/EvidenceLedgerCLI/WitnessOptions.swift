import ArgumentParser
import LedgerCore

/// The witnesses an auditor trusts: their cosignature verifier keys and how many must cosign.
struct WitnessOptions: ParsableArguments {
    @Option(name: .customLong("witness-key"), help: "A trusted witness's verifier key, <name>+<key id>+<key> (type 0x04); repeatable.")
    var keys: [String] = []
    @Option(name: .customLong("witness-quorum"), help: "How many trusted witnesses must cosign (default 1 when --witness-key is given).")
    var quorum: Int?

    /// The keys and quorum, or a usage error naming the problem.
    func resolve() throws -> (keys: [NoteVerifier], quorum: Int) {
        var parsed: [NoteVerifier] = []
        for key in keys {
            do {
                let v = try NoteVerifier(parsing: key)
                guard v.type == NoteVerifier.cosignatureV1 else { throw SignedNoteError("a witness key has type 0x04 (a tlog cosignature key)") }
                parsed.append(v)
            } catch {
                throw ValidationError("--witness-key \(key.prefix(80)): \(error)")
            }
        }
        if let quorum {
            guard !parsed.isEmpty else { throw ValidationError("--witness-quorum needs at least one --witness-key") }
            guard (1...parsed.count).contains(quorum) else {
                throw ValidationError("--witness-quorum must be from 1 to the \(parsed.count) witness keys given")
            }
        }
        return (parsed, quorum ?? 1)
    }
}
