import ArgumentParser
import CERKit
import LedgerCore
import LedgerServer
import LedgerStore

/// `evidence-ledger keys …`: the node's Ed25519 signing keys (private keys in files, lifecycle in the
/// ledger as authorised key events, trust anchors pinned outside the database).
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Generate, list, rotate, revoke and pin the node's signing keys.",
        subcommands: [Generate.self, List.self, Rotate.self, Revoke.self, Pin.self, Adopt.self, Root.self])

    struct KeyOptions: ParsableArguments {
        @OptionGroup var database: DatabaseOptions
        @Option(name: .customLong("keys-dir"), help: "Directory of private signing keys and the trust file (LEDGER_KEYS_DIR, default .ledger/keys).")
        var keysDirectory: String?
        @Option(name: .customLong("node-id"), help: "Node id recorded with new keys (LEDGER_NODE_ID, default evidence-ledger-node).")
        var nodeId: String?
        @OptionGroup var trust: TrustOptions

        var store: NodeKeyStore {
            NodeKeyStore(directory: keysDirectory ?? Environment.value("LEDGER_KEYS_DIR") ?? ServerConfiguration().keysDirectory)
        }

        /// Runs `body` with the key administration, mapping refusals to exit 1 and faults to exit 2.
        func withAdministration<T>(_ body: (NodeKeyAdministration) async throws -> T) async throws -> T {
            let anchors = try trust.anchors()
            return try await withMigratedPool(database) { pool in
                try await body(NodeKeyAdministration(
                    nodeId: nodeId ?? Environment.value("LEDGER_NODE_ID") ?? ServerConfiguration().nodeId,
                    store: store, log: PostgresEventLog(pool: pool), anchors: anchors))
            }
        }
    }

    /// `--authorize-with FILE`: an offline root key that signs the key event.
    struct RootAuthorization: ParsableArguments {
        @Option(name: .customLong("authorize-with"), help: "A root key file (from `keys root generate`) that authorises this key event.")
        var rootKeyFile: String?

        func key() throws -> Ed25519SigningKey? {
            guard let rootKeyFile else { return nil }
            let key: Ed25519SigningKey?
            do { key = try KeyFile.read(rootKeyFile) } catch { throw ValidationError(error.message) }
            guard let key else { throw ValidationError("there is no root key file \(rootKeyFile)") }
            return key
        }
    }

    static func describe(_ key: KeyHistory.Key, local: Bool) -> String {
        var parts = ["\(key.kid)", key.status, "from \(Timestamp.iso8601(milliseconds: key.validFrom))"]
        if let to = key.validTo { parts.append("to \(Timestamp.iso8601(milliseconds: to))") }
        parts.append("fingerprint \(key.fingerprint)")
        parts.append("authorised by \(key.authorisedBy)")
        parts.append(local ? "private key here" : "no private key here")
        return parts.joined(separator: "  ")
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create and activate a signing key when none is active (refused when one is; use rotate), and pin it.",
            discussion: """
                The new key's fingerprint is written to the keys directory's trust file and printed: give it to every other \
                server (LEDGER_PINNED_KEYS) and to auditors (ledger verify --pinned-key). With --authorize-with a root key \
                signs the activation instead (to replace a lost key), and nothing is pinned.
                """)
        @OptionGroup var options: KeyOptions
        @OptionGroup var root: RootAuthorization
        @Option(help: "Key id (default k1, k2, …).") var kid: String?

        func run() async throws {
            let rootKey = try root.key()
            let (key, fingerprint) = try await options.withAdministration { try await $0.generate(kid: kid, root: rootKey) }
            FileOutput.standardOutput("activated \(KeysCommand.describe(key, local: true))\n")
            if rootKey == nil {
                FileOutput.standardOutput(
                    "pinned \(fingerprint) in \(options.store.trustPath)\n"
                        + "give this fingerprint to every server (LEDGER_PINNED_KEYS) and auditor (ledger verify --pinned-key)\n")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the authorised keys, newest last, and every key event that is not authorised.")
        @OptionGroup var options: KeyOptions

        func run() async throws {
            let (history, anchors, local) = try await options.withAdministration { try await $0.list() }
            if anchors.isEmpty { FileOutput.standardOutput("no trust anchor: nothing is pinned here, so no key event counts\n") }
            if history.keys.isEmpty, history.ignored.isEmpty { FileOutput.standardOutput("no keys; run `evidence-ledger keys generate`\n") }
            for key in history.keys {
                FileOutput.standardOutput(KeysCommand.describe(key, local: local.contains(key.kid)) + (key.kid == history.activeKey?.kid ? "  (active)" : "") + "\n")
            }
            for event in history.ignored { FileOutput.standardOutput("UNAUTHORISED: \(event)\n") }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Activate a new key and retire the active one; receipts it signed keep verifying.",
            discussion: """
                The active key signs its retirement and its successor's activation, so its private key must be here \
                (or a root key authorises the rotation with --authorize-with). The retired key stays valid for --overlap \
                seconds so running servers can pick up the new key; its private key is destroyed after that.
                """)
        @OptionGroup var options: KeyOptions
        @OptionGroup var root: RootAuthorization
        @Option(help: "Key id of the new key (default the next kN).") var kid: String?
        @Option(help: "Seconds the retired key stays valid (1 to 86400; at least twice the servers' --key-refresh).") var overlap: Int64 = 60

        func validate() throws {
            // Servers re-read the keys before each checkpoint and every --key-refresh seconds; the overlap
            // covers that and the clocks' skew, so nothing a running server signs falls outside the old key.
            guard (1...86_400).contains(overlap) else { throw ValidationError("--overlap must be from 1 to 86400 seconds") }
        }

        func run() async throws {
            let rootKey = try root.key()
            if overlap < 10 {
                FileOutput.standardError(
                    "evidence-ledger: warning: an overlap of \(overlap) s is shorter than two key refreshes at the default 5 s; a server that has not re-read the keys may sign receipts after the old key's validity")
            }
            let (retired, key) = try await options.withAdministration { try await $0.rotate(kid: kid, overlapSeconds: overlap, root: rootKey) }
            if let retired { FileOutput.standardOutput("retired \(retired)\n") }
            FileOutput.standardOutput("activated \(KeysCommand.describe(key, local: true))\n")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a key: verifiers refuse everything it signed. Use only when it is compromised.",
            discussion: "Signed by an active key whose private key is here, or by a root key (--authorize-with). Every server destroys its copy of the revoked key.")
        @OptionGroup var options: KeyOptions
        @OptionGroup var root: RootAuthorization
        @Argument(help: "The key id.") var kid: String
        @Option(help: "Why (recorded in the ledger).") var reason: String = "compromised"

        func run() async throws {
            let rootKey = try root.key()
            try await options.withAdministration { try await $0.revoke(kid: kid, reason: reason, root: rootKey) }
            FileOutput.standardOutput("revoked \(kid)\n")
        }
    }

    struct Pin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pin the key whose private key file is here (for keys made before pinning existed).",
            discussion: "The fingerprint is computed from the local private key file, not from the database, and added to the trust file.")
        @Option(name: .customLong("keys-dir"), help: "Directory of private signing keys and the trust file (LEDGER_KEYS_DIR, default .ledger/keys).")
        var keysDirectory: String?
        @Argument(help: "The key id.") var kid: String

        func run() async throws {
            let store = NodeKeyStore(directory: keysDirectory ?? Environment.value("LEDGER_KEYS_DIR") ?? ServerConfiguration().keysDirectory)
            do {
                let fingerprint = try store.pin(kid: kid)
                FileOutput.standardOutput("pinned \(fingerprint) in \(store.trustPath)\n")
            } catch {
                FileOutput.standardError("evidence-ledger: \(error.message)")
                throw ExitCode(1)
            }
        }
    }

    struct Adopt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restate, signed by a root key, the key events written before key events were signed.",
            discussion: """
                For a ledger from before pinning: every unsigned key event (activations, retirements, revocations) is \
                appended again, signed by the root key and naming the entry it adopts, so that its keys keep verifying \
                what they signed. It trusts the database as it is now: run it once, right after upgrading.
                """)
        @OptionGroup var options: KeyOptions
        @OptionGroup var root: RootAuthorization

        func run() async throws {
            guard let rootKey = try root.key() else { throw ValidationError("keys adopt needs --authorize-with ROOT_KEY_FILE") }
            let indices = try await options.withAdministration { try await $0.adopt(root: rootKey) }
            FileOutput.standardOutput(indices.isEmpty ? "nothing to adopt\n" : "adopted entries \(indices.map(String.init).joined(separator: ", "))\n")
            if !indices.isEmpty { FileOutput.standardOutput("check them with `evidence-ledger keys list`: adopting trusts what the database held\n") }
        }
    }

    struct Root: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "root", abstract: "Offline root keys, which may authorise any key event.", subcommands: [RootGenerate.self])
    }

    struct RootGenerate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "generate", abstract: "Create an offline root key in a file and print its fingerprint.",
            discussion: """
                Keep the file off the servers (it authorises key events with --authorize-with). Give the fingerprint to every \
                server (LEDGER_ROOT_KEYS) and auditor (ledger verify --root-key).
                """)
        @Option(help: "Where to write the root key (created, never overwritten; mode 0600).") var out: String

        func run() async throws {
            do {
                let key = try KeyFile.create(out)
                FileOutput.standardOutput("root key \(KeyFingerprint.of(key.publicKey)) written to \(out)\n")
            } catch {
                FileOutput.standardError("evidence-ledger: \(error.message)")
                throw ExitCode(1)
            }
        }
    }
}

/// Trust anchors given on the command line or in the environment (the keys directory's trust file is
/// read besides these where a command has one).
struct TrustOptions: ParsableArguments {
    @Option(name: .customLong("pinned-key"), help: "Fingerprint of a pinned node key, repeatable (LEDGER_PINNED_KEYS, comma-separated).")
    var pinnedKeys: [String] = []
    @Option(name: .customLong("root-key"), help: "Fingerprint of an offline root key, repeatable (LEDGER_ROOT_KEYS, comma-separated).")
    var rootKeys: [String] = []

    func anchors() throws -> TrustAnchors {
        func list(_ flags: [String], _ variable: String) throws -> Set<String> {
            let values = flags.isEmpty
                ? (Environment.value(variable) ?? "").split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init) : flags
            for v in values { if let problem = KeyFingerprint.problem(v) { throw ValidationError(problem) } }
            return Set(values)
        }
        return TrustAnchors(pinnedKeys: try list(pinnedKeys, "LEDGER_PINNED_KEYS"), rootKeys: try list(rootKeys, "LEDGER_ROOT_KEYS"))
    }
}
