import CERKit
import Foundation
import HTTPTypes
import Hummingbird
import LedgerServer
import LedgerStore
import Logging
import Testing
import LedgerTesting
import Yams

/// docs/openapi.yaml against the code: the same routes as the router, and the running server's
/// responses use documented statuses and carry the documented required members.
@Suite(.blockingIO) struct OpenAPITests {
    nonisolated(unsafe) static let document: [String: Any] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/openapi.yaml")
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        return ((try? Yams.load(yaml: text)) as? [String: Any]) ?? [:]
    }()

    static var paths: [String: [String: Any]] { (document["paths"] as? [String: [String: Any]]) ?? [:] }

    /// "METHOD /path/{param}" for every documented operation.
    static var documentedOperations: Set<String> {
        var out = Set<String>()
        for (path, item) in paths {
            for method in item.keys where ["get", "post", "put", "patch", "delete"].contains(method) { out.insert("\(method.uppercased()) \(path)") }
        }
        return out
    }

    @Test func documentIsOpenAPI31() {
        #expect(Self.document["openapi"] as? String == "3.1.0")
        #expect(Self.paths.count > 20)
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        let node = try TestNode()
        var configuration = ServerConfiguration()
        configuration.keysDirectory = node.keysDirectory
        let parts = try await LedgerServerApp.makeParts(configuration: configuration, conninfo: node.conninfo, logger: Logger(label: "test"))
        let router = LedgerServerApp.makeRouter(configuration: configuration, parts: parts)
        let routed = Set(router.routes.map { route -> String in
            let path = "\(route.path)".split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            return "\(route.method.rawValue) /\(path)"
        })
        await parts.pool.shutdown()
        #expect(routed.subtracting(Self.documentedOperations).sorted() == [], "routes missing from docs/openapi.yaml")
        #expect(Self.documentedOperations.subtracting(routed).sorted() == [], "documented operations the server does not have")
    }

    /// The `required` members of a response's JSON schema, following one level of `$ref`.
    static func requiredMembers(_ response: [String: Any]) -> [String]? {
        var response = response
        if let ref = response["$ref"] as? String { response = resolve(ref) ?? [:] }
        guard let content = response["content"] as? [String: Any], let json = content["application/json"] as? [String: Any],
            var schema = json["schema"] as? [String: Any]
        else { return nil }
        if let ref = schema["$ref"] as? String { schema = resolve(ref) ?? [:] }
        return schema["required"] as? [String]
    }

    static func resolve(_ ref: String) -> [String: Any]? {
        var node: Any? = document
        for part in ref.dropFirst(2).split(separator: "/") { node = (node as? [String: Any])?[String(part)] }
        return node as? [String: Any]
    }

    @Test func liveResponsesUseDocumentedStatusesAndMembers() throws {
        let node = try TestNode()
        let bundle = try freshBundle("openapi")
        let hash = try JSONParser.parse(bundle)["certificateHash"]!.stringValue!
        let admin = [("X-Admin-Secret", node.adminToken)]
        let project = try TestNode.fixture("test-project-bundle.json")
        let projectHash = try JSONParser.parse(project)["integrity"]!["projectHash"]!.stringValue!
        let certify = Array(#"{"provider":"p","model":"m","input":"i","output":"o","executionId":"oa-1"}"#.utf8)
        // (operation, path to request, method, body, key, extra headers)
        let calls: [(String, String, String, [UInt8]?, String?, [(String, String)])] = [
            ("GET /health", "/health", "GET", nil, nil, []),
            ("GET /v1/health", "/v1/health", "GET", nil, nil, []),
            ("GET /ready", "/ready", "GET", nil, nil, []),
            ("GET /version", "/version", "GET", nil, nil, []),
            ("GET /.well-known/nexart-node.json", "/.well-known/nexart-node.json", "GET", nil, nil, []),
            ("GET /metrics", "/metrics", "GET", nil, nil, []),
            ("POST /api/attest", "/api/attest", "POST", bundle, node.apiKey, []),
            ("POST /api/stamp", "/api/stamp", "POST", bundle, node.apiKey, []),
            ("POST /api/attest", "/api/attest", "POST", Array("{}".utf8), node.apiKey, []),
            ("POST /api/attest", "/api/attest", "POST", bundle, nil, []),
            ("POST /api/stamp-hash", "/api/stamp-hash", "POST", Array(#"{"certificateHash":"\#(hash)"}"#.utf8), node.apiKey, []),
            ("POST /v1/cer/ai/certify", "/v1/cer/ai/certify", "POST", certify, node.apiKey, []),
            ("POST /v1/cer/ai/create", "/v1/cer/ai/create", "POST", certify, node.apiKey, []),
            ("POST /v1/cer/verify", "/v1/cer/verify", "POST", bundle, nil, []),
            ("GET /v1/resolve/cer/{hash}", "/v1/resolve/cer/\(hash)", "GET", nil, nil, []),
            ("GET /v1/resolve/cer/{hash}", "/v1/resolve/cer/nope", "GET", nil, nil, []),
            ("GET /api/proofs/{hash}", "/api/proofs/\(hash)", "GET", nil, node.apiKey, []),
            ("GET /api/proofs", "/api/proofs?limit=10", "GET", nil, node.apiKey, []),
            ("POST /v1/records/{hash}/visibility", "/v1/records/\(hash)/visibility", "POST", Array(#"{"visibility":"public"}"#.utf8), node.apiKey, []),
            ("GET /v1/resolve/cer/{hash}", "/v1/resolve/cer/\(hash)", "GET", nil, nil, []),
            ("POST /v1/records/{hash}/lifecycle", "/v1/records/\(hash)/lifecycle", "POST", Array(#"{"action":"archive"}"#.utf8), node.apiKey, []),
            ("POST /v1/records/{hash}/lifecycle", "/v1/records/\(hash)/lifecycle", "POST", Array(#"{"action":"hide"}"#.utf8), node.apiKey, []),
            ("POST /v1/records/{hash}/lifecycle", "/v1/records/\(hash)/lifecycle", "POST", Array(#"{"action":"restore"}"#.utf8), node.apiKey, []),
            ("POST /v1/records/{hash}/lifecycle", "/v1/records/\(hash)/lifecycle", "POST", Array(#"{"action":"burn"}"#.utf8), node.apiKey, []),
            ("GET /v1/records/{hash}/lifecycle", "/v1/records/\(hash)/lifecycle", "GET", nil, node.apiKey, []),
            ("POST /v1/admin/legal-holds", "/v1/admin/legal-holds", "POST", Array(#"{"caseId":"C-1","account":"alpha","scope":"account","holdId":"h1"}"#.utf8), nil, admin),
            ("POST /v1/admin/legal-holds", "/v1/admin/legal-holds", "POST", Array(#"{"caseId":"C-1","account":"alpha","scope":"account","holdId":"h1"}"#.utf8), nil, admin),
            ("GET /v1/admin/legal-holds", "/v1/admin/legal-holds", "GET", nil, nil, admin),
            ("POST /v1/records/{hash}/deletion", "/v1/records/\(hash)/deletion", "POST", Array("{}".utf8), node.apiKey, []),
            ("POST /v1/records/{hash}/deletion", "/v1/records/\(hash)/deletion", "POST", Array("{}".utf8), node.apiKey, []),
            ("GET /v1/admin/retention", "/v1/admin/retention", "GET", nil, nil, admin),
            ("POST /v1/admin/retention/policies", "/v1/admin/retention/policies", "POST", Array(#"{"account":"alpha","class":"long","action":"archive","mode":"locked"}"#.utf8), nil, admin),
            ("POST /v1/admin/retention/policies", "/v1/admin/retention/policies", "POST", Array(#"{"account":"alpha","class":"long","action":"archive","mode":"locked"}"#.utf8), nil, admin),
            ("POST /v1/admin/retention/policies", "/v1/admin/retention/policies", "POST", Array(#"{"account":"alpha","class":"short","action":"archive","mode":"locked"}"#.utf8), nil, admin),
            ("POST /v1/admin/retention/policies", "/v1/admin/retention/policies", "POST", Array(#"{"account":"alpha","class":"forever","action":"archive"}"#.utf8), nil, admin),
            ("GET /v1/admin/retention/policies", "/v1/admin/retention/policies", "GET", nil, nil, admin),
            ("POST /v1/admin/legal-holds/{id}/release", "/v1/admin/legal-holds/h1/release", "POST", Array("{}".utf8), nil, admin),
            ("POST /v1/admin/legal-holds/{id}/release", "/v1/admin/legal-holds/h1/release", "POST", Array("{}".utf8), nil, admin),
            ("POST /v1/admin/accounts", "/v1/admin/accounts", "POST", Array(#"{"id":"delta"}"#.utf8), nil, admin),
            ("GET /v1/admin/accounts", "/v1/admin/accounts", "GET", nil, nil, admin),
            ("GET /v1/admin/accounts/{id}", "/v1/admin/accounts/delta", "GET", nil, nil, admin),
            ("POST /v1/admin/accounts/{id}", "/v1/admin/accounts/delta", "POST", Array(#"{"monthlyLimit":7}"#.utf8), nil, admin),
            ("POST /v1/admin/accounts/{id}/api-keys", "/v1/admin/accounts/delta/api-keys", "POST", Array("{}".utf8), nil, admin),
            ("GET /v1/admin/accounts/{id}/api-keys", "/v1/admin/accounts/delta/api-keys", "GET", nil, nil, admin),
            ("POST /v1/admin/api-keys/{id}/rotate", "/v1/admin/api-keys/2/rotate", "POST", nil, nil, admin),
            ("POST /v1/admin/api-keys/{id}/revoke", "/v1/admin/api-keys/3/revoke", "POST", nil, nil, admin),
            ("GET /v1/admin/usage", "/v1/admin/usage", "GET", nil, nil, admin),
            ("GET /v1/admin/accounts", "/v1/admin/accounts", "GET", nil, nil, []),
            ("GET /v1/provenance/{hash}", "/v1/provenance/\(hash)", "GET", nil, node.apiKey, []),
            ("GET /v1/provenance/{hash}", "/v1/provenance/\(hash)", "GET", nil, "el_live_nope", []),
            ("GET /v1/provenance/{hash}", "/v1/provenance/nope", "GET", nil, nil, []),
            ("GET /v1/provenance/{hash}", "/v1/provenance/sha256:\(String(repeating: "1", count: 64))", "GET", nil, nil, []),
            ("GET /v1/runs/{runId}", "/v1/runs/no-such-run", "GET", nil, node.apiKey, []),
            ("GET /v1/runs/{runId}", "/v1/runs/no-such-run", "GET", nil, nil, []),
            ("POST /v1/project-bundle/verify", "/v1/project-bundle/verify", "POST", project, nil, []),
            ("POST /v1/project-bundle/verify", "/v1/project-bundle/verify", "POST", Array("[1".utf8), nil, []),
            ("POST /v1/project-bundle/register", "/v1/project-bundle/register", "POST", project, node.apiKey, []),
            ("POST /v1/project-bundle/register", "/v1/project-bundle/register", "POST", Array("{}".utf8), node.apiKey, []),
            ("POST /v1/project-bundle/register", "/v1/project-bundle/register", "POST", project, nil, []),
            ("POST /api/register/project-bundle", "/api/register/project-bundle", "POST", project, node.apiKey, []),
            ("POST /api/register/project-bundle", "/api/register/project-bundle", "POST", Array("{}".utf8), node.apiKey, []),
            ("POST /api/register/project-bundle", "/api/register/project-bundle", "POST", project, nil, []),
            ("POST /v1/project-bundles/{hash}/deletion", "/v1/project-bundles/\(projectHash)/deletion", "POST", Array("{}".utf8), node.apiKey, []),
            ("POST /v1/project-bundles/{hash}/deletion", "/v1/project-bundles/\(projectHash)/deletion", "POST", Array("{}".utf8), node.apiKey, []),
            ("POST /v1/project-bundles/{hash}/deletion", "/v1/project-bundles/nope/deletion", "POST", nil, node.apiKey, []),
            ("POST /v1/runs/{runId}/deletion", "/v1/runs/no-such-run/deletion", "POST", nil, node.apiKey, []),
            ("POST /v1/runs/{runId}/deletion", "/v1/runs/no-such-run/deletion", "POST", nil, nil, []),
            ("POST /v1/admin/deletions", "/v1/admin/deletions", "POST", Array(#"{"account":"alpha","runId":"no-such-run"}"#.utf8), nil, admin),
            ("POST /v1/admin/deletions", "/v1/admin/deletions", "POST", Array(#"{"account":"alpha"}"#.utf8), nil, admin),
            ("POST /v1/admin/deletions", "/v1/admin/deletions", "POST", Array(#"{"account":"alpha","certificateHash":"\#(hash)"}"#.utf8), nil, admin),
            ("POST /v1/data-subjects/deletion", "/v1/data-subjects/deletion", "POST", Array(#"{"dataSubject":"nobody"}"#.utf8), node.apiKey, []),
            ("POST /v1/data-subjects/deletion", "/v1/data-subjects/deletion", "POST", Array("{}".utf8), node.apiKey, []),
            ("POST /v1/data-subjects/deletion", "/v1/data-subjects/deletion", "POST", Array(#"{"dataSubject":"nobody"}"#.utf8), nil, []),
            ("GET /api/proofs", "/api/proofs?lifecycle=all", "GET", nil, node.apiKey, []),
            ("GET /api/proofs", "/api/proofs?lifecycle=gone", "GET", nil, node.apiKey, []),
            ("POST /v1/project-bundles/{hash}/visibility", "/v1/project-bundles/\(projectHash)/visibility", "POST", Array(#"{"visibility":"public"}"#.utf8), node.apiKey, []),
            ("POST /v1/project-bundles/{hash}/visibility", "/v1/project-bundles/\(projectHash)/visibility", "POST", Array(#"{"visibility":"x"}"#.utf8), node.apiKey, []),
            ("GET /api/project-bundles/{hash}", "/api/project-bundles/\(projectHash)", "GET", nil, nil, []),
            ("GET /api/project-bundles/{hash}", "/api/project-bundles/sha256:\(String(repeating: "2", count: 64))", "GET", nil, nil, []),
            ("GET /api/project-bundles/{hash}", "/api/project-bundles/x", "GET", nil, nil, []),
            ("POST /v1/admin/log/checkpoint", "/v1/admin/log/checkpoint", "POST", nil, nil, admin),
            ("POST /v1/admin/log/checkpoint", "/v1/admin/log/checkpoint", "POST", nil, nil, []),
            ("GET /v1/log", "/v1/log", "GET", nil, nil, []),
            ("GET /v1/log/checkpoint", "/v1/log/checkpoint", "GET", nil, nil, []),
            ("GET /v1/log/checkpoints", "/v1/log/checkpoints?limit=5", "GET", nil, nil, []),
            ("GET /v1/log/checkpoints", "/v1/log/checkpoints?limit=0", "GET", nil, nil, []),
            ("GET /v1/log/keys", "/v1/log/keys", "GET", nil, nil, []),
            ("GET /v1/log/keys", "/v1/log/keys?after=0&limit=1", "GET", nil, nil, []),
            ("GET /v1/log/keys", "/v1/log/keys?limit=0", "GET", nil, nil, []),
            ("GET /v1/log/entries/{index}", "/v1/log/entries/0", "GET", nil, nil, []),
            ("GET /v1/log/entries/{index}", "/v1/log/entries/1", "GET", nil, nil, []),
            ("GET /v1/log/entries/{index}", "/v1/log/entries/1", "GET", nil, nil, [("X-Admin-Secret", "not-the-secret-at-all")]),
            ("GET /v1/log/entries/{index}", "/v1/log/entries/x", "GET", nil, nil, []),
            ("GET /v1/log/proof/inclusion", "/v1/log/proof/inclusion?index=1", "GET", nil, nil, []),
            ("GET /v1/log/proof/inclusion", "/v1/log/proof/inclusion?index=1&size=2", "GET", nil, nil, []),
            ("GET /v1/log/proof/inclusion", "/v1/log/proof/inclusion?index=99999", "GET", nil, nil, []),
            ("GET /v1/log/proof/inclusion", "/v1/log/proof/inclusion?index=-3", "GET", nil, nil, []),
            ("GET /v1/log/proof/consistency", "/v1/log/proof/consistency?from=1&to=2", "GET", nil, nil, []),
            ("GET /v1/log/proof/consistency", "/v1/log/proof/consistency?from=2&to=1", "GET", nil, nil, []),
        ]
        var exercised = Set<String>()
        for (operation, path, method, body, key, headers) in calls {
            var h = headers
            if let key { h.append(("Authorization", "Bearer \(key)")) }
            if body != nil { h.append(("Content-Type", "application/json")) }
            let r = try RawHTTP.request(port: node.port, method, path, headers: h, body: body ?? (method == "POST" ? [] : nil))
            let parts = operation.split(separator: " ", maxSplits: 1)
            let documented = (Self.paths[String(parts[1])]?[parts[0].lowercased()] as? [String: Any])?["responses"] as? [String: Any]
            let responses = try #require(documented, "\(operation) is not documented")
            #expect(responses["\(r.status)"] != nil, "\(operation) \(path): status \(r.status) is not documented (\(r.text.prefix(200)))")
            if let spec = responses["\(r.status)"] as? [String: Any], let required = Self.requiredMembers(spec), let body = r.json?.objectValue {
                for member in required { #expect(body[member] != nil, "\(operation) \(r.status): required member \(member) is missing") }
            }
            exercised.insert(operation)
        }
        #expect(exercised == Self.documentedOperations, "every documented operation is exercised")
    }
}
