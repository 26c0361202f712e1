import CERKit
import Foundation
import LedgerCore
import LedgerProjections
import LedgerProcesses
import LedgerStore
import Testing
import LedgerTesting

/// A sealed AI CER that is step `index` of `runId`, linked to `prev`.
func stepBundle(runId: String, index: Int, prev: String?, workflowId: String = "wf-1", tag: String) throws -> (bytes: [UInt8], hash: String) {
    var p = CertifyParameters(
        executionId: "exec-\(runId)-\(tag)", timestamp: "2026-11-29T00:00:00.000Z", createdAt: "2026-11-29T00:00:01.000Z",
        provider: "openai", model: "gpt-test", input: .string(JSONString("step \(index) of \(runId) \(tag)")), output: .string(JSONString("ok")))
    p.parameters = ["temperature": 0, "maxTokens": 64, "topP": 1, "seed": 7]
    p.runId = runId
    p.stepIndex = index
    p.workflowId = workflowId
    p.prevStepHash = prev
    let cer = try CERBuilder.certifyDecision(p)
    return (try CanonicalJSON.encode(.object(cer), profile: .nexartV1), cer["certificateHash"]!.stringValue!)
}

@Suite(.blockingIO) struct ProjectionTests {
    func attest(_ node: TestNode, _ bytes: [UInt8], key: String? = nil) throws {
        let r = try node.post("/api/attest", bytes, key: key ?? node.apiKey)
        #expect(r.status == 200, "\(r.text)")
    }

    func run(_ node: TestNode, _ runId: String) throws -> JSONValue {
        let r = try node.get("/v1/runs/\(runId)", key: node.apiKey)
        #expect(r.status == 200, "\(r.text)")
        return r.json ?? .null
    }

    @Test func runChainsAreCompleteBrokenOrIncompleteWhateverTheArrivalOrder() throws {
        let node = try TestNode()
        // A complete run, submitted in order.
        let a0 = try stepBundle(runId: "run-a", index: 0, prev: nil, tag: "a0")
        let a1 = try stepBundle(runId: "run-a", index: 1, prev: a0.hash, tag: "a1")
        let a2 = try stepBundle(runId: "run-a", index: 2, prev: a1.hash, tag: "a2")
        for s in [a0, a1, a2] { try attest(node, s.bytes) }
        let a = try run(node, "run-a")
        #expect(a["status"]?["state"] == "complete" && a["stepCount"] == 3)
        #expect(a["finalStepHash"]?.stringValue == a2.hash)
        #expect(a["steps"]?.arrayValue?.map { $0["certificateHash"]?.stringValue } == [a0.hash, a1.hash, a2.hash])

        // The same run in reverse order: each step is placed where it belongs.
        let r0 = try stepBundle(runId: "run-r", index: 0, prev: nil, tag: "r0")
        let r1 = try stepBundle(runId: "run-r", index: 1, prev: r0.hash, tag: "r1")
        let r2 = try stepBundle(runId: "run-r", index: 2, prev: r1.hash, tag: "r2")
        try attest(node, r2.bytes)
        let partial = try run(node, "run-r")
        #expect(partial["status"]?["state"] == "incomplete" && partial["status"]?["code"] == "INCOMPLETE_ARTIFACT")
        #expect(partial["status"]?["missingStepIndexes"] == [0, 1])
        try attest(node, r1.bytes)
        try attest(node, r0.bytes)
        let reversed = try run(node, "run-r")
        #expect(reversed["status"]?["state"] == "complete", "\(reversed)")
        #expect(reversed["steps"]?.arrayValue?.map { $0["stepIndex"]?.numberValue } == [0, 1, 2])
        #expect(reversed["finalStepHash"]?.stringValue == r2.hash)

        // A missing middle step.
        let m0 = try stepBundle(runId: "run-m", index: 0, prev: nil, tag: "m0")
        let m1 = try stepBundle(runId: "run-m", index: 1, prev: m0.hash, tag: "m1")
        let m2 = try stepBundle(runId: "run-m", index: 2, prev: m1.hash, tag: "m2")
        for s in [m0, m2] { try attest(node, s.bytes) }
        let m = try run(node, "run-m")
        #expect(m["status"]?["state"] == "incomplete" && m["status"]?["code"] == "INCOMPLETE_ARTIFACT")
        #expect(m["status"]?["missingStepIndexes"] == [1] && m["finalStepHash"] == .null)

        // A tampered prevStepHash: step 1 links to something other than step 0.
        let t0 = try stepBundle(runId: "run-t", index: 0, prev: nil, tag: "t0")
        let forged = "sha256:" + String(repeating: "ab", count: 32)
        let t1 = try stepBundle(runId: "run-t", index: 1, prev: forged, tag: "t1")
        for s in [t0, t1] { try attest(node, s.bytes) }
        let t = try run(node, "run-t")
        #expect(t["status"]?["state"] == "broken" && t["status"]?["code"] == "CHAIN_BREAK_DETECTED")
        #expect(t["status"]?["brokenAtStep"] == 1)
        #expect(t["status"]?["expected"]?.stringValue == t0.hash && t["status"]?["found"]?.stringValue == forged)

        // A step of another run claiming the same runId (and a step index already taken).
        let x0 = try stepBundle(runId: "run-x", index: 0, prev: nil, tag: "x0")
        let x1 = try stepBundle(runId: "run-x", index: 1, prev: x0.hash, tag: "x1")
        let intruder = try stepBundle(runId: "run-x", index: 1, prev: x0.hash, workflowId: "wf-other", tag: "intruder")
        for s in [x0, x1, intruder] { try attest(node, s.bytes) }
        let x = try run(node, "run-x")
        #expect(x["status"]?["state"] == "broken" && x["status"]?["code"] == "CHAIN_BREAK_DETECTED")
        #expect(x["status"]?["conflictingStepIndexes"] == [1])

        // Runs are per account; unknown runs are 404; the run endpoint needs a key.
        let beta = try node.createAccount("beta")
        #expect(try node.get("/v1/runs/run-a", key: beta).status == 404)
        #expect(try node.get("/v1/runs/run-a").status == 401)
    }

