import CERKit
import LedgerCore
import Foundation
import HTTPTypes
import Hummingbird
import LedgerProjections
import LedgerStore
import Prometheus

/// Node metadata: health, readiness, version, the key manifest and metrics.
struct NodeRoutes: Sendable {
    let identity: NodeIdentity
    let keys: KeyRing
    let pool: PostgresConnectionPool
    let metrics: ServerMetrics
    let clock: @Sendable () -> Int64
    var projections: ProjectionRunner? = nil
    var gates: [AdmissionGate] = []
    var usage: UsageRecorder? = nil
    var log: PostgresEventLog? = nil

    func register(on router: Router<LedgerRequestContext>) {
        router.get("/health") { _, _ in health() }
        router.get("/v1/health") { _, _ in health() }
        router.get("/ready") { _, _ in await ready() }
        router.get("/version") { _, _ in version() }
        router.get("/.well-known/nexart-node.json") { request, _ in manifest(request) }
        router.get("/metrics") { _, _ in
            if let projections, let skips = try? await projections.skips(limit: 0) {
                metrics.projectionSkips(skips.counts, models: projections.projections.map(\.name))
            }
            for gate in gates { metrics.admissionRefusals(gate.name, total: gate.refused) }
            if let usage { metrics.usageDropped(total: usage.dropped) }
            if let log { metrics.appendWriter(log.writerCounts) }
            metrics.unauthorisedKeyEvents(keys.current.history.ignoredCount)
            return JSONResponse.bytes(metrics.exposition(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
    }

    var identityMembers: JSONObject {
        [
            "node": .string(JSONString(NodeIdentity.nodeName)), "nodeId": .string(JSONString(identity.nodeId)),
            "version": .string(JSONString(NodeIdentity.serviceVersion)), "sdk_version": .string(JSONString(CERBuilder.defaultSDKVersion)),
            "protocol_version": .string(JSONString(NodeIdentity.defaultProtocolVersion)), "instance_id": .string(JSONString(identity.instanceId)),
        ]
    }

    func health() -> Response {
        var o = identityMembers
        o["status"] = "ok"
        o["timestamp"] = .string(JSONString(Timestamp.iso8601(milliseconds: clock())))
        return JSONResponse.make(body: .object(o))
    }

    /// 200 when the database answers within 2 s and a key can sign; 503 naming the reason otherwise.
    func ready() async -> Response {
        let start = ContinuousClock.now
        var o = identityMembers
        let ping: Result<Void, any Error> = await withTaskGroup(of: Result<Void, any Error>?.self) { group in
            group.addTask {
                do {
                    _ = try await pool.withConnection { c in try c.query("SELECT 1") }
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(2))
                return nil
            }
            let first = await group.next()!
            group.cancelAll()
            return first ?? .failure(LedgerServerError(.serviceUnavailable, "db_ping_timeout"))
        }
        let elapsed = ContinuousClock.now - start
        let ms = elapsed.milliseconds
        o["db_latency_ms"] = .number((ms * 10).rounded() / 10)
        o["ms"] = .number((ms * 10).rounded() / 10)
        switch ping {
        case .success:
            o["db"] = "ok"
            if let problem = keys.current.signerProblem, keys.current.signer == nil {
                o["status"] = "not_ready"
                o["reason"] = "no_signing_key"
                o["message"] = .string(JSONString(problem))
                return JSONResponse.make(status: .serviceUnavailable, body: .object(o))
            }
            o["status"] = "ready"
            return JSONResponse.make(body: .object(o))
        case .failure(let error):
            o["status"] = "not_ready"
            o["db"] = "fail"
            o["reason"] = (error as? LedgerServerError)?.message == "db_ping_timeout" ? "db_ping_timeout" : "db_ping_failed"
            return JSONResponse.make(status: .serviceUnavailable, body: .object(o))
        }
    }

    func version() -> Response {
        JSONResponse.make(body: [
            "service": .string(JSONString(NodeIdentity.nodeName)), "serviceVersion": .string(JSONString(NodeIdentity.serviceVersion)),
            "sdkVersion": .string(JSONString(CERBuilder.defaultSDKVersion)),
            "protocolVersion": .string(JSONString(NodeIdentity.defaultProtocolVersion)),
            "supportedProtocolVersions": ["1.2.0", "1.3.0", "1.3.1"], "nodeId": .string(JSONString(identity.nodeId)),
            "nodeRuntimeHash": .string(JSONString(identity.nodeRuntimeHash)),
            "timestamp": .string(JSONString(Timestamp.iso8601(milliseconds: clock()))),
        ])
    }

    /// The key manifest with a strong ETag; `If-None-Match` gets a 304.
    func manifest(_ request: Request) -> Response {
        let snapshot = keys.current
        let headers = [("ETag", snapshot.etag), ("Cache-Control", "public, max-age=300")]
        if let match = request.headers[.ifNoneMatch], match.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == snapshot.etag }) {
            return JSONResponse.bytes(status: .notModified, [], contentType: "application/json; charset=utf-8", headers: headers)
        }
        return JSONResponse.bytes(snapshot.document, contentType: "application/json; charset=utf-8", headers: headers)
    }
}
