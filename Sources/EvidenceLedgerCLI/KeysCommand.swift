import ArgumentParser
import CERKit
import LedgerServer
import LedgerStore

/// `evidence-ledger keys …`: the node's Ed25519 signing keys (private keys in files, lifecycle in the ledger).
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Generate, list, rotate and revoke the node's signing keys.",
        subcommands: [Generate.self, List.self, Rotate.self, Revoke.self])

    struct KeyOptions: ParsableArguments {
        @OptionGroup var database: DatabaseOptions
        @Option(name: .customLong("keys-dir"), help: "Directory of private signing keys (LEDGER_KEYS_DIR, default .ledger/keys).")
        var keysDirectory: String?
        @Option(name: .customLong("node-id"), help: "Node id recorded with new keys (LEDGER_NODE_ID, default evidence-ledger-node).")
        var nodeId: String?

        /// Runs `body` with the key administration, mapping refusals to exit 1 and faults to exit 2.
        func withAdministration<T>(_ body: (NodeKeyAdministration) async throws -> T) async throws -> T {
            let defaults = ServerConfiguration()
            return try await withMigratedPool(database) { pool in
                try await body(NodeKeyAdministration(
                    nodeId: nodeId ?? Environment.value("LEDGER_NODE_ID") ?? defaults.nodeId,
                    store: NodeKeyStore(directory: keysDirectory ?? Environment.value("LEDGER_KEYS_DIR") ?? defaults.keysDirectory),
                    log: PostgresEventLog(pool: pool)))
            }
        }
    }

    static func describe(_ key: NodeKeyManifest.Key, local: Bool) -> String {
        var parts = ["\(key.kid)", key.status]
        if let from = key.validFrom { parts.append("from \(Timestamp.iso8601(milliseconds: from))") }
        if let to = key.validTo { parts.append("to \(Timestamp.iso8601(milliseconds: to))") }
        if let pk = key.publicKey { parts.append("publicKey \(Base64.encodeURL(pk))") }
        parts.append(local ? "private key here" : "no private key here")
        return parts.joined(separator: "  ")
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create and activate the node's first signing key (refused when one is active; use rotate).")
        @OptionGroup var options: KeyOptions
        @Option(help: "Key id (default k1, k2, …).") var kid: String?

        func run() async throws {
            let key = try await options.withAdministration { try await $0.generate(kid: kid) }
            FileOutput.standardOutput("activated \(KeysCommand.describe(key, local: true))\n")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every key the ledger has published, newest last.")
        @OptionGroup var options: KeyOptions

        func run() async throws {
            let (manifest, local) = try await options.withAdministration { try await $0.list() }
            if manifest.keys.isEmpty { FileOutput.standardOutput("no keys; run `evidence-ledger keys generate`\n") }
            for key in manifest.keys {
                FileOutput.standardOutput(KeysCommand.describe(key, local: local.contains(key.kid)) + (key.kid == manifest.activeKid ? "  (active)" : "") + "\n")
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Activate a new key and retire the active one; receipts it signed keep verifying.",
            discussion: "The retired key stays valid for --overlap seconds so running servers can pick up the new key; its private key is destroyed.")
        @OptionGroup var options: KeyOptions
        @Option(help: "Key id of the new key (default the next kN).") var kid: String?
        @Option(help: "Seconds the retired key stays valid.") var overlap: Int64 = 60

        func validate() throws {
            guard (0...86_400).contains(overlap) else { throw ValidationError("--overlap must be from 0 to 86400 seconds") }
        }

        func run() async throws {
            let (retired, key) = try await options.withAdministration { try await $0.rotate(kid: kid, overlapSeconds: overlap) }
            if let retired { FileOutput.standardOutput("retired \(retired)\n") }
            FileOutput.standardOutput("activated \(KeysCommand.describe(key, local: true))\n")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a key: verifiers refuse everything it signed. Use only when it is compromised.")
        @OptionGroup var options: KeyOptions
        @Argument(help: "The key id.") var kid: String
        @Option(help: "Why (recorded in the ledger).") var reason: String = "compromised"

        func run() async throws {
            try await options.withAdministration { try await $0.revoke(kid: kid, reason: reason) }
            FileOutput.standardOutput("revoked \(kid)\n")
        }
    }
}
