import UnixSignals
import CERKit
import Foundation
import HTTPTypes
public import Hummingbird
import HummingbirdCore
import LedgerCore
public import LedgerProjections
public import LedgerStore
public import Logging
import NIOCore
import ServiceLifecycle

/// The composition root: builds the pool, event log, key ring, services and HTTP application from a
/// configuration, and runs them as one service group with graceful shutdown.
public enum LedgerServerApp {
    /// Everything a running server is made of (tests and the CLI build the same thing).
    public struct Parts: Sendable {
        public var pool: PostgresConnectionPool
        public var log: PostgresEventLog
        public var keys: KeyRing
        public var accounts: AccountStore
        public var usage: UsageRecorder
        public var metrics: ServerMetrics
        public var identity: NodeIdentity
        public var checkpointer: CheckpointSigner
        /// Per-checkpoint RFC 3161 timestamps, when timestamp authorities are configured.
        public var timestamper: CheckpointTimestamper?
        /// Per-record RFC 3161 timestamps, when configured.
        public var recordTimestamps: RecordTimestamps?
        /// Witness cosignatures of checkpoints, when witnesses are configured.
        public var witnesses: CheckpointWitnesses?
        /// Cross-log anchors of checkpoints, when anchor nodes are configured.
        public var anchors: CheckpointAnchors?
        /// The retention worker (deletion requests, legal holds, the floor).
        public var retention: RetentionWorker
        /// The secret data-subject references are digested under.
        public var dataSubjects: DataSubjectSecret
        public var projections: ProjectionRunner
        /// Admission control of expensive requests.
        var gates: Gates
    }

    /// The admission gates (their refusals are exported as metrics).
    struct Gates: Sendable {
        var publicVerification: AdmissionGate
        var expensive: AdmissionGate
        /// The lowest-priority threads anonymous verification runs on, charging its CPU time to the budget.
        var publicWorkers: LowPriorityPool

        init(publicCPU: WorkBudget, configuration: ServerConfiguration) {
            publicVerification = AdmissionGate(
                name: "anonymous verification", limit: configuration.publicConcurrency, refusalDelay: .seconds(1), budget: publicCPU)
            expensive = AdmissionGate(name: "registration and provenance", limit: configuration.expensiveConcurrency)
            publicWorkers = LowPriorityPool(threads: configuration.publicConcurrency, budget: publicCPU)
        }
    }

