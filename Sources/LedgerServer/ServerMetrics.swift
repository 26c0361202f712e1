public import LedgerStore
import Metrics
public import Prometheus
import Synchronization

/// Prometheus metrics: HTTP requests by route and status (Hummingbird's MetricsMiddleware through
/// swift-metrics), append batch sizes, and database pool usage.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let poolOpen: Prometheus.Gauge
    private let poolInUse: Prometheus.Gauge
    private let batchSize: Metrics.Recorder
    private let appended: Metrics.Counter
    private let pool: Mutex<PostgresConnectionPool?> = Mutex(nil)

    private static let bootstrapped = Mutex(false)

    /// Makes the registry and, once per process, installs it as the swift-metrics backend.
    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets["ledger_append_batch_size"] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        Self.bootstrapped.withLock { done in
            if !done {
                MetricsSystem.bootstrap(factory)
                done = true
            }
        }
        poolOpen = registry.makeGauge(name: "ledger_db_pool_connections_open", help: "Database connections open")
        poolInUse = registry.makeGauge(name: "ledger_db_pool_connections_in_use", help: "Database connections lent out")
        batchSize = Metrics.Recorder(label: "ledger_append_batch_size", aggregate: true)
        appended = Metrics.Counter(label: "ledger_entries_appended_total")
    }

    public func watch(pool: PostgresConnectionPool) { self.pool.withLock { $0 = pool } }

    /// Called by the event log after each committed batch.
    public func batchCommitted(appended count: Int) {
        batchSize.record(count)
        appended.increment(by: count)
    }

    /// Entries each read model passed over (`projections status` lists them).
    public func projectionSkips(_ counts: [String: Int64], models: [String]) {
        for model in models {
            registry.makeGauge(
                name: "ledger_projection_skipped_entries", labels: [("model", model)], help: "Log entries a read model could not apply and passed over"
            ).set(Double(counts[model] ?? 0))
        }
    }

    /// Requests an admission gate refused with 503 since start.
    func admissionRefusals(_ gate: String, total: Int) {
        registry.makeGauge(name: "ledger_admission_refused", labels: [("gate", gate)], help: "Expensive requests refused with 503 since start")
            .set(Double(total))
    }

    /// The event log writer's counters since start: batches sent while another was in flight, optimistic
    /// batches whose assumption failed (another writer, an existing key or claim), batches written under
    /// the head lock.
    func appendWriter(_ counts: (overlapped: Int, failedAssumptions: Int, careful: Int)) {
        registry.makeGauge(name: "ledger_append_batches_overlapped", help: "Append batches sent while another was in flight, since start")
            .set(Double(counts.overlapped))
        registry.makeGauge(
            name: "ledger_append_assumptions_failed", help: "Optimistic append batches whose assumption failed and were written again carefully, since start"
        ).set(Double(counts.failedAssumptions))
        registry.makeGauge(name: "ledger_append_batches_careful", help: "Append batches written under the head lock, since start")
            .set(Double(counts.careful))
    }

    /// Key events in the log that no trust anchor authorises (someone wrote them without the node's keys).
    func unauthorisedKeyEvents(_ count: Int) {
        registry.makeGauge(name: "ledger_unauthorised_key_events", help: "Key events in the log that are not authorised and are ignored")
            .set(Double(count))
    }

    /// The latest checkpoint's cosignatures against the configured quorum.
    func witnessed(size: Int64, cosigned: Int, quorum: Int) {
        registry.makeGauge(name: "ledger_checkpoint_witnessed_size", help: "Size of the latest checkpoint the node asked its witnesses to cosign")
            .set(Double(size))
        registry.makeGauge(name: "ledger_checkpoint_cosignatures", help: "Witnesses that cosigned the latest checkpoint").set(Double(cosigned))
        registry.makeGauge(name: "ledger_checkpoint_witness_quorum_met", help: "1 when the latest checkpoint has its witness quorum")
            .set(Double(cosigned >= quorum ? 1 : 0))
    }

    /// A witness that refused (or could not be reached); a split view is counted apart.
    func witnessRefusal(witness: String, splitView: Bool, counts: Bool) {
        if counts {
            registry.makeCounter(name: "ledger_witness_refusals_total", labels: [("witness", witness)], help: "Checkpoints a witness refused to cosign (or could not: it is ahead of them)")
                .increment()
        } else {
            registry.makeCounter(name: "ledger_witness_unreachable_total", labels: [("witness", witness)], help: "Witness requests that got no answer")
                .increment()
        }
        if splitView {
            registry.makeCounter(name: "ledger_witness_split_views_total", labels: [("witness", witness)], help: "Witnesses that hold another tree of the same size")
                .increment()
        }
    }

    /// The retention worker's pending deletion requests and what it did since start.
    func retention(pending: Int, erased: Int, deferred: Int, denied: Int, reconciled: Int, archived: Int, reviews: Int) {
        registry.makeGauge(name: "ledger_retention_deletions_denied", help: "Deletion requests denied (a locked retention policy) since start")
            .set(Double(denied))
        registry.makeGauge(name: "ledger_retention_records_archived", help: "Records archived by expired retention policies since start").set(Double(archived))
        registry.makeGauge(name: "ledger_retention_reviews_required", help: "Records flagged for review by expired retention policies since start")
            .set(Double(reviews))
        registry.makeGauge(name: "ledger_retention_deletions_pending", help: "Deletion requests not answered yet").set(Double(pending))
        registry.makeGauge(name: "ledger_retention_records_erased", help: "Records erased by the retention worker (requests and expired policies) since start").set(Double(erased))
        registry.makeGauge(name: "ledger_retention_deletions_deferred", help: "Erasures deferred (a hold, the floor) since start").set(Double(deferred))
        registry.makeGauge(name: "ledger_retention_payloads_reconciled", help: "Purged payloads deleted on reconciliation since start").set(Double(reconciled))
    }

    /// Usage events dropped because the usage buffer was full or the database refused them.
    func usageDropped(total: Int) {
        registry.makeGauge(name: "ledger_usage_events_dropped", help: "Usage events dropped since start").set(Double(total))
    }

    /// The Prometheus text exposition.
    public func exposition() -> [UInt8] {
        if let pool = pool.withLock({ $0 }) {
            let usage = pool.usage
            poolOpen.set(Double(usage.open))
            poolInUse.set(Double(usage.open - usage.idle))
        }
        return registry.emitToBuffer()
    }
}
