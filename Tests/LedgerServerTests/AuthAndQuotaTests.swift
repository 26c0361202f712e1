import CERKit
import Foundation
import Testing
import LedgerTesting

@Suite(.blockingIO) struct AuthAndQuotaTests {
    @Test func missingWrongAndRevokedKeysGet401AndRotatedKeysWork() throws {
        let node = try TestNode()
        let bundle = try freshBundle("auth")
        let missing = try node.post("/api/attest", bundle)
        #expect(missing.status == 401)
        #expect(missing.json?["message"]?.stringValue?.contains("Authorization: Bearer") == true)
        #expect(try node.post("/api/attest", bundle, key: "el_live_" + String(repeating: "0", count: 48)).status == 401)
        #expect(try node.post("/api/attest", bundle, key: "not-a-key").status == 401)
        #expect(try node.post("/api/attest", bundle, headers: [("Authorization", "Basic \(node.apiKey)")]).status == 401)

        let key = try node.newAPIKey(account: "alpha")
        #expect(try node.post("/api/attest", try freshBundle("auth-ok"), key: key).status == 200)
        let id = try #require(try node.scalar("SELECT id FROM api_keys WHERE key_prefix = '\(String(key.prefix(12)))' ORDER BY id DESC LIMIT 1"))
        #expect(try node.cli(["api-keys", "revoke", id, "--database-url", node.conninfo]).status == 0)
        let revoked = try node.post("/api/attest", try freshBundle("auth-revoked"), key: key)
        #expect(revoked.status == 401)
        #expect(revoked.json?["message"] == "API key is inactive")
        // The record made with the revoked key is still there for its account.
        let hash = try JSONParser.parse(try freshBundle("auth-ok"))["certificateHash"]!.stringValue!
        #expect(try node.get("/api/proofs/\(hash)", key: node.apiKey).status == 200)

        // Rotation through the admin API: the old key stops, the new one works.
        let adminHeaders = [("X-Admin-Secret", node.adminToken)]
        #expect(try node.post("/v1/admin/api-keys/1/rotate", Array("{}".utf8)).status == 401)
        let rotated = try RawHTTP.post(port: node.port, "/v1/admin/api-keys/1/rotate", json: Array("{}".utf8), headers: adminHeaders)
        #expect(rotated.status == 201, "\(rotated.text)")
        let newKey = try #require(rotated.json?["apiKey"]?.stringValue)
        #expect(try node.post("/api/attest", try freshBundle("auth-old"), key: node.apiKey).status == 401)
        #expect(try node.post("/api/attest", try freshBundle("auth-new"), key: newKey).status == 200)
        // Keys are stored only as hashes.
        #expect(try node.scalar("SELECT count(*) FROM api_keys WHERE key_prefix || '' LIKE '%\(newKey.suffix(40))%'") == "0")
    }

    @Test func accountsCannotSeeEachOthersPrivateRecords() throws {
        let node = try TestNode()
        let other = try node.createAccount("beta")
        let bundle = try freshBundle("private")
        let hash = try JSONParser.parse(bundle)["certificateHash"]!.stringValue!
        #expect(try node.post("/api/attest", bundle, key: node.apiKey).status == 200)
        #expect(try node.get("/api/proofs/\(hash)", key: node.apiKey).status == 200)
        let foreign = try node.get("/api/proofs/\(hash)", key: other)
        #expect(foreign.status == 404)
        #expect(foreign.errorCode == "NOT_FOUND")
        #expect(try node.get("/api/proofs", key: other).json?["count"] == 0)
        #expect(try node.get("/api/proofs", key: node.apiKey).json?["count"] == 1)
        #expect(try node.get("/v1/resolve/cer/\(hash)").status == 404)
        // Nor change their visibility.
        #expect(try node.post("/v1/records/\(hash)/visibility", json: ["visibility": "public"], key: other).status == 404)
        #expect(try node.get("/v1/resolve/cer/\(hash)").status == 404)
    }