    /// Migrates the database (as the login role), then builds the parts (as the application role).
    public static func makeParts(configuration: ServerConfiguration, conninfo: String, logger: Logger) async throws -> Parts {
        let applied = try Migrator.migrate(conninfo: conninfo)
        for name in applied { logger.notice("applied migration", metadata: ["ledger.migration": "\(name)"]) }
        let pool = PostgresConnectionPool(configuration: PostgresConfiguration(
            conninfo: conninfo, maxConnections: configuration.databasePoolSize,
            statementTimeoutMilliseconds: configuration.requestTimeoutSeconds * 1000, role: configuration.databaseRole))
        let metrics = ServerMetrics()
        metrics.watch(pool: pool)
        let log = PostgresEventLog(pool: pool, onBatch: { metrics.batchCommitted(appended: $0) })
        let identity = NodeIdentity(nodeId: configuration.nodeId, instanceId: configuration.instanceId, publicURL: configuration.effectivePublicURL)
        let store = NodeKeyStore(directory: configuration.keysDirectory)
        let anchors: TrustAnchors
        do {
            anchors = try store.trustAnchors().union(TrustAnchors(pinnedKeys: configuration.pinnedKeys, rootKeys: configuration.rootKeys))
        } catch {
            await pool.shutdown()
            throw error
        }
        let keys = KeyRing(nodeId: configuration.nodeId, store: store, anchors: anchors, log: log)
        let snapshot: KeyRing.Snapshot
        do { snapshot = try await keys.refresh() } catch {
            await pool.shutdown()
            throw error
        }
        for event in snapshot.history.ignored { logger.error("unauthorised key event ignored", metadata: ["ledger.problem": "\(event)"]) }
        if snapshot.signer == nil {
            await pool.shutdown()
            throw LedgerServerError(.noActiveKey, snapshot.signerProblem ?? "the node has no active signing key")
        }
        let origin = configuration.effectiveLogOrigin
        do {
            _ = try NoteSigner(name: origin, key: snapshot.signer!.key)
        } catch {
            await pool.shutdown()
            throw LedgerServerError(.badRequest, "the log origin \"\(origin.prefix(80))\" cannot name a signed-note key: \(error); set --log-origin")
        }
        let checkpointer = CheckpointSigner(origin: origin, log: log, keys: keys, memory: CheckpointMemory(directory: configuration.stateDirectory))
        do {
            try await checkpointer.checkExtendsMemory(try await log.frontier())
        } catch {
            await pool.shutdown()
            throw error
        }
        var timestamper: CheckpointTimestamper? = nil
        var recordTimestamps: RecordTimestamps? = nil
        if !configuration.tsaURLs.isEmpty {
            let roots: RFC3161Verifier.Roots
            do {
                let pem = try String(contentsOfFile: configuration.tsaRootsPath, encoding: .utf8)
                roots = try RFC3161Verifier.Roots(pem: pem)
            } catch {
                await pool.shutdown()
                throw LedgerServerError(.badRequest, "cannot read the timestamp authorities' roots \(configuration.tsaRootsPath): \(error); set --tsa-roots")
            }
            if roots.certificates.isEmpty {
                await pool.shutdown()
                throw LedgerServerError(.badRequest, "\(configuration.tsaRootsPath) holds no PEM certificate; set --tsa-roots")
            }
            if configuration.timestampCheckpoints {
                timestamper = CheckpointTimestamper(
                    log: log, client: TimestampClient(urls: configuration.tsaURLs, roots: roots, timeout: .milliseconds(configuration.tsaTimeoutMilliseconds)))
            }
            if configuration.timestampRecords {
                recordTimestamps = RecordTimestamps(
                    client: TimestampClient(urls: configuration.tsaURLs, roots: roots, timeout: .milliseconds(configuration.tsaRecordTimeoutMilliseconds)),
                    log: log, logger: logger)
            }
        }
        let witnesses = configuration.witnesses.isEmpty
            ? nil
            : CheckpointWitnesses(
                witnesses: configuration.witnesses, quorum: configuration.witnessQuorum, log: log,
                timeout: .milliseconds(configuration.witnessTimeoutMilliseconds), logger: logger, metrics: metrics)
        let checkpointAnchors = configuration.anchorNodes.isEmpty
            ? nil
            : CheckpointAnchors(
                targets: configuration.anchorNodes, apiKey: configuration.anchorAPIKey, log: log,
                timeout: .milliseconds(configuration.witnessTimeoutMilliseconds))
        let accounts = AccountStore(pool: pool)
        let usage = UsageRecorder(store: accounts, interval: .seconds(configuration.usageFlushSeconds), logger: logger)
        let projections = ProjectionRunner(pool: pool)
        return Parts(pool: pool, log: log, keys: keys, accounts: accounts, usage: usage, metrics: metrics, identity: identity, checkpointer: checkpointer,
            timestamper: timestamper, recordTimestamps: recordTimestamps, witnesses: witnesses, anchors: checkpointAnchors,
            retention: RetentionWorker(
                log: log, projections: projections, floorDays: configuration.retentionFloorDays, metrics: metrics,
                maintenance: PayloadMaintenance(conninfo: conninfo)),
            dataSubjects: DataSubjectSecret(keys: store),
            projections: projections,
            gates: Gates(publicCPU: WorkBudget(share: configuration.publicCPUShare), configuration: configuration))
    }

