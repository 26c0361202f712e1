import CERKit
import Foundation
import Testing
import LedgerTesting

/// Over real sockets against the real binary and PostgreSQL: what an integrator written for a NexArt
/// node does, checked with CERKit using nothing but the published key manifest.
@Suite(.blockingIO) struct AttestationEndToEndTests {
    @Test func attestedFixtureVerifiesWithOnlyTheKeyManifest() throws {
        let node = try TestNode()
        let bundle = try TestNode.fixture("node-attest-test-AI_CER_FIXTURE.json")
        let sizeBefore = try node.ledgerSize()
        let r = try node.post("/api/attest", bundle, key: node.apiKey)
        #expect(r.status == 200, "\(r.text)")
        let response = try #require(r.json)
        let cer = try JSONParser.parse(bundle)
        #expect(response["certificateHash"] == cer["certificateHash"])
        #expect(r.header("X-Certificate-Hash") == cer["certificateHash"]?.stringValue)
        for member in ["ok", "attestation", "attestationId", "attestorKeyId", "bundleType", "certificateHash", "issuedAt", "kid",
                       "nodeRuntimeHash", "protocolVersion", "receipt", "signature", "timestamp", "verificationEnvelope",
                       "verificationEnvelopeSignature", "verificationUrl", "visibility"] {
            #expect(response[member] != nil, "live response member \(member) is missing")
        }
        // One ledger event per attestation, and the receipt carries its index; the executionId is claimed.
        #expect(try node.ledgerSize() == sizeBefore + 1)
        #expect(try node.scalar("SELECT value FROM ledger_claims WHERE key = '\(cer["snapshot"]!["executionId"]!.stringValue!)'")
            == cer["certificateHash"]?.stringValue)
        let index = try #require(response["ledger"]?["index"]?.numberValue)
        #expect(response["receipt"]?["ledgerIndex"]?.numberValue == index)
        #expect(try node.scalar("SELECT type FROM ledger_entries WHERE idx = \(Int(index))") == "cer.attested")

