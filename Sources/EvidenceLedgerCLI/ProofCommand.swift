import ArgumentParser
import CERKit
import LedgerCore

/// `evidence-ledger proof verify`: checks a log proof offline against signed checkpoints and verifier keys.
struct ProofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proof", abstract: "Check verifiable-log proofs offline.", subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Verify an inclusion or consistency proof against signed checkpoints and a verifier key.",
            discussion: """
                Inclusion: --proof is a c2sp.org/tlog-proof file (it carries its checkpoint) or the JSON of
                GET /v1/log/proof/inclusion; the leaf comes from --entry (the JSON of GET /v1/log/entries/N,
                whose leafData is hashed here), --leaf-data (raw leaf bytes) or --leaf-hash (base64).
                Consistency: --proof is the text or JSON of GET /v1/log/proof/consistency, with --old-checkpoint
                and --checkpoint (signed notes). JSON proofs embed their checkpoints when the log had one.
                Keys are signed-note verifier keys (<origin>+<key id>+<base64>), from GET /v1/log.
                Nothing is fetched. Exit codes: 0 verified, 1 not verified, 2 unreadable input or usage error.
                """)

        @Option(name: .long, help: "The proof file (- reads standard input).") var proof: String
        @Option(name: .customLong("key"), help: "A trusted verifier key (repeatable).") var keys: [String] = []
        @Option(name: .long, help: "The log's origin (default: the first key's name).") var origin: String?
        @Option(name: .long, help: "The (newer) signed checkpoint, when the proof does not carry it.") var checkpoint: String?
        @Option(name: .customLong("old-checkpoint"), help: "The older signed checkpoint of a consistency proof.") var oldCheckpoint: String?
        @Option(name: .long, help: "The entry JSON from GET /v1/log/entries/N.") var entry: String?
        @Option(name: .customLong("leaf-data"), help: "A file with the leaf's exact bytes.") var leafData: String?
        @Option(name: .customLong("leaf-hash"), help: "The leaf hash, base64.") var leafHash: String?
        @OptionGroup var witnessing: WitnessOptions

        struct Unreadable: Error, CustomStringConvertible { var description: String }

        func run() throws {
            let verifiers: [NoteVerifier]
            do {
                verifiers = try keys.map { k throws(SignedNoteError) in try NoteVerifier(parsing: k) }
            } catch {
                throw usage("a --key is not a verifier key: \(error)")
            }
            guard let origin = origin ?? verifiers.first?.name else { throw usage("give at least one --key") }
            let witnesses: (keys: [NoteVerifier], quorum: Int)
            do { witnesses = try witnessing.resolve() } catch { throw usage("\(error)") }
            let bytes: [UInt8]
            do {
                bytes = try FileOutput.read(proof, limit: 1 << 20)
            } catch {
                throw usage("cannot read \(proof): \(error)")
            }
            do {
                var (message, note) = try verify(bytes, origin: origin, verifiers: verifiers)
                if !witnesses.keys.isEmpty {
                    let names = try WitnessQuorum.check(note, witnesses: witnesses.keys, quorum: witnesses.quorum)
                    message += ", cosigned by \(names.joined(separator: ", "))"
                }
                FileOutput.standardOutput("VERIFIED: \(message)\n")
            } catch let error as SignedNoteError {
                FileOutput.standardOutput("NOT VERIFIED: \(error)\n")
                throw ExitCode(1)
            } catch let error as Unreadable {
                throw usage(error.description)
            }
        }

        func usage(_ sentence: String) -> ExitCode {
            FileOutput.standardError("evidence-ledger proof verify: \(sentence)\n")
            return ExitCode(2)
        }

        func file(_ path: String?, _ what: String) throws -> [UInt8]? {
            guard let path else { return nil }
            do {
                return try FileOutput.read(path, limit: 1 << 20)
            } catch {
                throw Unreadable(description: "cannot read the \(what) \(path): \(error)")
            }
        }

        /// What was verified, and the (newer) checkpoint note it was verified against.
        func verify(_ bytes: [UInt8], origin: String, verifiers: [NoteVerifier]) throws -> (String, [UInt8]) {
            let text = String(decoding: bytes.prefix(64), as: UTF8.self)
            if text.hasPrefix(TlogProof.header) {
                return try inclusion(try TlogProof(parsing: bytes), origin: origin, verifiers: verifiers)
            }
            if text.hasPrefix(ConsistencyProofText.header) {
                return try consistency(try ConsistencyProofText(parsing: bytes), embedded: (nil, nil), origin: origin, verifiers: verifiers)
            }
            guard let json = try? JSONParser.parse(bytes), let o = json.objectValue else {
                throw Unreadable(description: "the proof is neither a tlog-proof, a consistency proof nor JSON")
            }
            func hashes(_ v: JSONValue?) throws -> [[UInt8]] {
                try (v?.arrayValue ?? []).map { h in
                    guard let s = h.stringValue, let d = Base64.decode(s), d.count == 32 else { throw Unreadable(description: "a proof hash is not base64 of 32 bytes") }
                    return d
                }
            }
            func size(_ key: String) throws -> UInt64 {
                guard let d = o[key]?.numberValue, d >= 0, d.rounded() == d, d < 9e15 else { throw Unreadable(description: "the proof has no \(key)") }
                return UInt64(d)
            }
            func note(_ key: String) -> [UInt8]? { o[key]?.stringValue.map { Array($0.utf8) } }
            if o["index"] != nil {
                guard let cp = try file(checkpoint, "checkpoint") ?? note("checkpoint") else {
                    throw Unreadable(description: "the proof carries no checkpoint; give --checkpoint")
                }
                return try inclusion(TlogProof(index: try size("index"), proof: try hashes(o["proof"]), checkpoint: cp), origin: origin, verifiers: verifiers)
            }
            let parsed = ConsistencyProofText(oldSize: try size("from"), newSize: try size("to"), proof: try hashes(o["proof"]))
            return try consistency(parsed, embedded: (note("fromCheckpoint"), note("toCheckpoint")), origin: origin, verifiers: verifiers)
        }

        func leaf(index: UInt64) throws -> [UInt8] {
            if let entryBytes = try file(entry, "entry") {
                guard let e = try? JSONParser.parse(entryBytes), let data = e["leafData"]?.stringValue.flatMap(Base64.decode) else {
                    throw Unreadable(description: "the entry file has no base64 leafData")
                }
                if let i = e["index"]?.numberValue, UInt64(exactly: i) != index {
                    throw SignedNoteError("the entry file is entry \(Int64(i)), the proof is for entry \(index)")
                }
                return Merkle.leafHash(data)
            }
            if let data = try file(leafData, "leaf data") { return Merkle.leafHash(data) }
            if let leafHash {
                guard let h = Base64.decode(leafHash), h.count == 32 else { throw Unreadable(description: "--leaf-hash is not base64 of 32 bytes") }
                return h
            }
            throw Unreadable(description: "an inclusion proof needs the leaf: give --entry, --leaf-data or --leaf-hash")
        }

        func inclusion(_ p: TlogProof, origin: String, verifiers: [NoteVerifier]) throws -> (String, [UInt8]) {
            let cp = try p.verify(leafHash: try leaf(index: p.index), origin: origin, verifiers: verifiers)
            return ("entry \(p.index) is in the tree of \(cp.size) entries of \(cp.origin) (root \(Base64.encode(cp.rootHash)))", p.checkpoint)
        }

        func consistency(
            _ p: ConsistencyProofText, embedded: ([UInt8]?, [UInt8]?), origin: String, verifiers: [NoteVerifier]
        ) throws -> (String, [UInt8]) {
            guard let oldNote = try file(oldCheckpoint, "old checkpoint") ?? embedded.0,
                let newNote = try file(checkpoint, "checkpoint") ?? embedded.1
            else { throw Unreadable(description: "a consistency proof needs --old-checkpoint and --checkpoint") }
            let old = try Checkpoint.open(oldNote, origin: origin, verifiers: verifiers)
            let new = try Checkpoint.open(newNote, origin: origin, verifiers: verifiers)
            try p.verify(old: old, new: new)
            return ("the tree of \(new.size) entries extends the tree of \(old.size) entries of \(origin)", newNote)
        }
    }
}