    /// The router with every route and the edge middleware.
    public static func makeRouter(configuration: ServerConfiguration, parts: Parts) -> Router<LedgerRequestContext> {
        let router = Router(context: LedgerRequestContext.self)
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: CORSMiddleware(
            allowOrigin: configuration.corsAllowOrigin == "*" ? .all : .custom(configuration.corsAllowOrigin),
            allowHeaders: [
                .contentType, .authorization, HTTPField.Name("X-Nexart-Negotiation")!, HTTPField.Name("X-Admin-Secret")!, IdempotencyKeys.header,
                HTTPField.Name(DataSubjects.header)!,
            ],
            allowMethods: [.get, .post, .options],
            exposedHeaders: [
                "X-Quota-Limit", "X-Quota-Used", "X-Quota-Remaining", "X-Certificate-Hash", "X-Ledger-Index", "X-Request-Id", "ETag",
                "Idempotent-Replayed", "Retry-After",
            ]))
        router.add(middleware: EdgeMiddleware(timeout: .seconds(configuration.requestTimeoutSeconds)))
        router.add(middleware: AuthenticationMiddleware(accounts: parts.accounts, adminToken: configuration.adminToken))
        let reader = RequestReader(maxBodyBytes: configuration.maxBodyBytes, maxJSONDepth: configuration.maxJSONDepth)
        let publicReader = RequestReader(
            maxBodyBytes: min(configuration.maxPublicBodyBytes, configuration.maxBodyBytes), maxJSONDepth: configuration.maxJSONDepth)
        let clock = PostgresEventLog.wallClock
        let attestation = AttestationService(log: parts.log, keys: parts.keys, identity: parts.identity, recordTimestamps: parts.recordTimestamps)
        let billing = Billing(configuration: configuration, accounts: parts.accounts, usage: parts.usage, clock: clock)
        let visibilityLimiter = RateLimiter(perMinute: configuration.visibilityChangesPerMinute)
        NodeRoutes(
            identity: parts.identity, keys: parts.keys, pool: parts.pool, metrics: parts.metrics, clock: clock, projections: parts.projections,
            gates: [parts.gates.publicVerification, parts.gates.expensive], usage: parts.usage, log: parts.log
        ).register(on: router)
        AttestationRoutes(
            configuration: configuration, attestation: attestation, accounts: parts.accounts, usage: parts.usage, billing: billing,
            idempotency: IdempotencyKeys(log: parts.log), reader: reader, publicReader: publicReader, publicGate: parts.gates.publicVerification,
            publicWorkers: parts.gates.publicWorkers, visibilityLimiter: visibilityLimiter, queries: LedgerQueries(runner: parts.projections),
            dataSubjects: parts.dataSubjects, clock: clock
        ).register(on: router)
        AdminRoutes(
            adminToken: configuration.adminToken, accounts: parts.accounts, defaultMonthlyLimit: configuration.defaultMonthlyLimit,
            reader: reader, clock: clock
        ).register(on: router)
        ProjectionRoutes(
            queries: LedgerQueries(runner: parts.projections),
            projects: ProjectService(log: parts.log, keys: parts.keys, identity: parts.identity, maxSteps: configuration.maxSteps),
            attestation: attestation, accounts: parts.accounts, reader: reader, publicReader: publicReader,
            publicGate: parts.gates.publicVerification, publicWorkers: parts.gates.publicWorkers, expensiveGate: parts.gates.expensive,
            billing: billing,
            idempotency: IdempotencyKeys(log: parts.log),
            visibilityLimiter: visibilityLimiter, maxSteps: configuration.maxSteps, clock: clock, log: parts.log
        ).register(on: router)
        LifecycleRoutes(
            lifecycle: LifecycleService(log: parts.log), queries: LedgerQueries(runner: parts.projections), dataSubjects: parts.dataSubjects,
            reader: reader, limiter: visibilityLimiter, floorDays: configuration.retentionFloorDays,
            clock: clock
        ).register(on: router)
        LogRoutes(
            log: parts.log, checkpointer: parts.checkpointer, keys: parts.keys, accounts: parts.accounts, adminToken: configuration.adminToken,
            witnesses: parts.witnesses)
            .register(on: router)
        return router
    }

    /// Runs until SIGTERM or SIGINT, then drains requests, flushes usage and closes the pool.
    /// `onListening` gets the bound port (useful with port 0).
    public static func run(
        configuration: ServerConfiguration, conninfo: String, logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws {
        let parts = try await makeParts(configuration: configuration, conninfo: conninfo, logger: logger)
        let router = makeRouter(configuration: configuration, parts: parts)
        let app = Application(
            router: router,
            server: .http1(configuration: HTTP1Channel.Configuration(
                idleTimeout: .seconds(Int64(configuration.idleTimeoutSeconds)),
                // The decoder's own refusal is a bare 400; accept up to 1 MiB so EdgeMiddleware can answer 431 in JSON.
                httpDecoderConfiguration: .init(maxHeaderFieldSize: 1 << 20, maxHeaderListSize: 1 << 20, maxHeaderFieldCount: 1000))),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "evidence-ledger/\(NodeIdentity.serviceVersion)"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                var bound = configuration
                bound.port = port
                parts.identity.address.set(bound.effectivePublicURL)
                onListening(port)
            },
            logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            // First, so it is shut down last: every service below uses the pool.
            .init(service: PoolService(pool: parts.pool)),
            .init(service: parts.usage),
            .init(service: KeyRingRefresher.service(ring: parts.keys, interval: .seconds(configuration.keyRefreshSeconds), logger: logger)),
            // A checkpoint of the tree whenever it grew, then the witnesses' cosignatures of it.
            .init(service: PeriodicService(every: .seconds(configuration.checkpointIntervalSeconds), logger: logger, what: "sign a checkpoint") {
                try await parts.checkpointer.checkpoint()
                try await parts.witnesses?.witnessLatest()
            }),
        ]
        if let timestamper = parts.timestamper {
            services.append(.init(service: timestamper.service(interval: .seconds(configuration.checkpointIntervalSeconds), logger: logger)))
        }
        if let records = parts.recordTimestamps {
            services.append(.init(service: records.service(interval: .seconds(configuration.checkpointIntervalSeconds))))
        }
        services.append(.init(service: parts.retention.service(interval: .seconds(configuration.retentionIntervalSeconds), logger: logger)))
        if let anchors = parts.anchors {
            services.append(.init(service: anchors.service(interval: .seconds(configuration.anchorIntervalSeconds), logger: logger)))
        }
        // Read models kept near the head for appends made by any process (readers still catch up a
        // lagging model themselves). One model after another, so a long catch-up holds at most two of
        // the pool's connections.
        services.append(.init(service: PeriodicService(every: .seconds(1), logger: logger, what: "apply the log to the projections") {
            try await parts.projections.catchUp(wait: false, concurrently: false)
        }))
        services.append(.init(service: app))
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            // A graceful stop flushes usage (the recorder's last run) and then closes the pool (`PoolService`,
            // shut down last).
            try await group.run()
        } catch {
            // A service failed and the group was cancelled: the same, in that order, whatever ran of it.
            await parts.usage.flush()
            await parts.pool.shutdown()
            throw error
        }
    }
}
