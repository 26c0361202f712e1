import CERKit
import Foundation
import Testing
import LedgerTesting

/// Whatever a client sends: a 4xx with a JSON error naming the problem, and the ledger unchanged.
@Suite(.blockingIO) struct HostileRequestTests {
    /// A request as raw bytes; a Content-Length matching the body is added unless one is given.
    static func raw(_ method: String, _ path: String, _ headers: [String], _ body: [UInt8]) -> [UInt8] {
        var all = headers
        if method == "POST" && !headers.contains(where: { $0.lowercased().hasPrefix("content-length:") }) { all.append("Content-Length: \(body.count)") }
        return Array("\(method) \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\(all.map { $0 + "\r\n" }.joined())\r\n".utf8) + body
    }

    @Test func hostileBodiesAndHeadersGet4xxJSONAndLeaveTheLedgerUnchanged() throws {
        let node = try TestNode(monthlyLimit: 1000)
        // A valid attestation first, so the ledger and quota are not empty.
        #expect(try node.post("/api/attest", try freshBundle("hostile-base"), key: node.apiKey).status == 200)
        let size = try node.ledgerSize()
        let used = try node.scalar("SELECT used FROM quota_usage")
        let auth = "Authorization: Bearer \(node.apiKey)"
        let json = "Content-Type: application/json"
        var unknownVersion = try JSONParser.parse(try freshBundle("hostile-version")).objectValue!
        var snapshot = unknownVersion["snapshot"]!.objectValue!
        snapshot["protocolVersion"] = "9.9.9"
        unknownVersion["snapshot"] = .object(snapshot)
        var tampered = try JSONParser.parse(try freshBundle("hostile-tamper")).objectValue!
        var s2 = tampered["snapshot"]!.objectValue!
        s2["output"] = "a different answer"
        tampered["snapshot"] = .object(s2)
        let deep = Array(repeating: UInt8(ascii: "["), count: 100_000) + Array(repeating: UInt8(ascii: "]"), count: 100_000)

        let cases: [(String, [UInt8], ClosedRange<Int>, String?)] = [
            ("malformed JSON", Self.raw("POST", "/api/attest", [auth, json], Array("{\"a\": tru".utf8)), 400...400, "INVALID_JSON"),
            ("empty body", Self.raw("POST", "/api/attest", [auth, json], []), 400...400, "INVALID_JSON"),
            ("JSON array", Self.raw("POST", "/api/attest", [auth, json], Array("[]".utf8)), 400...400, "INVALID_BUNDLE"),
            ("text/plain", Self.raw("POST", "/api/attest", [auth, "Content-Type: text/plain"], Array("{}".utf8)), 415...415, "UNSUPPORTED_MEDIA_TYPE"),
            ("no content type", Self.raw("POST", "/api/attest", [auth], Array("{}".utf8)), 415...415, "UNSUPPORTED_MEDIA_TYPE"),
            ("form body", Self.raw("POST", "/v1/cer/ai/certify", [auth, "Content-Type: application/x-www-form-urlencoded"], Array("a=b".utf8)), 415...415, "UNSUPPORTED_MEDIA_TYPE"),
            ("invalid UTF-8", Self.raw("POST", "/api/attest", [auth, json], [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0x22, 0x7D]), 400...400, "INVALID_JSON"),
            ("lone surrogate in a key position", Self.raw("POST", "/api/attest", [auth, json], [0x7B, 0xED, 0xA0, 0x80, 0x22, 0x7D]), 400...400, "INVALID_JSON"),
            ("non-finite number", Self.raw("POST", "/api/attest", [auth, json], Array("{\"a\":1e400}".utf8)), 400...400, "INVALID_JSON"),
            ("deep nesting", Self.raw("POST", "/api/attest", [auth, json], deep), 400...400, "INVALID_JSON"),
            ("unknown protocol version", Self.raw("POST", "/api/attest", [auth, json], try CanonicalJSON.encode(.object(unknownVersion))), 400...400, "UNSUPPORTED_PROTOCOL_VERSION"),
            ("tampered bundle", Self.raw("POST", "/api/attest", [auth, json], try CanonicalJSON.encode(.object(tampered))), 400...400, "INVALID_BUNDLE"),
            ("wrong field types to certify", Self.raw("POST", "/v1/cer/ai/certify", [auth, json], Array("{\"provider\":1,\"model\":true}".utf8)), 400...400, "INVALID_REQUEST"),
            ("unknown protocol to certify", Self.raw("POST", "/v1/cer/ai/certify", [auth, json], Array("{\"provider\":\"p\",\"model\":\"m\",\"input\":\"i\",\"output\":\"o\",\"protocolVersion\":\"2.0\"}".utf8)), 400...400, "UNSUPPORTED_PROTOCOL_VERSION"),
            ("100 MB declared body", Self.raw("POST", "/api/attest", [auth, json, "Content-Length: 104857600"], Array(repeating: 0x20, count: 65536)), 413...413, "PAYLOAD_TOO_LARGE"),
            ("oversize header", Self.raw("GET", "/health", ["X-Padding: " + String(repeating: "a", count: 100_000)], []), 431...431, "HEADERS_TOO_LARGE"),
            ("forged oversize bearer", Self.raw("POST", "/api/attest", ["Authorization: Bearer " + String(repeating: "k", count: 20_000), json], Array("{}".utf8)), 401...401, "UNAUTHORIZED"),
            ("unknown route", Self.raw("GET", "/api/../../etc/passwd", [], []), 400...404, nil),
            ("bad hash in path", Self.raw("GET", "/v1/resolve/cer/sha256:%00%ff", [], []), 400...404, nil),
            ("negative limit", Self.raw("GET", "/api/proofs?limit=-1", [auth], []), 400...400, "INVALID_REQUEST"),
        ]
        for (name, bytes, expected, code) in cases {
            let r = try RawHTTP.send(port: node.port, bytes)
            #expect(expected.contains(r.status), "\(name): got \(r.status) \(r.text.prefix(200))")
            #expect(r.json?["error"]?.stringValue != nil, "\(name): the body is not a JSON error: \(r.text.prefix(200))")
            #expect(r.json?["message"]?.stringValue?.isEmpty == false, "\(name): no message")
            if let code { #expect(r.errorCode == code, "\(name): \(r.text.prefix(200))") }
        }

        // Header bytes HTTP forbids (control characters) are refused by the HTTP parser itself, before any
        // handler runs: a bare 400 and a closed connection (docs/http-api.md, "Errors").
        let control = try RawHTTP.send(port: node.port, Self.raw("POST", "/api/attest", ["Authorization: Bearer el_live_\u{1}", json], Array("{}".utf8)))
        #expect(control.status == 400)

        // A body cut short: the client promises 1000 bytes, sends 10 and closes its side.
        let truncated = Self.raw("POST", "/api/attest", [auth, json, "Content-Length: 1000"], Array("{\"bundleTy".utf8))
        if let r = try? RawHTTP.send(port: node.port, truncated, shutdownWrite: true, timeout: 10) {
            #expect((400..<500).contains(r.status), "truncated: \(r.status) \(r.text)")
        }
        // Nothing was appended and nothing was charged; the server still works.
        #expect(try node.ledgerSize() == size)
        #expect(try node.scalar("SELECT used FROM quota_usage") == used)
        #expect(try node.get("/health").status == 200)
        #expect(try node.post("/api/attest", try freshBundle("hostile-after"), key: node.apiKey).status == 200)
    }
}
