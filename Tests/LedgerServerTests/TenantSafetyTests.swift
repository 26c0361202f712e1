import CERKit
import Foundation
import LedgerCore
import LedgerProjections
import LedgerStore
import Testing
import LedgerTesting

/// A sealed AI CER whose executionId is `executionId` exactly (whatever characters it holds).
func bundle(executionId: String, tag: String) throws -> (bytes: [UInt8], hash: String) {
    var p = CertifyParameters(
        executionId: executionId, timestamp: "2026-12-01T00:00:00.000Z", createdAt: "2026-12-01T00:00:01.000Z",
        provider: "openai", model: "gpt-test", input: .string(JSONString("intake \(tag)")), output: .string(JSONString("ok")))
    p.parameters = ["temperature": 0, "maxTokens": 64, "topP": 1, "seed": 7]
    let cer = try CERBuilder.certifyDecision(p)
    return (try CanonicalJSON.encode(.object(cer), profile: .nexartV1), cer["certificateHash"]!.stringValue!)
}

/// Each row of issue 11's table, as a regression test: what a hostile or careless caller sends gets a
/// 4xx naming the problem, costs what its size allows, and never reaches another tenant's records.
@Suite(.blockingIO) struct TenantSafetyTests {
    @Test func anExecutionIdWithANulOrOfFiveThousandCharactersIsA400NamingTheFieldAndAppendsNothing() throws {
        let node = try TestNode()
        // Both bundles are sealed correctly: only the intake rule refuses them.
        let nul = try bundle(executionId: "exec\u{0}nul", tag: "nul")
        #expect(CerVerifier.verify(try JSONParser.parse(nul.bytes)).code == .ok)
        let long = try bundle(executionId: String(repeating: "x", count: 5000), tag: "long")
        let control = try bundle(executionId: "exec\u{1b}[31m", tag: "escape")
        let before = try node.ledgerSize()
        for (b, words) in [(nul, "NUL"), (long, "5000 bytes"), (control, "control character")] {
            let r = try node.post("/api/attest", b.bytes, key: node.apiKey)
            #expect(r.status == 400, "\(r.text)")
            #expect(r.errorCode == "INVALID_FIELD")
            #expect(r.json?["field"] == "snapshot.executionId")
            #expect(r.json?["message"]?.stringValue?.contains(words) == true, "\(r.text)")
        }
        #expect(try node.ledgerSize() == before)
        // The longest accepted identifier still attests.
        let edge = try bundle(executionId: String(repeating: "y", count: 256), tag: "edge")
        #expect(try node.post("/api/attest", edge.bytes, key: node.apiKey).status == 200)
        // Certify copies the executionId too.
        let certify = try node.post(
            "/v1/cer/ai/certify",
            json: [
                "provider": "openai", "model": "m", "input": "i", "output": "o", "parameters": ["temperature": 0, "maxTokens": 8],
                "executionId": .string(JSONString("a\u{0}b")),
            ], key: node.apiKey)
        #expect(certify.status == 400 && certify.errorCode == "INVALID_FIELD", "\(certify.text)")
    }