    @Test func theProjectBundleRegistersOnceWithAReceiptThatVerifies() throws {
        let node = try TestNode()
        let fixture = try TestNode.fixture("test-project-bundle.json")
        let bundle = try JSONParser.parse(fixture)
        let projectHash = try #require(bundle["integrity"]?["projectHash"]?.stringValue)

        let verified = try node.post("/v1/project-bundle/verify", fixture)
        #expect(verified.status == 200 && verified.json?["ok"] == true, "\(verified.text)")

        let first = try node.post("/v1/project-bundle/register", fixture, key: node.apiKey)
        #expect(first.status == 200, "\(first.text)")
        let body = try #require(first.json)
        #expect(body["projectHash"]?.stringValue == projectHash)
        #expect(body["projectBundleId"] == bundle["projectBundleId"])
        for member in ["registrationId", "registeredAt", "nodeRuntimeHash"] { #expect(body[member]?.stringValue?.isEmpty == false, "\(member)") }
        let receipt = try #require(body["nodeReceipt"])
        #expect(ProjectReceipt.problem(receipt, projectHash: projectHash, manifest: try node.manifest()) == nil)
        // A receipt altered in any member no longer verifies.
        var altered = receipt.objectValue!
        altered["registeredAt"] = "2020-01-01T00:00:00.000Z"
        #expect(ProjectReceipt.problem(.object(altered), projectHash: projectHash, manifest: try node.manifest()) != nil)

        // Again, through the alias: the same registration and receipt, nothing new in the ledger.
        let size = try node.ledgerSize()
        let second = try node.post("/api/register/project-bundle", fixture, key: node.apiKey)
        #expect(second.status == 200)
        #expect(second.json?["nodeReceipt"] == receipt && second.json?["registrationId"] == body["registrationId"])
        let sizeAfter = try node.ledgerSize()
        #expect(second.json?["replayed"] == true && sizeAfter == size)

        // The lookup: private to the owner until published (TenantSafetyTests covers publishing).
        #expect(try node.get("/api/project-bundles/\(projectHash)").status == 404)
        let lookup = try node.get("/api/project-bundles/\(projectHash)", key: node.apiKey)
        #expect(lookup.status == 200)
        #expect(lookup.json?["nodeReceipt"] == receipt && lookup.json?["bundle"]?["integrity"]?["projectHash"]?.stringValue == projectHash)
        #expect(lookup.json?["proof"]?["ledgerIndex"] == body["ledger"]?["index"])
        #expect(try node.get("/api/project-bundles/sha256:" + String(repeating: "0", count: 64)).status == 404)

        // Its steps' CERs were unknown: they are recorded, and their provenance names the project.
        let step = try #require(bundle["stepRegistry"]?[0]?["certificateHash"]?.stringValue)
        let provenance = try node.get("/v1/provenance/\(step)", key: node.apiKey)
        #expect(provenance.status == 200, "\(provenance.text)")
        #expect(provenance.json?["events"]?[0]?["type"] == "cer.registered")
        #expect(provenance.json?["links"]?[0]?["ref"]?.stringValue == projectHash)

        // One altered step: refused with the step's code, nothing recorded.
        var tampered = bundle.objectValue!
        var embedded = tampered["embeddedBundles"]!.objectValue!
        let stepId = embedded.keys.sorted()[0]
        var cer = embedded[stepId]!.objectValue!
        var snapshot = cer["snapshot"]!.objectValue!
        snapshot["output"] = "a different answer"
        cer["snapshot"] = .object(snapshot)
        embedded[stepId] = .object(cer)
        tampered["embeddedBundles"] = .object(embedded)
        let before = try node.ledgerSize()
        let refused = try node.post("/v1/project-bundle/register", try CanonicalJSON.encode(.object(tampered), profile: .nexartV1), key: node.apiKey)
        #expect(refused.status == 400 && refused.errorCode == "INVALID_BUNDLE", "\(refused.text)")
        let code = ProjectBundle.verify(.object(tampered)).code.rawValue
        #expect(code != "OK" && refused.json?["reasonCode"]?.stringValue == code, "\(refused.text)")
        #expect(try node.ledgerSize() == before)
    }

    @Test func provenanceShowsWhatTheCallerMaySeeAndChecksTheChain() throws {
        let node = try TestNode()
        let bundle = try freshBundle("provenance")
        let hash = try JSONParser.parse(bundle)["certificateHash"]!.stringValue!
        try attest(node, bundle)
        #expect(try node.get("/v1/provenance/\(hash)").status == 404, "private records are not shown to strangers")
        let own = try node.get("/v1/provenance/\(hash)", key: node.apiKey)
        #expect(own.status == 200 && own.json?["events"]?.arrayValue?.count == 1 && own.json?["chain"]?["intact"] == true)
        let beta = try node.createAccount("beta")
        try attest(node, bundle, key: beta)
        #expect(try node.post("/v1/records/\(hash)/visibility", json: ["visibility": "public"], key: node.apiKey).status == 200)
        let anonymous = try node.get("/v1/provenance/\(hash)")
        #expect(anonymous.status == 200)
        #expect(anonymous.json?["events"]?.arrayValue?.map { $0["type"]?.stringValue } == ["cer.attested", "cer.visibility_changed"])
        #expect(anonymous.json?["hiddenEvents"] == 1, "beta's private attestation is counted, not shown")
        #expect(anonymous.json?["events"]?[0]?["inclusionProofUrl"]?.stringValue?.contains("/v1/log/proof/inclusion?index=") == true)
        // With proofs: each event's inclusion proof against the latest checkpoint, which verifies.
        _ = try node.post("/v1/admin/log/checkpoint", [], headers: [("X-Admin-Secret", node.adminToken)])
        let proved = try node.get("/v1/provenance/\(hash)?proofs=true")
        let note = Array(try #require(proved.json?["checkpoint"]?.stringValue).utf8)
        let info = try node.get("/v1/log").json!
        let verifier = try NoteVerifier(parsing: info["verifierKeys"]![0]!["verifierKey"]!.stringValue!)
        let checkpoint = try Checkpoint.open(note, origin: info["origin"]!.stringValue!, verifiers: [verifier])
        for event in proved.json?["events"]?.arrayValue ?? [] {
            let leaf = Base64.decode(event["leafHash"]!.stringValue!)!
            let path = (event["inclusionProof"]?["proof"]?.arrayValue ?? []).map { Base64.decode($0.stringValue!)! }
            #expect(Merkle.verifyInclusion(
                index: Int(event["ledgerIndex"]!.numberValue!), size: Int(checkpoint.size), leafHash: leaf, proof: path, root: checkpoint.rootHash))
        }
        #expect(try node.get("/v1/provenance/not-a-hash").status == 400)
        #expect(try node.get("/v1/provenance/\(hash)", key: "el_live_wrong").status == 401)
        let cli = try node.cli(["provenance", hash, "--database-url", node.conninfo])
        #expect(cli.status == 0 && cli.stdout.contains("chain intact (3 events)"), "\(cli)")
    }

