public import CERKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
public import LedgerCore
public import LedgerStore
public import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// `evidence-ledger witness serve`: a transparency-log witness (c2sp.org/tlog-witness) for other logs.
/// It cosigns a checkpoint (c2sp.org/tlog-cosignature, `cosignature/v1`) only when it is signed by a key
/// it trusts for the checkpoint's origin and consistent with the latest checkpoint it cosigned for that
/// origin, which it keeps in PostgreSQL (`witness_checkpoints`, updated atomically with the check).
public enum WitnessServer {
    public struct Configuration: Sendable {
        public var signer: CosignatureSigner
        /// Trusted log keys by origin (a log's signed-note verifier keys; the key name is its origin).
        public var logs: [String: [NoteVerifier]]
        public var host = "127.0.0.1"
        public var port = 8090
        public var databaseRole: String? = "ledger_app"
        public var clock: @Sendable () -> UInt64 = { UInt64(max(0, Date().timeIntervalSince1970)) }

        public init(signer: CosignatureSigner, logs: [NoteVerifier]) {
            self.signer = signer
            self.logs = Dictionary(grouping: logs, by: \.name)
        }
    }

    /// The witness's answer to one `add-checkpoint` body: status, content type and body.
    public static func answer(_ body: [UInt8], store: WitnessStore, configuration: Configuration) async throws -> (Int, String, [UInt8]) {
        let request: AddCheckpointRequest
        do {
            request = try AddCheckpointRequest(parsing: body)
        } catch {
            return (400, "text/plain; charset=utf-8", Array("\(error)\n".utf8))
        }
        switch try await store.add(request, trusted: configuration.logs) {
        case .cosign(_, _, _, let text):
            return (200, "text/plain; charset=utf-8", configuration.signer.cosign(checkpointText: text, time: configuration.clock()))
        case .refuse(let status, let reason, let latest):
            if status == 409, let latest { return (409, "text/x.tlog.size", Array("\(latest)\n".utf8)) }
            return (status, "text/plain; charset=utf-8", Array("\(reason)\n".utf8))
        }
    }

    static func makeRouter(store: WitnessStore, configuration: Configuration, logger: Logger) -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/add-checkpoint") { request, _ -> Response in
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: AddCheckpointRequest.maxBytes)
            } catch {
                return text(413, "text/plain; charset=utf-8", Array("the request is larger than \(AddCheckpointRequest.maxBytes) bytes\n".utf8))
            }
            let (status, type, bytes) = try await answer(Array(buffer: body), store: store, configuration: configuration)
            if status != 200 { logger.notice("add-checkpoint refused", metadata: ["witness.status": "\(status)", "witness.reason": "\(String(decoding: bytes.prefix(200), as: UTF8.self))"]) }
            return text(status, type, bytes)
        }
        router.get("/") { _, _ -> Response in
            let state = try await store.state()
            let logs: [JSONValue] = configuration.logs.keys.sorted().map { origin in
                let s = state.first { $0.origin == origin }
                return [
                    "origin": .string(JSONString(origin)),
                    "keys": .array((configuration.logs[origin] ?? []).map { .string(JSONString($0.encoded)) }),
                    "size": .number(Double(s?.size ?? 0)),
                    "rootHash": s?.rootHash.map { .string(JSONString(Base64.encode($0))) } ?? .null,
                ]
            }
            let doc: JSONValue = [
                "name": .string(JSONString(configuration.signer.name)), "verifierKey": .string(JSONString(configuration.signer.verifier.encoded)),
                "protocol": "c2sp.org/tlog-witness", "logs": .array(logs),
            ]
            return text(200, "application/json; charset=utf-8", doc.compactBytes())
        }
        router.get("/health") { _, _ -> Response in text(200, "application/json; charset=utf-8", Array("{\"status\":\"ok\"}".utf8)) }
        return router
    }

    static func text(_ status: Int, _ type: String, _ bytes: [UInt8]) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = type
        return Response(status: HTTPResponse.Status(code: status), headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// Migrates the witness's database, then serves until SIGTERM or SIGINT.
    public static func run(
        configuration: Configuration, conninfo: String, logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws {
        _ = try Migrator.migrate(conninfo: conninfo)
        let pool = PostgresConnectionPool(configuration: PostgresConfiguration(
            conninfo: conninfo, maxConnections: 4, statementTimeoutMilliseconds: 10_000, role: configuration.databaseRole))
        let store = WitnessStore(pool: pool)
        let app = Application(
            router: makeRouter(store: store, configuration: configuration, logger: logger),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "evidence-ledger-witness"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: PoolService(pool: pool)), .init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