    @Test func anAnonymousVerificationCostsWhatItsSizeAllows() throws {
        // A CPU budget large enough that this test's own requests are never refused for it on a busy machine.
        let node = try TestNode(serveArguments: ["--public-cpu-share", "16"])
        // 800 KB of zeros is a 400,000-step "run": refused at once, before any step is verified.
        let zeros = Array(("[" + Array(repeating: "0", count: 400_000).joined(separator: ",") + "]").utf8)
        let started = Date()
        let huge = try node.post("/v1/cer/verify", zeros)
        #expect(huge.status == 413, "\(huge.status)")
        #expect(huge.json?["details"]?[0] == "TOO_MANY_STEPS")
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(huge.body.count < 1024)
        // At the step cap the answer stays within 64 KiB + 4 × the request, steps summarised.
        let capped = Array(("[" + Array(repeating: "0", count: 1000).joined(separator: ",") + "]").utf8)
        let summary = try node.post("/v1/cer/verify", capped)
        #expect(summary.status == 200, "\(summary.status)")
        #expect(summary.body.count <= 64 * 1024 + 4 * capped.count, "\(summary.body.count)")
        #expect(summary.json?["report"]?["stepsSummarized"] == true)
        #expect(summary.json?["report"]?["steps"]?[0]?["code"] == "UNSUPPORTED_BUNDLE_TYPE")
        // Commas inside strings and nested values are not steps: 1,000 such elements are still verified.
        let tricky = Array(("[" + Array(repeating: #"{"a":[1,2],"s":"x,\",y"}"#, count: 1000).joined(separator: ",") + "]").utf8)
        #expect(try node.post("/v1/cer/verify", tricky).status == 200)
        // A body over the public limit (2 MiB) is refused without being read whole.
        let big = [UInt8](repeating: 0x20, count: 2 * 1024 * 1024 + 10)
        let tooBig = try node.post("/v1/cer/verify", big)
        #expect(tooBig.status == 413 && tooBig.errorCode == "PAYLOAD_TOO_LARGE")
        // A real CER still verifies in full.
        let one = try node.post("/v1/cer/verify", try freshBundle("verify-one"))
        #expect(one.status == 200 && one.json?["status"] == "verified", "\(one.text)")
    }

    @Test func aProjectBundleIsPrivateToItsOwnerAndPublishingItWithholdsPrivateSteps() throws {
        let node = try TestNode()
        let other = try node.createAccount("gamma")
        let fixture = try TestNode.fixture("test-project-bundle.json")
        let bundle = try JSONParser.parse(fixture)
        let projectHash = try #require(bundle["integrity"]?["projectHash"]?.stringValue)
        let stepIds = (bundle["stepRegistry"]?.arrayValue ?? []).compactMap { $0["stepId"]?.stringValue }
        #expect(!stepIds.isEmpty)
        let registered = try node.post("/v1/project-bundle/register", fixture, key: node.apiKey)
        #expect(registered.status == 200, "\(registered.text)")
        // Billed like an attestation.
        #expect(registered.header("X-Quota-Used") == "1", "\(registered.headers)")

        #expect(try node.get("/api/project-bundles/\(projectHash)").status == 404)
        #expect(try node.get("/api/project-bundles/\(projectHash)", key: other).status == 404)
        let own = try node.get("/api/project-bundles/\(projectHash)", key: node.apiKey)
        #expect(own.status == 200 && own.json?["bundle"]?["embeddedBundles"]?.objectValue?.count == stepIds.count)
        // The steps it recorded are private too.
        let step = try #require(bundle["stepRegistry"]?[0]?["certificateHash"]?.stringValue)
        #expect(try node.get("/v1/provenance/\(step)").status == 404)
        #expect(try node.get("/v1/resolve/cer/\(step)").status == 404)

        // Only the owner publishes; publishing twice appends once.
        #expect(try node.post("/v1/project-bundles/\(projectHash)/visibility", json: ["visibility": "public"], key: other).status == 404)
        let size = try node.ledgerSize()
        let published = try node.post("/v1/project-bundles/\(projectHash)/visibility", json: ["visibility": "public"], key: node.apiKey)
        #expect(published.status == 200 && published.json?["changed"] == true, "\(published.text)")
        #expect(try node.post("/v1/project-bundles/\(projectHash)/visibility", json: ["visibility": "public"], key: node.apiKey).json?["changed"] == false)
        #expect(try node.ledgerSize() == size + 1)

        let anonymous = try node.get("/api/project-bundles/\(projectHash)")
        #expect(anonymous.status == 200)
        #expect(anonymous.json?["bundle"]?["embeddedBundles"]?.objectValue?.count == 0, "\(anonymous.text.prefix(400))")
        #expect(Set(anonymous.json?["withheldSteps"]?.arrayValue?.compactMap(\.stringValue) ?? []) == Set(stepIds))
        // Publishing one step's record makes exactly that step visible in the project.
        #expect(try node.post("/v1/records/\(step)/visibility", json: ["visibility": "public"], key: node.apiKey).status == 200)
        let firstStepId = try #require(bundle["stepRegistry"]?[0]?["stepId"]?.stringValue)
        let partly = try node.get("/api/project-bundles/\(projectHash)")
        #expect(partly.json?["bundle"]?["embeddedBundles"]?[firstStepId] != nil)
        #expect(partly.json?["withheldSteps"]?.arrayValue?.count == stepIds.count - 1)
    }

    @Test func twentyIdenticalVisibilityRequestsAppendOneEntryAndTheRateIsLimited() throws {
        let node = try TestNode(serveArguments: ["--visibility-changes-per-minute", "25"])
        let b = try freshBundle("visibility-noop")
        let hash = try JSONParser.parse(b)["certificateHash"]!.stringValue!
        #expect(try node.post("/api/attest", b, key: node.apiKey).status == 200)
        let before = try node.ledgerSize()
        var changed = 0
        for _ in 0..<20 {
            let r = try node.post("/v1/records/\(hash)/visibility", json: ["visibility": "public"], key: node.apiKey)
            #expect(r.status == 200, "\(r.text)")
            if r.json?["changed"] == true { changed += 1 }
        }
        #expect(changed == 1)
        #expect(try node.ledgerSize() == before + 1)
        #expect(try node.get("/v1/resolve/cer/\(hash)").status == 200)
        // Beyond the per-minute budget: 429 with Retry-After, nothing appended. The windows are fixed minutes,
        // so a run that crosses a minute boundary needs up to a whole budget more before the refusal.
        var limited: HTTPResult?
        for _ in 0..<40 {
            let r = try node.post("/v1/records/\(hash)/visibility", json: ["visibility": "private"], key: node.apiKey)
            if r.status == 429 { limited = r; break }
        }
        let refusal = try #require(limited)
        #expect(refusal.errorCode == "RATE_LIMIT" && refusal.header("Retry-After") != nil)
    }

    @Test func aStampOrALaterVariantNeverStandsInForTheFirstPublicBundle() throws {
        let node = try TestNode()
        let stamper = try node.createAccount("delta")
        let b = try freshBundle("resolver-choice")
        let hash = try JSONParser.parse(b)["certificateHash"]!.stringValue!
        // Another account stamps the bare hash first and publishes it.
        #expect(try node.post("/api/stamp-hash", json: ["certificateHash": .string(JSONString(hash))], key: stamper).status == 200)
        #expect(try node.post("/v1/records/\(hash)/visibility", json: ["visibility": "public"], key: stamper).status == 200)
        let stampOnly = try node.get("/v1/resolve/cer/\(hash)")
        #expect(stampOnly.status == 200 && stampOnly.json?["bundle"] == .null, "\(stampOnly.text.prefix(300))")
        // The owner attests the bundle publicly: the resolver now answers with the bundle-bearing record.
        #expect(try node.post("/api/attest?visibility=public", b, key: node.apiKey).status == 200)
        let resolved = try node.get("/v1/resolve/cer/\(hash)")
        #expect(resolved.status == 200)
        #expect(resolved.json?["bundle"]?["certificateHash"]?.stringValue == hash, "\(resolved.text.prefix(300))")
    }

    @Test func readyAnswersTheLiveNodeShape() throws {
        let node = try TestNode()
        let r = try node.get("/ready")
        #expect(r.status == 200)
        #expect(r.json?["status"] == "ready" && r.json?["db"] == "ok")
        #expect(r.json?["db_latency_ms"]?.numberValue != nil && r.json?["ms"]?.numberValue != nil)
    }

    @Test func provenanceIsPagedAndItsProofsVerify() throws {
        let node = try TestNode(serveArguments: ["--checkpoint-interval", "1"])
        let b = try freshBundle("paged")
        let hash = try JSONParser.parse(b)["certificateHash"]!.stringValue!
        #expect(try node.post("/api/attest", b, key: node.apiKey).status == 200)
        for v in ["public", "private", "public", "private"] {
            #expect(try node.post("/v1/records/\(hash)/visibility", json: ["visibility": .string(JSONString(v))], key: node.apiKey).status == 200)
        }
        #expect(try node.get("/v1/provenance/\(hash)?limit=0", key: node.apiKey).status == 400)
        #expect(try node.get("/v1/provenance/\(hash)?proofs=yes", key: node.apiKey).status == 400)
        var seen: [Int64] = []
        var after: Int64? = nil
        var pages = 0
        repeat {
            let r = try node.get("/v1/provenance/\(hash)?limit=2" + (after.map { "&after=\($0)" } ?? ""), key: node.apiKey)
            #expect(r.status == 200, "\(r.text)")
            let events = r.json?["events"]?.arrayValue ?? []
            #expect(events.count <= 2)
            seen += events.compactMap { $0["ledgerIndex"]?.numberValue.map { Int64($0) } }
            after = r.json?["page"]?["next"]?.numberValue.map { Int64($0) }
            pages += 1
        } while after != nil && pages < 10
        #expect(seen.count == 5 && seen == seen.sorted() && Set(seen).count == 5)
        #expect(pages == 3)
        // Proofs for a whole page in one answer, each verified against the signed checkpoint's root.
        var answer: JSONValue?
        for _ in 0..<40 {
            let r = try node.get("/v1/provenance/\(hash)?proofs=true", key: node.apiKey)
            #expect(r.status == 200, "\(r.text)")
            if r.json?["events"]?.arrayValue?.allSatisfy({ $0["inclusionProof"] != nil }) == true { answer = r.json; break }
            Thread.sleep(forTimeInterval: 0.25)
        }
        let page = try #require(answer)
        let note = try #require(page["checkpoint"]?.stringValue)
        let body = try #require(note.components(separatedBy: "\n\n").first)
        let checkpoint = try Checkpoint(parsing: Array((body + "\n").utf8))
        for event in page["events"]?.arrayValue ?? [] {
            let proof = (event["inclusionProof"]?["proof"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(Base64.decode) }
            let leaf = try #require(event["leafHash"]?.stringValue.flatMap(Base64.decode))
            let index = try #require(event["ledgerIndex"]?.numberValue)
            #expect(Merkle.verifyInclusion(index: Int(index), size: Int(checkpoint.size), leafHash: leaf, proof: proof, root: checkpoint.rootHash))
        }
    }
}

/// Logs written by older versions or directly through the store: no entry can stop a read model.
@Suite(.blockingIO) struct ProjectionResilienceTests {
    @Test func entriesAModelCannotReadAreRecordedAndPassed() async throws {
        let node = try TestNode()
        let pool = PostgresConnectionPool(configuration: PostgresConfiguration(conninfo: node.conninfo, maxConnections: 3))
        let log = PostgresEventLog(pool: pool)
        let fake = "sha256:" + String(repeating: "ab", count: 32)
        // A body jsonb cannot hold (NUL), one with an unpaired surrogate, and a runId too large for an index row.
        var randomHex = ""
        for _ in 0..<9000 { randomHex += String("0123456789abcdef".randomElement()!) }
        let nul = try await log.append(AppendRequest(
            subject: "cer:" + fake, type: "cer.attested", account: "alpha",
            body: ["certificateHash": .string(JSONString(fake)), "executionId": .string(JSONString("a\u{0}b"))]))
        let lone = try await log.append(AppendRequest(
            subject: "cer:" + fake, type: "cer.attested", account: "beta",
            body: ["certificateHash": .string(JSONString(fake)), "executionId": .string(JSONString(wtf8: [0x61, 0xED, 0xA0, 0x80]))]))
        let wide = try await log.append(AppendRequest(
            subject: "cer:" + fake, type: "cer.attested", account: "gamma",
            body: ["certificateHash": .string(JSONString(fake)), "run": ["runId": .string(JSONString(randomHex))]]))
        // A normal attestation after them is projected.
        let b = try freshBundle("after-bad-entries")
        let hash = try JSONParser.parse(b)["certificateHash"]!.stringValue!
        #expect(try node.post("/api/attest", b, key: node.apiKey).status == 200)
        let runner = ProjectionRunner(pool: pool)
        try await runner.catchUp()
        for s in try await runner.status() { #expect(s.position == s.head, "\(s)") }
        let skips = try await runner.skips()
        let skipped = Set(skips.recent.map { "\($0.model):\($0.index)" })
        #expect(skipped.contains("certificates:\(nul.entry.index)") && skipped.contains("runs:\(nul.entry.index)"), "\(skips.recent)")
        #expect(skipped.contains("certificates:\(lone.entry.index)"), "\(skips.recent)")
        #expect(skipped.contains("runs:\(wide.entry.index)"), "\(skips.recent)")
        #expect(!skipped.contains("certificates:\(wide.entry.index)"))
        #expect(try node.get("/v1/provenance/\(hash)", key: node.apiKey).status == 200)
        let metrics = try node.get("/metrics").text
        #expect(metrics.contains("ledger_projection_skipped_entries{model=\"runs\"} 3.0"), "\(metrics.prefix(2000))")
        // The server's writer knew nothing of the log when it started: its first batch read it under the lock.
        let careful = metrics.split(separator: "\n").first { $0.hasPrefix("ledger_append_batches_careful ") }
        #expect(careful.flatMap { Double($0.split(separator: " ").last ?? "") }.map { $0 >= 1 } == true, "\(metrics.prefix(2000))")
        let status = try node.cli(["projections", "status", "--database-url", node.conninfo])
        #expect(status.status == 0 && status.stdout.contains("skipped: runs entry \(wide.entry.index)"), "\(status.stdout)")
        await pool.shutdown()
    }
}