        let manifest = try node.manifest()
        let report = ArtifactVerifier.verify(package(cer: cer, response: response), options: VerificationOptions(keys: manifest, requireAttestation: true))
        #expect(report.isVerified, "\(report.json().compactText())")
        #expect(report.nodeSignature.status == .pass)
        #expect(report.verificationEnvelope.status == .pass)
        // The same response with one receipt byte changed does not verify.
        var forged = response.objectValue!
        var receipt = forged["receipt"]!.objectValue!
        receipt["ledgerIndex"] = .number(index + 1)
        forged["receipt"] = .object(receipt)
        let tampered = ArtifactVerifier.verify(package(cer: cer, response: .object(forged)), options: VerificationOptions(keys: manifest))
        #expect(tampered.nodeSignature.status == .fail)
    }

    @Test func identicalResubmissionReturnsTheOriginalReceiptAndChangesNothing() throws {
        let node = try TestNode(monthlyLimit: 5)
        let bundle = try freshBundle("replay")
        let first = try node.post("/api/stamp", bundle, key: node.apiKey)
        #expect(first.status == 200, "\(first.text)")
        #expect(first.header("X-Quota-Used") == "1")
        let size = try node.ledgerSize()
        let second = try node.post("/api/attest", bundle, key: node.apiKey)
        #expect(second.status == 200)
        #expect(second.header("X-Ledger-Replayed") == "true")
        #expect(second.json?["receipt"] == first.json?["receipt"])
        #expect(second.json?["signature"] == first.json?["signature"])
        #expect(second.json?["verificationEnvelopeSignature"] == first.json?["verificationEnvelopeSignature"])
        #expect(try node.ledgerSize() == size, "a replay must not append")
        #expect(second.header("X-Quota-Used") == "1", "a replay must not be charged")
        #expect(try node.scalar("SELECT used FROM quota_usage") == "1")
    }

    @Test func aDifferentBundleUnderAnExistingExecutionIdIsRefused() throws {
        let node = try TestNode()
        let original = try node.post("/api/attest", try freshBundle("mutation", output: "first"), key: node.apiKey)
        #expect(original.status == 200)
        let size = try node.ledgerSize()
        let changed = try node.post("/api/attest", try freshBundle("mutation", output: "second"), key: node.apiKey)
        #expect(changed.status == 409)
        #expect(changed.errorCode == "EXECUTION_MUTATION_DETECTED")
        #expect(changed.json?["existingCertificateHash"] == original.json?["certificateHash"])
        #expect(try node.ledgerSize() == size)
        // Another account may use the same executionId for its own record.
        let other = try node.createAccount("beta")
        #expect(try node.post("/api/attest", try freshBundle("mutation", output: "second"), key: other).status == 200)
    }

    @Test func certifyBuildsSealsAndSignsAVerifiableRecord() throws {
        let node = try TestNode()
        let request: JSONValue = [
            "executionId": "certify-1", "provider": "anthropic", "model": "claude-test", "input": "What is 2+2?", "output": "4",
            "parameters": ["temperature": 0, "maxTokens": 16, "topP": 1, "seed": 1], "createdAt": "2026-11-22T10:00:00.000Z",
            "timestamp": "2026-11-22T09:59:59.000Z", "metadata": ["team": "qa"], "unknownField": "dropped",
        ]
        let r = try node.post("/v1/cer/ai/certify", json: request, key: node.apiKey)
        #expect(r.status == 200, "\(r.text)")
        let response = try #require(r.json)
        let cer = try #require(response["cer"])
        #expect(cer["snapshot"]?["executionId"] == "certify-1")
        #expect(cer["meta"]?["team"] == "qa")
        #expect(cer["unknownField"] == nil && cer["snapshot"]?["unknownField"] == nil)
        // The same raw fields, sealed by CERKit directly, give the same certificate hash.
        var p = CertifyParameters(
            executionId: "certify-1", timestamp: "2026-11-22T09:59:59.000Z", createdAt: "2026-11-22T10:00:00.000Z", provider: "anthropic",
            model: "claude-test", input: "What is 2+2?", output: "4", parameters: ["temperature": 0, "maxTokens": 16, "topP": 1, "seed": 1])
        p.meta = ["team": "qa"]
        #expect(try CERBuilder.certifyDecision(p)["certificateHash"] == cer["certificateHash"])
        let report = ArtifactVerifier.verify(package(cer: cer, response: response), options: VerificationOptions(keys: try node.manifest(), requireAttestation: true))
        #expect(report.isVerified, "\(report.json().compactText())")

        // create: the same bundle, not signed, not recorded.
        let size = try node.ledgerSize()
        let created = try node.post("/v1/cer/ai/create", json: request, key: node.apiKey)
        #expect(created.status == 200)
        #expect(created.json?["certificateHash"] == cer["certificateHash"])
        #expect(created.json?["receipt"] == nil)
        #expect(try node.ledgerSize() == size)

        // Both input and inputHash, or neither, is refused by name.
        var both = request.objectValue!
        both["inputHash"] = .string(JSONString("sha256:" + String(repeating: "0", count: 64)))
        let refused = try node.post("/v1/cer/ai/certify", json: .object(both), key: node.apiKey)
        #expect(refused.status == 400)
        #expect(refused.json?["message"]?.stringValue?.contains("inputHash") == true)
    }

    @Test func governedBundleAndHashStampAreAttested() throws {
        let node = try TestNode()
        let exchange = try JSONParser.parse(try TestNode.fixture("attest_exchange_k1.json"))
        let cer = try #require(exchange["cer"])
        let r = try node.post("/api/attest", json: cer, key: node.apiKey)
        #expect(r.status == 200, "\(r.text)")
        #expect(r.json?["attestation"]?["checks"] == ["governed_execution"])
        #expect(r.json?["protocolVersion"] == "0.1")
        let report = ArtifactVerifier.verify(package(cer: cer, response: r.json!), options: VerificationOptions(keys: try node.manifest()))
        #expect(report.verificationEnvelope.status == .pass)
        #expect(report.nodeSignature.status == .pass)

        let hash = "sha256:" + String(repeating: "ab", count: 32)
        let stamp = try node.post("/api/stamp-hash", json: ["certificateHash": .string(JSONString(hash))], key: node.apiKey)
        #expect(stamp.status == 200, "\(stamp.text)")
        let receipt = try #require(stamp.json?["receipt"])
        #expect(receipt["certificateHash"]?.stringValue == hash)
        let signature = try #require(stamp.json?["signatureB64Url"]?.stringValue)
        let key = try #require(try node.manifest().keys.first?.publicKey)
        #expect(Ed25519.isValidSignature(Base64.decodeURL(signature) ?? [], of: try CanonicalJSON.encode(receipt, profile: .jcsV1), publicKey: key))
        let bad = try node.post("/api/stamp-hash", json: ["certificateHash": "sha256:XYZ"], key: node.apiKey)
        #expect(bad.status == 400 && bad.errorCode == "INVALID_HASH_FORMAT")
    }

    @Test func resolverShowsOnlyPublicRecordsWithTheirCanonicalBytes() throws {
        let node = try TestNode()
        let bundle = try freshBundle("resolve")
        let hash = try #require(try JSONParser.parse(bundle)["certificateHash"]?.stringValue)
        #expect(try node.post("/api/attest", bundle, key: node.apiKey).status == 200)
        let encoded = hash.replacingOccurrences(of: ":", with: "%3A")
        #expect(try node.get("/v1/resolve/cer/\(encoded)").status == 404, "private records are not resolvable")
        #expect(try node.get("/v1/resolve/cer/sha256:" + String(repeating: "0", count: 64)).status == 404)
        #expect(try node.get("/v1/resolve/cer/not-a-hash").status == 400)

        let made = try node.post("/v1/records/\(encoded)/visibility", json: ["visibility": "public"], key: node.apiKey)
        #expect(made.status == 200, "\(made.text)")
        for path in ["/v1/resolve/cer/\(encoded)", "/v1/resolve/cer/\(hash)"] {
            let r = try node.get(path)
            #expect(r.status == 200, "\(path): \(r.text)")
            let body = try #require(r.json)
            #expect(body["identity"]?["certificateHash"]?.stringValue == hash)
            let payload = try #require(body["canonical"]?["certificate"]?["payload"]?.stringValue)
            // An independent check: the payload string hashes to the certificate hash.
            #expect(ProtocolHash.hash(Array(payload.utf8)) == hash)
            #expect(body["canonical"]?["certificate"]?["matchesCertificateHash"] == true)
            let etag = try #require(r.header("ETag"))
            #expect(try node.get(path, headers: [("If-None-Match", etag)]).status == 304)
        }
        #expect(try node.post("/v1/records/\(encoded)/visibility", json: ["visibility": "private"], key: node.apiKey).status == 200)
        #expect(try node.get("/v1/resolve/cer/\(encoded)").status == 404)
    }

    @Test func verifyEndpointIsPublicAndStateless() throws {
        let node = try TestNode()
        let size = try node.ledgerSize()
        let good = try node.post("/v1/cer/verify", json: ["bundle": try JSONParser.parse(try TestNode.fixture("node-attest-test-AI_CER_FIXTURE.json"))])
        #expect(good.status == 200)
        #expect(good.json?["status"] == "verified")
        #expect(good.json?["classification"] == "VERIFIED")
        let bad = try node.post("/v1/cer/verify", try TestNode.fixture("node-cer-ingest-test-AI_CER_FIXTURE.json"))
        #expect(bad.status == 200)
        #expect(bad.json?["status"] == "failed")
        #expect(bad.json?["reasonCode"] == "OUTPUT_HASH_MISMATCH")
        #expect(bad.json?["checks"]?["outputHash"] == "fail")
        #expect(try node.ledgerSize() == size)
    }

    @Test func nodeMetadataEndpointsAnswer() throws {
        let node = try TestNode()
        let health = try node.get("/health")
        #expect(health.status == 200 && health.json?["status"] == "ok")
        let ready = try node.get("/ready")
        #expect(ready.status == 200 && ready.json?["db"] == "ok", "\(ready.text)")
        #expect(try node.get("/version").json?["serviceVersion"]?.stringValue?.isEmpty == false)
        let manifest = try node.get("/.well-known/nexart-node.json")
        let key = try #require(manifest.json?["keys"]?[0])
        for member in ["kid", "alg", "algorithm", "status", "revoked", "validFrom", "publicKey", "publicKeyJwk", "publicKeySpkiB64"] {
            #expect(key[member] != nil, "manifest key member \(member) is missing")
        }
        #expect(manifest.json?["activeKid"] == key["kid"])
        #expect(try node.get("/.well-known/nexart-node.json", headers: [("If-None-Match", manifest.header("ETag") ?? "")]).status == 304)
        _ = try node.post("/api/attest", try freshBundle("metrics"), key: node.apiKey)
        let metrics = try node.get("/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("http_route=\"/api/attest\""), "\(metrics.text.prefix(400))")
        #expect(metrics.text.contains("ledger_append_batch_size"))
        #expect(metrics.text.contains("ledger_db_pool_connections_open"))
        // CORS preflight as §5.1.
        let preflight = try RawHTTP.request(
            port: node.port, "OPTIONS", "/api/attest",
            headers: [("Origin", "https://example.org"), ("Access-Control-Request-Method", "POST")])
        #expect(preflight.header("Access-Control-Allow-Origin") == "*")
        // SIGTERM: the server drains, flushes its usage counters and exits 0.
        #expect(node.stop() == 0)
        #expect(try node.scalar("SELECT COALESCE(sum(requests), 0) FROM usage_minutes WHERE endpoint = '/api/attest'") == "1")
    }
}
