public import LedgerCore
/// Everything `evidence-ledger serve` needs, read once at the edge (flags over `LEDGER_*` variables).
/// Every key and its default is documented in docs/configuration.md.
public struct ServerConfiguration: Sendable {
    /// Address to listen on (`LEDGER_HOST`).
    public var host = "127.0.0.1"
    /// Port to listen on; 0 picks a free one (`LEDGER_PORT`).
    public var port = 8080
    /// Where private signing keys live, one file per key, mode 0600 (`LEDGER_KEYS_DIR`).
    public var keysDirectory = ".ledger/keys"
    /// Where the server remembers what must not rest on the database: the latest checkpoint it signed
    /// (`LEDGER_STATE_DIR`).
    public var stateDirectory = ".ledger/state"
    /// Fingerprints of pinned node keys (`LEDGER_PINNED_KEYS`), besides the keys directory's trust file.
    public var pinnedKeys: Set<String> = []
    /// Fingerprints of offline root keys (`LEDGER_ROOT_KEYS`), besides the keys directory's trust file.
    public var rootKeys: Set<String> = []
    /// The role the server's connections assume (`LEDGER_DB_ROLE`; `none` keeps the login role's privileges).
    public var databaseRole: String? = "ledger_app"
    /// The node's identity in receipts and the key manifest (`LEDGER_NODE_ID`).
    public var nodeId = "evidence-ledger-node"
    /// This replica's name, part of `nodeRuntimeHash` (`LEDGER_INSTANCE_ID`; default the host name).
    public var instanceId = "unknown"
    /// Base URL clients reach us at, used in links and `verificationUrl` (`LEDGER_PUBLIC_URL`; default from host and port).
    public var publicURL: String?
    /// Largest accepted request body in bytes (`LEDGER_MAX_BODY_BYTES`).
    public var maxBodyBytes = 50 * 1024 * 1024
    /// Largest body of the anonymous verification routes (`LEDGER_MAX_PUBLIC_BODY_BYTES`).
    public var maxPublicBodyBytes = 2 * 1024 * 1024
    /// Most steps of a run verified by `/v1/cer/verify` and of a project bundle (`LEDGER_MAX_STEPS`).
    public var maxSteps = 1000
    /// Anonymous verifications admitted at once (each on a lowest-priority thread); more are answered 503
    /// (`LEDGER_PUBLIC_CONCURRENCY`).
    public var publicConcurrency = 2
    /// Share of one core that anonymous verification may use on average, from 0.01 to 64 (`LEDGER_PUBLIC_CPU_SHARE`).
    public var publicCPUShare = 0.25
    /// Expensive authenticated requests (registration, provenance) running at once (`LEDGER_EXPENSIVE_CONCURRENCY`).
    public var expensiveConcurrency = 4
    /// Visibility changes an account may make per minute (`LEDGER_VISIBILITY_CHANGES_PER_MINUTE`).
    public var visibilityChangesPerMinute = 60
    /// Deepest accepted JSON nesting (`LEDGER_MAX_JSON_DEPTH`).
    public var maxJSONDepth = 128
    /// Longest a request may take, in seconds (`LEDGER_REQUEST_TIMEOUT_SECONDS`).
    public var requestTimeoutSeconds = 30
    /// Idle keep-alive connections are closed after this many seconds (`LEDGER_IDLE_TIMEOUT_SECONDS`).
    public var idleTimeoutSeconds = 65
    /// Enforce monthly quotas (`LEDGER_ENFORCE_QUOTA`).
    public var enforceQuota = true
    /// Monthly limit of accounts created without one (`LEDGER_DEFAULT_MONTHLY_LIMIT`).
    public var defaultMonthlyLimit: Int64 = 100
    /// Secret for the admin API (`X-Admin-Secret`); no default: unset disables the admin API (`LEDGER_ADMIN_TOKEN`).
    public var adminToken: String?
    /// How often the key ring re-reads key events, in seconds (`LEDGER_KEY_REFRESH_SECONDS`).
    public var keyRefreshSeconds = 5
    /// Seconds between checkpoints while the log grows.
    public var checkpointIntervalSeconds = 5
    /// The checkpoints' origin line (and the signed-note key name); nil: `evidence-ledger/<nodeId>`.
    public var logOrigin: String?
    public var effectiveLogOrigin: String { logOrigin ?? "evidence-ledger/\(nodeId)" }
    /// RFC 3161 timestamp authorities, tried in order (`LEDGER_TSA_URLS`); none: no timestamps.
    public var tsaURLs: [String] = []
    /// PEM trust anchors of the timestamp authorities (`LEDGER_TSA_ROOTS`).
    public var tsaRootsPath = "/etc/ssl/certs/ca-certificates.crt"
    /// How long one authority may take, in milliseconds (`LEDGER_TSA_TIMEOUT_MS`).
    public var tsaTimeoutMilliseconds = 3000
    /// What gets timestamped (`LEDGER_TIMESTAMPS`: `records`, `checkpoints`, or both, comma-separated).
    public var timestampRecords = false
    public var timestampCheckpoints = true
    /// How long an attestation waits for its per-record token, in milliseconds, before it goes ahead as
    /// `node-issued` (`LEDGER_TSA_RECORD_TIMEOUT_MS`).
    public var tsaRecordTimeoutMilliseconds = 1000
    /// Witnesses asked to cosign every checkpoint (`LEDGER_WITNESSES`): `<name>+<key id>+<key>@<url>`.
    public var witnesses: [CheckpointWitnesses.Witness] = []
    /// How many witnesses must cosign a checkpoint for it to count as witnessed (`LEDGER_WITNESS_QUORUM`;
    /// reported in `/metrics` and `GET /v1/log`; default 1 when witnesses are configured).
    public var witnessQuorum = 1
    /// How long one witness may take, in milliseconds (`LEDGER_WITNESS_TIMEOUT_MS`).
    public var witnessTimeoutMilliseconds = 5000
    /// Other logs (EvidenceLedger or NexArt-compatible nodes) the checkpoints are anchored in, through
    /// their `/api/stamp-hash` (`LEDGER_ANCHOR_NODES`).
    public var anchorNodes: [String] = []
    /// The API key sent to the anchor nodes (`LEDGER_ANCHOR_API_KEY`).
    public var anchorAPIKey: String?
    /// How often the latest checkpoint is anchored, in seconds (`LEDGER_ANCHOR_INTERVAL`).
    public var anchorIntervalSeconds = 3600
    /// The minimum retention floor in days: nothing recorded more recently is erased (`LEDGER_RETENTION_FLOOR_DAYS`).
    public var retentionFloorDays = ErasureDecision.defaultFloorDays
    /// How often the retention worker runs, in seconds (`LEDGER_RETENTION_INTERVAL`).
    public var retentionIntervalSeconds = 60
    /// How often usage events are written, in seconds (`LEDGER_USAGE_FLUSH_SECONDS`).
    public var usageFlushSeconds = 1
    /// Database connections in the pool (`LEDGER_DB_POOL_SIZE`).
    public var databasePoolSize = 8
    /// Origin allowed by CORS (`LEDGER_CORS_ORIGIN`).
    public var corsAllowOrigin = "*"
    /// Log level: trace, debug, info, notice, warning, error, critical (`LEDGER_LOG_LEVEL`).
    public var logLevel = "info"

    public init() {}

    /// The base URL for links.
    public var effectivePublicURL: String {
        if let publicURL, !publicURL.isEmpty { return publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL }
        let shownHost = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
        return "http://\(shownHost):\(port)"
    }
}
