import ArgumentParser
import Foundation
import LedgerCore
import LedgerServer

/// Server settings: each flag falls back to its `LEDGER_*` variable, then to the documented default
/// (docs/configuration.md). Secrets come only from the environment or a file, never from argv.
struct ServerOptions: ParsableArguments {
    @Option(help: "Address to listen on (LEDGER_HOST, default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on, 0 for any free port (LEDGER_PORT, default 8080).") var port: Int?
    @Option(name: .customLong("keys-dir"), help: "Directory of private signing keys (LEDGER_KEYS_DIR, default .ledger/keys).")
    var keysDirectory: String?
    @Option(name: .customLong("node-id"), help: "Node id in receipts and the key manifest (LEDGER_NODE_ID, default evidence-ledger-node).")
    var nodeId: String?
    @Option(name: .customLong("state-dir"), help: "Where the server remembers the latest checkpoint it signed (LEDGER_STATE_DIR, default .ledger/state).")
    var stateDirectory: String?
    @OptionGroup var trust: TrustOptions
    @Option(name: .customLong("db-role"), help: "Role the connections assume; none keeps the login role (LEDGER_DB_ROLE, default ledger_app).")
    var databaseRole: String?
    @Option(name: .customLong("instance-id"), help: "Replica name in nodeRuntimeHash (LEDGER_INSTANCE_ID, default the host name).")
    var instanceId: String?
    @Option(name: .customLong("public-url"), help: "Base URL for links (LEDGER_PUBLIC_URL, default from host and port).")
    var publicURL: String?
    @Option(name: .customLong("max-body-bytes"), help: "Largest request body (LEDGER_MAX_BODY_BYTES, default 52428800).")
    var maxBodyBytes: Int?
    @Option(name: .customLong("max-public-body-bytes"), help: "Largest body of the anonymous verify routes (LEDGER_MAX_PUBLIC_BODY_BYTES, default 2097152).")
    var maxPublicBodyBytes: Int?
    @Option(name: .customLong("max-steps"), help: "Most steps of a verified run or a project bundle (LEDGER_MAX_STEPS, default 1000).")
    var maxSteps: Int?
    @Option(name: .customLong("public-concurrency"), help: "Anonymous verifications at once; more get 503 (LEDGER_PUBLIC_CONCURRENCY, default 1).")
    var publicConcurrency: Int?
    @Option(name: .customLong("public-cpu-share"), help: "Share of one core anonymous verification may use on average (LEDGER_PUBLIC_CPU_SHARE, default 0.25).")
    var publicCPUShare: Double?
    @Option(name: .customLong("expensive-concurrency"), help: "Registrations and provenance reads at once; more get 503 (LEDGER_EXPENSIVE_CONCURRENCY, default 4).")
    var expensiveConcurrency: Int?
    @Option(name: .customLong("visibility-changes-per-minute"), help: "Visibility changes per account and minute (LEDGER_VISIBILITY_CHANGES_PER_MINUTE, default 60).")
    var visibilityChangesPerMinute: Int?
    @Option(name: .customLong("max-json-depth"), help: "Deepest JSON nesting accepted (LEDGER_MAX_JSON_DEPTH, default 128).")
    var maxJSONDepth: Int?
    @Option(name: .customLong("request-timeout"), help: "Seconds a request may take (LEDGER_REQUEST_TIMEOUT_SECONDS, default 30).")
    var requestTimeout: Int?
    @Option(name: .customLong("idle-timeout"), help: "Seconds before an idle connection is closed (LEDGER_IDLE_TIMEOUT_SECONDS, default 65).")
    var idleTimeout: Int?
    @Option(name: .customLong("enforce-quota"), help: "Enforce monthly quotas: true or false (LEDGER_ENFORCE_QUOTA, default true).")
    var enforceQuota: Bool?
    @Option(name: .customLong("default-monthly-limit"), help: "Monthly limit of new accounts (LEDGER_DEFAULT_MONTHLY_LIMIT, default 100).")
    var defaultMonthlyLimit: Int?
    @Option(name: .customLong("key-refresh"), help: "Seconds between re-reads of the key events (LEDGER_KEY_REFRESH_SECONDS, default 5).")
    var keyRefresh: Int?
    @Option(name: .customLong("log-origin"), help: "Origin line of the log's checkpoints (LEDGER_LOG_ORIGIN, default evidence-ledger/<node id>).")
    var logOrigin: String?
    @Option(name: .customLong("checkpoint-interval"), help: "Seconds between checkpoints while the log grows (LEDGER_CHECKPOINT_INTERVAL_SECONDS, default 5).")
    var checkpointInterval: Int?
    @Option(name: .customLong("tsa-url"), help: "An RFC 3161 timestamp authority, repeatable, tried in order (LEDGER_TSA_URLS, comma-separated; none: no timestamps).")
    var tsaURLs: [String] = []
    @Option(name: .customLong("tsa-roots"), help: "PEM roots the authorities' tokens must chain to (LEDGER_TSA_ROOTS, default /etc/ssl/certs/ca-certificates.crt).")
    var tsaRoots: String?
    @Option(name: .customLong("tsa-timeout-ms"), help: "Longest wait for one authority, in milliseconds (LEDGER_TSA_TIMEOUT_MS, default 3000).")
    var tsaTimeout: Int?
    @Option(name: .customLong("timestamps"), help: "What gets RFC 3161 timestamps: records, checkpoints, or records,checkpoints (LEDGER_TIMESTAMPS, default checkpoints).")
    var timestamps: String?
    @Option(name: .customLong("tsa-record-timeout-ms"), help: "How long an attestation waits for its token before going ahead node-issued (LEDGER_TSA_RECORD_TIMEOUT_MS, default 1000).")
    var tsaRecordTimeout: Int?
    @Option(name: .customLong("witness"), help: "A witness that cosigns checkpoints, <name>+<key id>+<key>@<url>, repeatable (LEDGER_WITNESSES, comma-separated).")
    var witnesses: [String] = []
    @Option(name: .customLong("witness-quorum"), help: "Witnesses whose cosignature makes a checkpoint witnessed (LEDGER_WITNESS_QUORUM, default 1).")
    var witnessQuorum: Int?
    @Option(name: .customLong("witness-timeout-ms"), help: "Longest wait for one witness or anchor node, in milliseconds (LEDGER_WITNESS_TIMEOUT_MS, default 5000).")
    var witnessTimeout: Int?
    @Option(name: .customLong("anchor-node"), help: "A node whose /api/stamp-hash anchors the checkpoints, repeatable (LEDGER_ANCHOR_NODES, comma-separated).")
    var anchorNodes: [String] = []
    @Option(name: .customLong("anchor-api-key-file"), help: "File holding the API key for the anchor nodes (else LEDGER_ANCHOR_API_KEY).")
    var anchorAPIKeyFile: String?
    @Option(name: .customLong("anchor-interval"), help: "Seconds between anchors of the latest checkpoint (LEDGER_ANCHOR_INTERVAL, default 3600).")
    var anchorInterval: Int?
    @Option(name: .customLong("retention-floor-days"), help: "Nothing recorded fewer days ago is erased (LEDGER_RETENTION_FLOOR_DAYS, default 90).")
    var retentionFloorDays: Int?
    @Option(name: .customLong("retention-interval"), help: "Seconds between runs of the retention worker (LEDGER_RETENTION_INTERVAL, default 60).")
    var retentionInterval: Int?
    @Option(name: .customLong("db-pool-size"), help: "Database connections (LEDGER_DB_POOL_SIZE, default 8).")
    var databasePoolSize: Int?
    @Option(name: .customLong("cors-origin"), help: "Access-Control-Allow-Origin (LEDGER_CORS_ORIGIN, default *).")
    var corsOrigin: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (LEDGER_LOG_LEVEL, default info).")
    var logLevel: String?
    @Option(name: .customLong("admin-token-file"), help: "File holding the admin API token (else LEDGER_ADMIN_TOKEN; unset disables the admin API).")
    var adminTokenFile: String?