    @Test func fiftyConcurrentRequestsAgainstTenRemainingAdmitExactlyTen() throws {
        let node = try TestNode(monthlyLimit: 12)
        // Use 2 of 12 first, so 10 remain.
        #expect(try node.post("/api/attest", try freshBundle("quota-a"), key: node.apiKey).status == 200)
        #expect(try node.post("/api/attest", try freshBundle("quota-b"), key: node.apiKey).status == 200)
        let bundles = try (0..<50).map { try freshBundle("quota-\($0)") }
        let statuses = Statuses()
        let port = node.port, key = node.apiKey
        DispatchQueue.concurrentPerform(iterations: 50) { i in
            let r = try? RawHTTP.post(port: port, "/api/attest", json: bundles[i], key: key)
            statuses.add(r)
        }
        let results = statuses.all
        #expect(results.count == 50)
        #expect(results.filter { $0.status == 200 }.count == 10)
        let refused = results.filter { $0.status == 429 }
        #expect(refused.count == 40)
        if let r = refused.first {
            #expect(r.errorCode == "QUOTA_EXCEEDED")
            #expect(r.json?["limit"] == 12)
            #expect(r.json?["used"] == 12)
            #expect(r.json?["resetAt"]?.stringValue?.hasSuffix("-01T00:00:00.000Z") == true)
            #expect(r.header("X-Quota-Remaining") == "0")
            #expect(r.header("X-Quota-Limit") == "12")
        }
        #expect(try node.scalar("SELECT used FROM quota_usage") == "12")
        #expect(try node.scalar("SELECT count(*) FROM ledger_entries WHERE type = 'cer.attested'") == "12")
        // Usage events are written in the background within about a second.
        var counted = "0"
        for _ in 0..<50 where counted != "40" {
            usleep(100_000)
            counted = try node.scalar("SELECT COALESCE(sum(requests), 0) FROM usage_minutes WHERE status_code = 429") ?? "0"
        }
        #expect(counted == "40")
    }

    @Test func adminAPIManagesAccountsAndKeysBehindItsToken() throws {
        let node = try TestNode()
        let admin = [("X-Admin-Secret", node.adminToken)]
        #expect(try node.get("/v1/admin/accounts").status == 401)
        #expect(try node.get("/v1/admin/accounts", headers: [("X-Admin-Secret", "wrong-token-0123456789")]).status == 401)
        let created = try RawHTTP.post(port: node.port, "/v1/admin/accounts", json: Array(#"{"id":"gamma","plan":"pro","monthlyLimit":5000}"#.utf8), headers: admin)
        #expect(created.status == 201, "\(created.text)")
        #expect(try RawHTTP.post(port: node.port, "/v1/admin/accounts", json: Array(#"{"id":"gamma"}"#.utf8), headers: admin).status == 409)
        #expect(try RawHTTP.post(port: node.port, "/v1/admin/accounts", json: Array(#"{"id":"../x"}"#.utf8), headers: admin).status == 400)
        let key = try RawHTTP.post(port: node.port, "/v1/admin/accounts/gamma/api-keys", json: Array(#"{"label":"ci"}"#.utf8), headers: admin)
        #expect(key.status == 201)
        let raw = try #require(key.json?["apiKey"]?.stringValue)
        #expect(try node.post("/api/attest", try freshBundle("gamma"), key: raw).status == 200)
        let listed = try node.get("/v1/admin/accounts/gamma/api-keys", headers: admin)
        #expect(listed.json?["apiKeys"]?[0]?["apiKey"] == nil, "a listing never shows the key")
        let accounts = try node.get("/v1/admin/accounts", headers: admin)
        #expect(accounts.json?["accounts"]?.arrayValue?.contains { $0["id"] == "gamma" && $0["usedThisMonth"] == 1 } == true)
    }
}

/// Results collected from concurrent threads.
final class Statuses: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [HTTPResult] = []
    func add(_ r: HTTPResult?) {
        guard let r else { return }
        lock.lock()
        results.append(r)
        lock.unlock()
    }
    var all: [HTTPResult] {
        lock.lock()
        defer { lock.unlock() }
        return results
    }
}