    @Test func aReaderCatchesUpAFewChunksButAnswers503ForAWholeRebuild() async throws {
        let node = try TestNode()
        let bundle = try freshBundle("lagging")
        let hash = try JSONParser.parse(bundle)["certificateHash"]!.stringValue!
        try attest(node, bundle)
        node.stop()  // no background runner
        let pool = PostgresConnectionPool(configuration: PostgresConfiguration(conninfo: node.conninfo, maxConnections: 2))
        defer { Task { await pool.shutdown() } }
        try await ProjectionRunner(pool: pool).reset()
        // With one-entry chunks the log (key activation + attestation) is within 10 chunks: caught up.
        let small = LedgerQueries(runner: ProjectionRunner(pool: pool, chunk: 1))
        #expect(try await small.provenance(certificateHash: hash).entries.count == 1)
        #expect(try await ProjectionRunner(pool: pool).status().first { $0.name == "certificates" }?.lag == 0)
        // Far behind (more than 10 chunks): a clear, retryable refusal instead of a request-long rebuild.
        try await ProjectionRunner(pool: pool).reset()
        #expect(try node.cli(["ledger", "append-load", "--database-url", node.conninfo, "--count", "30"]).status == 0)
        await #expect(throws: ProjectionLagging.self) { _ = try await small.provenance(certificateHash: hash) }
        try node.start()
        let r = try node.get("/v1/provenance/\(hash)", key: node.apiKey)
        #expect(r.status == 200 || (r.status == 503 && r.errorCode == "SERVICE_UNAVAILABLE"), "\(r.status) \(r.text)")
    }