    /// The configuration, or a sentence naming the first bad value.
    func resolve() throws -> ServerConfiguration {
        var c = ServerConfiguration()
        func int(_ flag: Int?, _ name: String, _ variable: String, _ range: ClosedRange<Int>, _ current: Int) throws -> Int {
            if let flag {
                guard range.contains(flag) else { throw ValidationError("--\(name) must be from \(range.lowerBound) to \(range.upperBound)") }
                return flag
            }
            guard let raw = Environment.value(variable), !raw.isEmpty else { return current }
            guard let v = Int(raw), range.contains(v) else {
                throw ValidationError("\(variable)=\(raw.prefix(40)) must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return v
        }
        func string(_ flag: String?, _ variable: String) -> String? {
            flag ?? Environment.value(variable).flatMap { $0.isEmpty ? nil : $0 }
        }
        c.host = string(host, "LEDGER_HOST") ?? c.host
        c.port = try int(port, "port", "LEDGER_PORT", 0...65535, c.port)
        c.keysDirectory = string(keysDirectory, "LEDGER_KEYS_DIR") ?? c.keysDirectory
        c.nodeId = string(nodeId, "LEDGER_NODE_ID") ?? c.nodeId
        c.stateDirectory = string(stateDirectory, "LEDGER_STATE_DIR") ?? c.stateDirectory
        let anchors = try trust.anchors()
        c.pinnedKeys = anchors.pinnedKeys
        c.rootKeys = anchors.rootKeys
        if let role = string(databaseRole, "LEDGER_DB_ROLE") {
            guard role.utf8.count <= 63, !role.isEmpty else { throw ValidationError("the database role must be 1 to 63 bytes, or none") }
            c.databaseRole = role == "none" ? nil : role
        }
        c.instanceId = string(instanceId, "LEDGER_INSTANCE_ID") ?? Environment.hostName() ?? c.instanceId
        c.publicURL = string(publicURL, "LEDGER_PUBLIC_URL")
        c.maxBodyBytes = try int(maxBodyBytes, "max-body-bytes", "LEDGER_MAX_BODY_BYTES", 1024...(1 << 30), c.maxBodyBytes)
        c.maxPublicBodyBytes = try int(maxPublicBodyBytes, "max-public-body-bytes", "LEDGER_MAX_PUBLIC_BODY_BYTES", 1024...(1 << 30), c.maxPublicBodyBytes)
        c.maxSteps = try int(maxSteps, "max-steps", "LEDGER_MAX_STEPS", 1...1_000_000, c.maxSteps)
        c.publicConcurrency = try int(publicConcurrency, "public-concurrency", "LEDGER_PUBLIC_CONCURRENCY", 1...1024, c.publicConcurrency)
        if let share = publicCPUShare ?? Environment.value("LEDGER_PUBLIC_CPU_SHARE").flatMap({ $0.isEmpty ? nil : Double($0) }) {
            guard share >= 0.01, share <= 64 else { throw ValidationError("the public CPU share must be from 0.01 to 64 (cores)") }
            c.publicCPUShare = share
        } else if let raw = Environment.value("LEDGER_PUBLIC_CPU_SHARE"), !raw.isEmpty {
            throw ValidationError("LEDGER_PUBLIC_CPU_SHARE=\(raw.prefix(20)) must be a number from 0.01 to 64")
        }
        c.expensiveConcurrency = try int(expensiveConcurrency, "expensive-concurrency", "LEDGER_EXPENSIVE_CONCURRENCY", 1...1024, c.expensiveConcurrency)
        c.visibilityChangesPerMinute = try int(
            visibilityChangesPerMinute, "visibility-changes-per-minute", "LEDGER_VISIBILITY_CHANGES_PER_MINUTE", 1...1_000_000, c.visibilityChangesPerMinute)
        c.maxJSONDepth = try int(maxJSONDepth, "max-json-depth", "LEDGER_MAX_JSON_DEPTH", 8...1000, c.maxJSONDepth)
        c.requestTimeoutSeconds = try int(requestTimeout, "request-timeout", "LEDGER_REQUEST_TIMEOUT_SECONDS", 1...3600, c.requestTimeoutSeconds)
        c.idleTimeoutSeconds = try int(idleTimeout, "idle-timeout", "LEDGER_IDLE_TIMEOUT_SECONDS", 1...3600, c.idleTimeoutSeconds)
        c.defaultMonthlyLimit = Int64(try int(defaultMonthlyLimit, "default-monthly-limit", "LEDGER_DEFAULT_MONTHLY_LIMIT", 0...Int(Int32.max), Int(c.defaultMonthlyLimit)))
        c.keyRefreshSeconds = try int(keyRefresh, "key-refresh", "LEDGER_KEY_REFRESH_SECONDS", 1...3600, c.keyRefreshSeconds)
        c.checkpointIntervalSeconds = try int(
            checkpointInterval, "checkpoint-interval", "LEDGER_CHECKPOINT_INTERVAL_SECONDS", 1...3600, c.checkpointIntervalSeconds)
        c.logOrigin = string(logOrigin, "LEDGER_LOG_ORIGIN")
        if let origin = c.logOrigin,
            origin.utf8.count > 255 || origin.unicodeScalars.contains(where: { $0 == "+" || $0.properties.isWhitespace || $0.value < 0x20 })
        {
            throw ValidationError("the log origin must be at most 255 bytes with no '+', spaces or control characters")
        }
        c.tsaURLs = tsaURLs.isEmpty
            ? (Environment.value("LEDGER_TSA_URLS") ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            : tsaURLs
        for url in c.tsaURLs where !(url.hasPrefix("http://") || url.hasPrefix("https://")) || URL(string: url) == nil {
            throw ValidationError("the timestamp authority \(url.prefix(80)) is not an http:// or https:// URL")
        }
        c.tsaRootsPath = string(tsaRoots, "LEDGER_TSA_ROOTS") ?? c.tsaRootsPath
        c.tsaTimeoutMilliseconds = try int(tsaTimeout, "tsa-timeout-ms", "LEDGER_TSA_TIMEOUT_MS", 100...60_000, c.tsaTimeoutMilliseconds)
        c.tsaRecordTimeoutMilliseconds = try int(
            tsaRecordTimeout, "tsa-record-timeout-ms", "LEDGER_TSA_RECORD_TIMEOUT_MS", 50...60_000, c.tsaRecordTimeoutMilliseconds)
        if let raw = string(timestamps, "LEDGER_TIMESTAMPS") {
            let kinds = Set(raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            guard !kinds.isEmpty, kinds.isSubset(of: ["records", "checkpoints"]) else {
                throw ValidationError("--timestamps is records, checkpoints or records,checkpoints")
            }
            c.timestampRecords = kinds.contains("records")
            c.timestampCheckpoints = kinds.contains("checkpoints")
        }
        let witnessSpecs = witnesses.isEmpty
            ? (Environment.value("LEDGER_WITNESSES") ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            : witnesses
        c.witnesses = try witnessSpecs.map { spec in
            do { return try CheckpointWitnesses.Witness(parsing: spec) } catch { throw ValidationError("--witness \(spec.prefix(80)): \(error)") }
        }
        guard Set(c.witnesses.map(\.verifier.name)).count == c.witnesses.count else { throw ValidationError("two --witness options name the same witness") }
        c.witnessQuorum = try int(witnessQuorum, "witness-quorum", "LEDGER_WITNESS_QUORUM", 1...100, c.witnessQuorum)
        if !c.witnesses.isEmpty, c.witnessQuorum > c.witnesses.count {
            throw ValidationError("--witness-quorum \(c.witnessQuorum) is more than the \(c.witnesses.count) witnesses configured")
        }
        c.witnessTimeoutMilliseconds = try int(witnessTimeout, "witness-timeout-ms", "LEDGER_WITNESS_TIMEOUT_MS", 100...60_000, c.witnessTimeoutMilliseconds)
        c.anchorNodes = anchorNodes.isEmpty
            ? (Environment.value("LEDGER_ANCHOR_NODES") ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            : anchorNodes
        for url in c.anchorNodes where !(url.hasPrefix("http://") || url.hasPrefix("https://")) || URL(string: url) == nil {
            throw ValidationError("the anchor node \(url.prefix(80)) is not an http:// or https:// URL")
        }
        if let anchorAPIKeyFile {
            guard let text = try? String(contentsOfFile: anchorAPIKeyFile, encoding: .utf8) else {
                throw ValidationError("cannot read the anchor API key file \(anchorAPIKeyFile)")
            }
            c.anchorAPIKey = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            c.anchorAPIKey = Environment.value("LEDGER_ANCHOR_API_KEY").flatMap { $0.isEmpty ? nil : $0 }
        }
        c.anchorIntervalSeconds = try int(anchorInterval, "anchor-interval", "LEDGER_ANCHOR_INTERVAL", 1...86_400 * 7, c.anchorIntervalSeconds)
        c.retentionFloorDays = try int(retentionFloorDays, "retention-floor-days", "LEDGER_RETENTION_FLOOR_DAYS", 0...36_500, c.retentionFloorDays)
        c.retentionIntervalSeconds = try int(retentionInterval, "retention-interval", "LEDGER_RETENTION_INTERVAL", 1...86_400, c.retentionIntervalSeconds)
        c.databasePoolSize = try int(databasePoolSize, "db-pool-size", "LEDGER_DB_POOL_SIZE", 2...256, c.databasePoolSize)
        c.corsAllowOrigin = string(corsOrigin, "LEDGER_CORS_ORIGIN") ?? c.corsAllowOrigin
        c.logLevel = string(logLevel, "LEDGER_LOG_LEVEL") ?? c.logLevel
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(c.logLevel) else {
            throw ValidationError("log level \(c.logLevel.prefix(20)) is not one of trace, debug, info, notice, warning, error, critical")
        }
        if let enforceQuota {
            c.enforceQuota = enforceQuota
        } else if let raw = Environment.value("LEDGER_ENFORCE_QUOTA"), !raw.isEmpty {
            guard let v = Bool(raw.lowercased()) else { throw ValidationError("LEDGER_ENFORCE_QUOTA must be true or false") }
            c.enforceQuota = v
        }
        if let adminTokenFile {
            guard let text = try? String(contentsOfFile: adminTokenFile, encoding: .utf8) else {
                throw ValidationError("cannot read the admin token file \(adminTokenFile)")
            }
            c.adminToken = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            c.adminToken = Environment.value("LEDGER_ADMIN_TOKEN")
        }
        if let token = c.adminToken, !token.isEmpty, token.utf8.count < 16 {
            throw ValidationError("the admin token must be at least 16 characters")
        }
        if let url = c.publicURL, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw ValidationError("the public URL must start with http:// or https://")
        }
        return c
    }
}