    func dumps(_ conninfo: String) async throws -> [String] {
        let pool = PostgresConnectionPool(configuration: PostgresConfiguration(conninfo: conninfo, maxConnections: 2))
        let runner = ProjectionRunner(pool: pool)
        try await runner.catchUp()
        var out: [String] = []
        for p in runner.projections { out.append(try await runner.dump(p.name)) }
        await pool.shutdown()
        return out
    }

    @Test func everyModelRebuiltFromTheLogEqualsTheLiveOneEvenAfterAKilledReplay() async throws {
        let node = try TestNode()
        // A mixed workload: attestations, a certification, runs in and out of order, a project
        // registration, a visibility change, a second account, and a key rotation.
        let s0 = try stepBundle(runId: "mix", index: 0, prev: nil, tag: "0")
        let s1 = try stepBundle(runId: "mix", index: 1, prev: s0.hash, tag: "1")
        let s2 = try stepBundle(runId: "mix", index: 2, prev: s1.hash, tag: "2")
        for s in [s2, s0, s1] { try attest(node, s.bytes) }
        for i in 0..<5 { try attest(node, try freshBundle("other-\(i)")) }
        let certify = try node.post("/v1/cer/ai/certify", json: [
            "provider": "p", "model": "m", "input": "i", "output": "o", "executionId": "mix-certify",
            "parameters": ["temperature": 0, "maxTokens": 10],
        ], key: node.apiKey)
        #expect(certify.status == 200)
        #expect(try node.post("/v1/project-bundle/register", try TestNode.fixture("test-project-bundle.json"), key: node.apiKey).status == 200)
        let hash = try JSONParser.parse(try freshBundle("other-0"))["certificateHash"]!.stringValue!
        #expect(try node.post("/v1/records/\(hash)/visibility", json: ["visibility": "public"], key: node.apiKey).status == 200)
        try attest(node, try freshBundle("other-0"), key: try node.createAccount("gamma"))
        #expect(try node.cli(["keys", "rotate", "--overlap", "1"] + node.keyArguments).status == 0)
        try await Task.sleep(for: .milliseconds(1500))  // the server picks up the new key
        try attest(node, try freshBundle("mix-after-rotation"))
        // Enough other events that a replay in one-event chunks takes a while.
        #expect(try node.cli(["ledger", "append-load", "--database-url", node.conninfo, "--count", "4000", "--concurrency", "16"]).status == 0)

        let live = try await dumps(node.conninfo)
        #expect(live[0].contains("registered") && live[1].contains("mix") && !live[2].isEmpty, "every model has rows")
        let rebuilt = try node.cli(["projections", "rebuild", "--database-url", node.conninfo])
        #expect(rebuilt.status == 0 && rebuilt.stdout.contains("rebuilt all: "), "\(rebuilt)")
        #expect(try await dumps(node.conninfo) == live)

        // A replay killed part way resumes where it stopped and ends identical. (The server stops first:
        // its background runner would otherwise finish the replay itself.)
        node.stop()
        let out = node.directory.appendingPathComponent("killed.out").path
        let replay = try ChildProcess(
            [TestNode.binary, "projections", "rebuild", "certificates", "--chunk", "1", "--database-url", node.conninfo], stdout: out)
        // Kill it as soon as it has committed some chunks (it resets the model to 0 first).
        let c = try PostgresConnection(conninfo: node.conninfo, statementTimeoutMilliseconds: 5000, role: nil)
        let total = try node.ledgerSize()
        for _ in 0..<2000 {
            let p = Int(try c.scalarInt("SELECT position FROM projection_checkpoints WHERE name = 'certificates'"))
            if p > 0 && p < total { break }
            usleep(2_000)
        }
        replay.send(SIGKILL)
        c.close()
        _ = replay.exitCode
        let status = try node.cli(["projections", "status", "--database-url", node.conninfo])
        let line = status.stdout.split(separator: "\n").first { $0.hasPrefix("certificates:") }.map(String.init) ?? ""
        let fields = line.split(separator: " ")
        let position = fields.count > 2 ? Int(fields[2]) ?? -1 : -1
        let head = try node.ledgerSize()
        #expect(position > 0 && position < head, "killed mid-replay: \(line)")
        #expect(try node.cli(["projections", "run", "--database-url", node.conninfo]).status == 0)
        #expect(try await dumps(node.conninfo) == live)
    }
}
