import CERKit
import Foundation
import LedgerCore
import LedgerProcesses
import LedgerStore
import LedgerTesting
import Testing

/// Record lifecycle and erasure against the live server: owners archive, hide, restore and ask for
/// erasure; holds and the floor defer it; the worker erases with authority; every proof still verifies
/// and the audit accounts for every missing payload.
@Suite(.blockingIO) struct RetentionTests {

    func write(_ node: TestNode, _ name: String, _ bytes: [UInt8]) throws -> String {
        let path = node.directory.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func lifecycle(_ node: TestNode, _ hash: String, _ action: String) throws -> HTTPResult {
        try node.post("/v1/records/\(hash)/lifecycle", json: ["action": .string(JSONString(action)), "reason": "test"], key: node.apiKey)
    }

    @Test func archiveHideRestoreAndIllegalTransitions() throws {
        let node = try TestNode()
        let bundle = try freshBundle("lifecycle-1")
        let hash = try #require(try JSONParser.parse(bundle)["certificateHash"]?.stringValue)
        #expect(try node.post("/api/attest?visibility=public", bundle, key: node.apiKey).status == 200)
        #expect(try node.get("/v1/resolve/cer/\(hash)").json?["lifecycle"]?["state"] == "active")
        let archived = try lifecycle(node, hash, "archive")
        #expect(archived.status == 200 && archived.json?["state"] == "archived" && archived.json?["from"] == "active", "\(archived.text)")
        #expect(try node.get("/v1/resolve/cer/\(hash)").status == 200, "an archived record stays resolvable")
        let refused = try lifecycle(node, hash, "hide")
        #expect(refused.status == 409 && refused.json?["state"] == "archived" && refused.text.contains("archived"), "\(refused.text)")
        #expect(try lifecycle(node, hash, "archive").json?["changed"] == false, "the same state again appends nothing")
        #expect(try lifecycle(node, hash, "restore").json?["state"] == "active")
        #expect(try lifecycle(node, hash, "hide").json?["state"] == "hidden")
        #expect(try node.get("/v1/resolve/cer/\(hash)").status == 404, "a hidden record is not publicly resolvable")
        #expect(try node.get("/v1/provenance/\(hash)").status == 404, "nor in anonymous provenance")
        #expect(try node.get("/v1/provenance/\(hash)", key: node.apiKey).json?["records"]?[0]?["lifecycle"] == "hidden", "its owner sees it")
        #expect(try lifecycle(node, hash, "delete").status == 400, "erasure goes through a deletion request")
        #expect(try lifecycle(node, hash, "shred").status == 400)
        let stranger = try node.createAccount("stranger")
        #expect(try node.post("/v1/records/\(hash)/lifecycle", json: ["action": "restore"], key: stranger).status == 404, "only the owner")
        let read = try #require(node.get("/v1/records/\(hash)/lifecycle", key: node.apiKey).json)
        #expect(read["state"] == "hidden" && read["events"]?.arrayValue?.count == 3, "\(read)")
        // Hidden, then erased: it stays unresolvable. A deletion request needs no body.
        let erase = try RawHTTP.request(
            port: node.port, "POST", "/v1/records/\(hash)/deletion", headers: [("Authorization", "Bearer \(node.apiKey)")], body: [])
        #expect(erase.status == 202, "\(erase.text)")
        #expect(try node.cli(["retention", "run", "--database-url", node.conninfo, "--floor-days", "0"]).stdout.contains("erased 1"))
        #expect(try node.get("/v1/records/\(hash)/lifecycle", key: node.apiKey).json?["state"] == "deleted")
        #expect(try node.get("/v1/resolve/cer/\(hash)").status == 404)
        let audit = try node.cli(["ledger", "verify", "--retention-floor-days", "0"] + node.keyArguments)
        #expect(audit.status == 0, "\(audit)")
    }

    @Test func aProjectWithholdsTheBundlesOfHiddenAndErasedSteps() throws {
        let node = try TestNode()
        let project = try TestNode.fixture("test-project-bundle.json")
        let parsed = try JSONParser.parse(project)
        let projectHash = try #require(parsed["integrity"]?["projectHash"]?.stringValue)
        #expect(try node.post("/v1/project-bundle/register?visibility=public", project, key: node.apiKey).status == 200)
        let steps = try #require(parsed["stepRegistry"]?.arrayValue)
        let first = try #require(steps[0]["certificateHash"]?.stringValue), second = try #require(steps[1]["certificateHash"]?.stringValue)
        #expect(try node.get("/api/project-bundles/\(projectHash)").json?["withheldSteps"]?.arrayValue?.isEmpty == true)
        #expect(try lifecycle(node, first, "hide").json?["state"] == "hidden")
        let stored = "SELECT count(*) FROM ledger_entries e JOIN ledger_payloads p ON p.digest = e.payload_digest WHERE e.subject = 'cer:\(second)'"
        #expect(try node.scalar(stored) == "1", "a step registered through the project has its bundle stored")
        #expect(try node.post("/v1/records/\(second)/deletion", json: [:], key: node.apiKey).status == 202)
        #expect(try node.cli(["retention", "run", "--database-url", node.conninfo, "--floor-days", "0"]).status == 0)
        #expect(try node.scalar(stored) == "0", "and erased with its record")
        let shown = try #require(node.get("/api/project-bundles/\(projectHash)").json)
        #expect(shown["withheldSteps"]?.arrayValue?.count == 2, "\(shown["withheldSteps"] ?? .null)")
        let owner = try #require(node.get("/api/project-bundles/\(projectHash)", key: node.apiKey).json)
        // The owner's own registration is served whole: the erased step's copy inside the project's payload is
        // the project's to erase (a project-scope request, not built yet; docs/operations.md).
        #expect(owner["withheldSteps"]?.arrayValue?.isEmpty == true)
    }

    @Test func erasureIsDeferredByHoldsAndTheFloorThenDoneWithAuthorityAndEveryProofStillVerifies() throws {
        let node = try TestNode(serveArguments: ["--checkpoint-interval", "1"])
        let bundle = try freshBundle("erase-1", output: "a distinctive canary 7f3a9c")
        let hash = try #require(try JSONParser.parse(bundle)["certificateHash"]?.stringValue)
        let attested = try node.post("/api/attest?visibility=public", bundle, key: node.apiKey)
        let index = try #require(attested.json?["ledger"]?["index"]?.numberValue.map { Int($0) })
        let keep = try freshBundle("erase-keep")
        #expect(try node.post("/api/attest", keep, key: node.apiKey).status == 200)
        // A proof issued before the erasure, kept by a client.
        let proof = try eventually("an inclusion proof") { () -> HTTPResult? in
            let r = try node.get("/v1/log/proof/inclusion?index=\(index)", headers: [("Accept", "text/plain")])
            return r.status == 200 ? r : nil
        }
        let proofFile = try write(node, "before.tlog-proof", proof.body)
        let entryFile = try write(node, "entry.json", try node.get("/v1/log/entries/\(index)", key: node.apiKey).body)
        let logKey = try #require(node.get("/v1/log").json?["verifierKeys"]?[0]?["verifierKey"]?.stringValue)

        let requested = try node.post("/v1/records/\(hash)/deletion", json: ["reason": "GDPR Art. 17"], key: node.apiKey)
        #expect(requested.status == 202, "\(requested.text)")
        #expect(try node.post("/v1/records/\(hash)/deletion", json: [:], key: node.apiKey).json?["replayed"] == true)
        let run = { (now: String, floor: Int) throws -> String in
            let r = try node.cli(["retention", "run", "--database-url", node.conninfo, "--now", now, "--floor-days", "\(floor)"])
            guard r.status == 0 else { throw HTTPFailure(description: "retention run: \(r.stderr)") }
            return r.stdout
        }
        // Times relative to now, so that the test means the same whenever it runs.
        let inDays = { (days: Double) in ISO8601DateFormatter().string(from: Date().addingTimeInterval(days * 86_400)) }
        // Inside the 90-day floor: deferred, and said once however often the worker runs.
        #expect(try run(inDays(1), 90).contains("deferred 1"))
        #expect(try run(inDays(2), 90).contains("deferred 0"))
        #expect(try node.scalar("SELECT count(*) FROM ledger_entries WHERE type = 'deletion.deferred'") == "1")
        // Another process (the worker above) appended to the record: the server's writer must not decide a
        // version conflict from the subject head it remembers (found by the model test: every retry was refused).
        #expect(try lifecycle(node, hash, "archive").status == 200)
        #expect(try lifecycle(node, hash, "restore").status == 200)
        // A legal hold defers it past the floor.
        let admin = [("X-Admin-Secret", node.adminToken)]
        let hold = try node.post(
            "/v1/admin/legal-holds",
            try CanonicalJSON.encode(["caseId": "CASE-42", "scope": "record", "account": "alpha", "certificateHash": .string(JSONString(hash)), "holdId": "h-42"]),
            headers: admin)
        #expect(hold.status == 201, "\(hold.text)")
        #expect(try run(inDays(181), 90).contains("erased 0"))
        #expect(try node.scalar("SELECT body FROM ledger_entries WHERE type = 'deletion.deferred' ORDER BY idx DESC LIMIT 1")?.contains("h-42") == true)
        #expect(try node.scalar("SELECT count(*) FROM ledger_payloads") == "2", "nothing erased under a hold")
        #expect(try node.post("/v1/admin/legal-holds/h-42/release", try CanonicalJSON.encode(["reason": "case closed"]), headers: admin).status == 200)
        #expect(try node.post("/v1/admin/legal-holds/h-42/release", try CanonicalJSON.encode([:]), headers: admin).status == 404)
        // Released and past the floor: erased (the run records its entries at its --now).
        #expect(try run(inDays(181), 90).contains("erased 1 records (1 payloads)"))
        #expect(try node.scalar("SELECT count(*) FROM ledger_payloads") == "1", "the other record's bundle stays")
        let resolved = try #require(node.get("/v1/resolve/cer/\(hash)").json)
        #expect(resolved["bundle"] == .null && resolved["lifecycle"]?["state"] == "deleted" && resolved["lifecycle"]?["purges"]?.arrayValue?.count == 1)
        #expect(resolved["proof"]?["receipt"]?["certificateHash"]?.stringValue == hash, "the receipt stays")
        #expect(try lifecycle(node, hash, "restore").status == 409)
        #expect(try node.post("/v1/records/\(hash)/deletion", json: [:], key: node.apiKey).status == 409)
        // The proof issued before still verifies, and so does a new one; the audit accounts for the erasure.
        let before = try node.cli(["proof", "verify", "--key", logKey, "--proof", proofFile, "--entry", entryFile])
        #expect(before.status == 0, "\(before)")
        let audit = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(audit.status == 0 && audit.stdout.contains("1 authorised purges"), "\(audit)")
        let stricter = try node.cli(["ledger", "verify", "--retention-floor-days", "400"] + node.keyArguments)
        #expect(stricter.status == 1 && stricter.stdout.contains("inside the 400-day floor"), "\(stricter)")
        // A payload deleted behind the ledger's back is named.
        try TestDatabase.superuser(node.conninfo, "DELETE FROM ledger_payloads")
        let tampered = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(tampered.status == 1 && tampered.stdout.contains("is missing and no payload.purged entry records its erasure"), "\(tampered)")
    }

    @Test func aWorkerKilledAtAnyPointConvergesWithNothingLostAndNothingDoneTwice() throws {
        let node = try TestNode()
        var hashes: [String] = []
        for i in 0..<40 {
            let bundle = try freshBundle("kill-\(i)")
            hashes.append(try #require(try JSONParser.parse(bundle)["certificateHash"]?.stringValue))
            #expect(try node.post("/api/attest", bundle, key: node.apiKey).status == 200)
            #expect(try node.post("/v1/records/\(hashes[i])/deletion", json: [:], key: node.apiKey).status == 202)
        }
        // SIGKILL the one-shot worker at random points of its run, several times.
        var generator = SystemRandomNumberGenerator()
        for attempt in 0..<6 {
            let worker = try ChildProcess(
                [TestLocations.binary, "retention", "run", "--database-url", node.conninfo, "--floor-days", "0", "--batch", "40"],
                stdout: node.directory.appendingPathComponent("worker-\(attempt).out").path)
            usleep(UInt32.random(in: 20_000...400_000, using: &generator))
            worker.send(SIGKILL)
            _ = worker.exitCode
        }
        // Then runs to completion: everything requested is erased, each payload purged by exactly one entry.
        for _ in 0..<10 {
            let r = try node.cli(["retention", "run", "--database-url", node.conninfo, "--floor-days", "0", "--batch", "100"])
            #expect(r.status == 0, "\(r)")
            if r.stdout.contains("; 0 requests pending") { break }
        }
        #expect(try node.scalar("SELECT count(*) FROM ledger_payloads") == "0")
        #expect(try node.scalar("SELECT count(*) FROM ledger_entries WHERE type = 'payload.purged'") == "40")
        #expect(try node.scalar("SELECT count(DISTINCT body::jsonb->>'entryIndex') FROM ledger_entries WHERE type = 'payload.purged'") == "40")
        #expect(try node.scalar("SELECT count(*) FROM ledger_entries WHERE type = 'deletion.completed'") == "40")
        #expect(try node.scalar("SELECT count(*) FROM ledger_entries WHERE type = 'cer.lifecycle_changed' AND body::jsonb->>'to' = 'deleted'") == "40")
        for hash in hashes.prefix(3) {
            #expect(try node.get("/v1/records/\(hash)/lifecycle", key: node.apiKey).json?["state"] == "deleted")
        }
        let audit = try node.cli(["ledger", "verify", "--retention-floor-days", "0"] + node.keyArguments)
        #expect(audit.status == 0 && audit.stdout.contains("40 authorised purges") && !audit.stdout.contains("WARNING"), "\(audit)")
    }

    /// Files of the node's database (its directory under the cluster's `base/`) that contain `needle`.
    func filesContaining(_ needle: String, _ node: TestNode) throws -> [String] {
        // A CHECKPOINT flushes the whole test cluster, which every suite is writing to at once: on a slow
        // disk it took over 30 s in CI, so it gets five minutes.
        try TestDatabase.superuser(node.conninfo, "CHECKPOINT", timeoutMilliseconds: 300_000)
        let directory = try #require(try node.scalar("SELECT setting FROM pg_settings WHERE name = 'data_directory'"))
        let oid = try #require(try node.scalar("SELECT oid FROM pg_database WHERE datname = current_database()"))
        let base = directory + "/base/" + oid
        let bytes = Array(needle.utf8)
        return try FileManager.default.contentsOfDirectory(atPath: base).filter { name in
            guard let data = FileManager.default.contents(atPath: base + "/" + name) else { return false }
            return data.range(of: Data(bytes)) != nil
        }
    }

    @Test func anErasedPayloadLeavesTheTableFilesOnceItsPartitionIsRewritten() throws {
        let node = try TestNode()
        let canary = "canary-\(UUID().uuidString.lowercased())"
        let bundle = try freshBundle("canary", output: canary)
        let hash = try #require(try JSONParser.parse(bundle)["certificateHash"]?.stringValue)
        #expect(try node.post("/api/attest", bundle, key: node.apiKey).status == 200)
        #expect(try node.post("/api/attest", try freshBundle("canary-neighbour"), key: node.apiKey).status == 200)
        let before = try filesContaining(canary, node)
        #expect(!before.isEmpty, "the canary is on disk before (else this test proves nothing)")
        #expect(try node.post("/v1/records/\(hash)/deletion", json: [:], key: node.apiKey).status == 202)
        // This month's partition is open: erased from every query, its rewrite waits for the month's end.
        let now = try node.cli(["retention", "run", "--database-url", node.conninfo, "--floor-days", "0"])
        #expect(now.status == 0 && now.stdout.contains("erased 1 records") && now.stdout.contains("open until their month ends"), "\(now)")
        #expect(try node.scalar("SELECT count(*) FROM ledger_payloads") == "1")
        // A month later it is closed and rewritten; the bytes are gone from every file of the database.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let later = calendar.date(byAdding: .month, value: 1, to: Date())!
        let formatter = ISO8601DateFormatter()
        let run = try node.cli(["retention", "run", "--database-url", node.conninfo, "--floor-days", "0", "--now", formatter.string(from: later)])
        #expect(run.status == 0 && run.stdout.contains("rewrote ledger_payloads_y"), "\(run)")
        #expect(try filesContaining(canary, node).isEmpty, "the canary's bytes are gone from the table files")
        #expect(try node.scalar("SELECT count(*) FROM ledger_payloads") == "1", "the neighbour's bundle survives the rewrite")
        #expect(try node.get("/api/proofs/\(hash)", key: node.apiKey).json?["bundle"] == .null)
        let audit = try node.cli(["ledger", "verify", "--retention-floor-days", "0"] + node.keyArguments)
        #expect(audit.status == 0 && audit.stdout.contains("1 authorised purges"), "\(audit)")
    }

    @Test func policiesExpireRecordsByTheNarrowerScopeAndALockedPolicyOnlyGrows() throws {
        let node = try TestNode()
        let admin = [("X-Admin-Secret", node.adminToken)]
        func setPolicy(_ body: JSONValue) throws -> HTTPResult {
            try node.post("/v1/admin/retention/policies", try CanonicalJSON.encode(body), headers: admin)
        }
        // A project of the account keeps its steps ten years and archives them; the account's other records go after 30 days.
        let project = try TestNode.fixture("test-project-bundle.json")
        let parsed = try JSONParser.parse(project)
        let projectHash = try #require(parsed["integrity"]?["projectHash"]?.stringValue)
        #expect(try node.post("/v1/project-bundle/register", project, key: node.apiKey).status == 200)
        let loose = try freshBundle("policy-loose")
        let looseHash = try #require(try JSONParser.parse(loose)["certificateHash"]?.stringValue)
        #expect(try node.post("/api/attest", loose, key: node.apiKey).status == 200)
        #expect(try setPolicy(["account": "alpha", "class": "short", "action": "delete", "mode": "governance"]).status == 201)
        #expect(try setPolicy(["account": "alpha", "class": "short", "action": "delete", "mode": "governance"]).status == 200, "unchanged")
        #expect(try setPolicy(["account": "alpha", "project": .string(JSONString(projectHash)), "class": "long", "action": "archive", "mode": "locked"]).status == 201)
        // Locked: never shortened, never unlocked; a governance policy is shortened only with a reason.
        let shorten = try setPolicy(["account": "alpha", "project": .string(JSONString(projectHash)), "class": "standard", "action": "archive", "mode": "locked"])
        #expect(shorten.status == 409 && shorten.text.contains("locked"), "\(shorten.text)")
        #expect(try setPolicy(["account": "alpha", "project": .string(JSONString(projectHash)), "class": "permanent", "action": "archive", "mode": "governance"]).status == 409)
        #expect(try setPolicy(["account": "alpha", "class": "short", "windowDays": 20, "action": "delete", "mode": "governance"]).status == 409, "no reason")
        #expect(try setPolicy(["account": "alpha", "class": "short", "windowDays": 30, "action": "delete", "mode": "governance", "reason": "same"]).status == 200)
        #expect(try node.get("/v1/admin/retention/policies", headers: admin).json?["policies"]?.arrayValue?.count == 2)

        let run = { (now: String) throws -> String in
            let r = try node.cli(["retention", "run", "--database-url", node.conninfo, "--now", now])
            guard r.status == 0 else { throw HTTPFailure(description: "retention run: \(r.stderr)") }
            return r.stdout
        }
        let day = 86_400.0
        let formatter = ISO8601DateFormatter()
        // Past 30 days but inside the 90-day floor: deferred.
        #expect(try run(formatter.string(from: Date().addingTimeInterval(40 * day))).contains("policies archived 0, erased 0 (0 payloads), deferred 1"))
        // Past the floor: the loose record is erased under the account's policy; the project's steps are not (theirs is ten years).
        let later = try run(formatter.string(from: Date().addingTimeInterval(100 * day)))
        #expect(later.contains("policies archived 0, erased 1 (1 payloads)"), "\(later)")
        #expect(try node.get("/v1/records/\(looseHash)/lifecycle", key: node.apiKey).json?["state"] == "deleted")
        let step = try #require(parsed["stepRegistry"]?[0]?["certificateHash"]?.stringValue)
        #expect(try node.get("/v1/records/\(step)/lifecycle", key: node.apiKey).json?["state"] == "active")
        // Eleven years on, the project's policy archives its steps (once).
        let decade = try run(formatter.string(from: Date().addingTimeInterval(11 * 365 * day)))
        #expect(decade.contains("policies archived \(parsed["stepRegistry"]?.arrayValue?.count ?? -1)"), "\(decade)")
        #expect(try node.get("/v1/records/\(step)/lifecycle", key: node.apiKey).json?["state"] == "archived")
        #expect(try run(formatter.string(from: Date().addingTimeInterval(11 * 365 * day + day))).contains("policies archived 0"))
        let audit = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(audit.status == 0 && audit.stdout.contains("1 authorised purges"), "\(audit)")
    }

    @Test func runsAndProjectsAreHeldAndErasedAsGroupsAndALockedPolicyDeniesARequest() throws {
        let node = try TestNode()
        let admin = [("X-Admin-Secret", node.adminToken)]
        let inDays = { (days: Double) in ISO8601DateFormatter().string(from: Date().addingTimeInterval(days * 86_400)) }
        let run = { (now: String) throws -> String in
            let r = try node.cli(["retention", "run", "--database-url", node.conninfo, "--now", now, "--floor-days", "90"])
            guard r.status == 0 else { throw HTTPFailure(description: "retention run: \(r.stderr)") }
            return r.stdout
        }
        func hold(_ body: JSONValue) throws -> HTTPResult { try node.post("/v1/admin/legal-holds", try CanonicalJSON.encode(body), headers: admin) }
        // Three steps of a run, and a record outside it.
        var steps: [String] = []
        for i in 0..<3 {
            let step = try stepBundle(runId: "run-g", index: i, prev: steps.last, tag: "group\(i)")
            #expect(try node.post("/api/attest", step.bytes, key: node.apiKey).status == 200)
            steps.append(step.hash)
        }
        let loose = try freshBundle("group-loose")
        let looseHash = try #require(try JSONParser.parse(loose)["certificateHash"]?.stringValue)
        #expect(try node.post("/api/attest", loose, key: node.apiKey).status == 200)
        // A hold on the run; a run hold names its run.
        #expect(try hold(["caseId": "C-RUN", "account": "alpha", "scope": "run", "holdId": "h-run"]).status == 400)
        #expect(try hold(["caseId": "C-RUN", "account": "alpha", "scope": "run", "runId": "run-g", "holdId": "h-run"]).status == 201)
        // One request for the whole run: one deletion.requested per step, then nothing new.
        let requested = try node.post("/v1/runs/run-g/deletion", json: ["reason": "erase the run"], key: node.apiKey)
        #expect(requested.status == 202 && requested.json?["requested"]?.arrayValue?.count == 3, "\(requested.text)")
        let again = try node.post("/v1/runs/run-g/deletion", json: [:], key: node.apiKey)
        #expect(again.status == 200 && again.json?["alreadyPending"] == 3 && again.json?["requested"]?.arrayValue?.isEmpty == true, "\(again.text)")
        #expect(try node.post("/v1/runs/run-none/deletion", json: [:], key: node.apiKey).status == 404)
        #expect(try node.scalar("SELECT count(*) FROM ledger_entries WHERE type = 'deletion.requested' AND body::jsonb->'group'->>'runId' = 'run-g'") == "3")
        // Past the floor, the run's hold defers every step and not the loose record (which nobody asked to erase).
        #expect(try run(inDays(100)).contains("erased 0 records"))
        #expect(try node.scalar("SELECT count(*) FROM ledger_entries WHERE type = 'deletion.deferred' AND body::jsonb->>'reason' LIKE '%h-run%'") == "3")
        #expect(try node.post("/v1/admin/legal-holds/h-run/release", Array("{}".utf8), headers: admin).status == 200)
        #expect(try run(inDays(100)).contains("erased 3 records"))
        for hash in steps { #expect(try node.get("/v1/records/\(hash)/lifecycle", key: node.apiKey).json?["state"] == "deleted") }
        #expect(try node.get("/v1/records/\(looseHash)/lifecycle", key: node.apiKey).json?["state"] == "active")

        // A locked policy of the record's application denies a request until its window has passed.
        var p = CertifyParameters(
            executionId: "exec-locked", timestamp: "2026-11-22T00:00:00.000Z", createdAt: "2026-11-22T00:00:01.000Z",
            provider: "openai", model: "gpt-test", input: .string("keep me"), output: .string("kept"))
        p.parameters = ["temperature": 0, "maxTokens": 64, "topP": 1, "seed": 7]
        p.appId = "app-kept"
        let kept = try CanonicalJSON.encode(.object(try CERBuilder.certifyDecision(p)), profile: .nexartV1)
        let keptHash = try #require(try JSONParser.parse(kept)["certificateHash"]?.stringValue)
        #expect(try node.post("/api/attest", kept, key: node.apiKey).status == 200)
        let policy = try node.post("/v1/admin/retention/policies", try CanonicalJSON.encode([
            "account": "alpha", "application": "app-kept", "class": "standard", "action": "archive", "mode": "locked"]), headers: admin)
        #expect(policy.status == 201 && policy.json?["scope"] == "application", "\(policy.text)")
        #expect(try node.post("/v1/admin/retention/policies", try CanonicalJSON.encode([
            "account": "alpha", "application": "a", "surface": "ai", "class": "short", "action": "archive"]), headers: admin).status == 400)
        #expect(try node.post("/v1/records/\(keptHash)/deletion", json: [:], key: node.apiKey).status == 202)
        #expect(try run(inDays(100)).contains("denied 1"))
        let read = try node.get("/v1/records/\(keptHash)/lifecycle", key: node.apiKey).json
        #expect(read?["state"] == "active" && read?["deletionRequested"] == .null && read?["retentionPolicy"]?["scope"] == "application")
        #expect(try node.scalar("SELECT body::jsonb->>'until' IS NOT NULL FROM ledger_entries WHERE type = 'deletion.denied'") == "t")
        // The application's policy governs the record, not the account's (none) nor the floor: asked again past its year, it is erased.
        #expect(try node.post("/v1/records/\(keptHash)/deletion", json: [:], key: node.apiKey).status == 202)
        #expect(try run(inDays(400)).contains("erased 1 records"))
        // A narrower governance policy cannot erase what a broader locked one keeps: an application's 30-day
        // delete waits while the account's locked policy keeps everything ten years.
        p.appId = "app-short"
        p.executionId = "exec-short"
        let short = try CanonicalJSON.encode(.object(try CERBuilder.certifyDecision(p)), profile: .nexartV1)
        let shortHash = try #require(try JSONParser.parse(short)["certificateHash"]?.stringValue)
        #expect(try node.post("/api/attest", short, key: node.apiKey).status == 200)
        for body: JSONValue in [
            ["account": "alpha", "class": "long", "action": "archive", "mode": "locked"],
            ["account": "alpha", "application": "app-short", "class": "short", "action": "delete", "mode": "governance", "reason": "short-lived app"],
        ] {
            #expect(try node.post("/v1/admin/retention/policies", try CanonicalJSON.encode(body), headers: admin).status == 201)
        }
        #expect(try run(inDays(500)).contains("policies archived 0, erased 0 (0 payloads), deferred 1"))
        #expect(try node.get("/v1/records/\(shortHash)/lifecycle", key: node.apiKey).json?["state"] == "active")
        #expect(try node.scalar("SELECT count(*) FROM ledger_entries WHERE type = 'deletion.deferred' AND idempotency_key LIKE '%:locked:%'") == "1")
        let audit = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(audit.status == 0 && audit.stdout.contains("4 authorised purges") && !audit.stdout.contains("WARNING"), "\(audit)")
    }

    @Test func aProjectIsHeldAndErasedAsAGroupAndArchivedRecordsLeaveTheDefaultListing() throws {
        let node = try TestNode()
        let admin = [("X-Admin-Secret", node.adminToken)]
        let project = try TestNode.fixture("test-project-bundle.json")
        let parsed = try JSONParser.parse(project)
        let projectHash = try #require(parsed["integrity"]?["projectHash"]?.stringValue)
        let stepCount = try #require(parsed["stepRegistry"]?.arrayValue?.count)
        #expect(try node.post("/v1/project-bundle/register", project, key: node.apiKey).status == 200)
        let beta = try node.createAccount("beta")
        #expect(try node.post("/v1/project-bundles/\(projectHash)/deletion", json: [:], key: beta).status == 404, "not beta's project")
        let hold = try node.post("/v1/admin/legal-holds", try CanonicalJSON.encode([
            "caseId": "C-PRJ", "account": "alpha", "scope": "project", "projectHash": .string(JSONString(projectHash)), "holdId": "h-prj"]), headers: admin)
        #expect(hold.status == 201, "\(hold.text)")
        let requested = try node.post("/v1/admin/deletions", try CanonicalJSON.encode([
            "account": "alpha", "projectHash": .string(JSONString(projectHash)), "reason": "regulator order"]), headers: admin)
        #expect(requested.status == 202 && requested.json?["requested"]?.arrayValue?.count == stepCount, "\(requested.text)")
        let later = ISO8601DateFormatter().string(from: Date().addingTimeInterval(100 * 86_400))
        let r = try node.cli(["retention", "run", "--database-url", node.conninfo, "--now", later])
        #expect(r.status == 0 && r.stdout.contains("erased 0 records") && r.stdout.contains("deferred \(stepCount)"), "\(r)")
        let status = try node.cli(["retention", "status", "--database-url", node.conninfo])
        #expect(status.stdout.contains("h-prj  case C-PRJ  project of alpha \(projectHash)") && status.stdout.contains("pending deletion requests: \(stepCount)"), "\(status)")

        // Archived records leave the default listing and come back when asked for.
        let a = try freshBundle("listed-a"), b = try freshBundle("listed-b")
        let aHash = try #require(try JSONParser.parse(a)["certificateHash"]?.stringValue)
        #expect(try node.post("/api/attest", a, key: node.apiKey).status == 200)
        #expect(try node.post("/api/attest", b, key: node.apiKey).status == 200)
        #expect(try lifecycle(node, aHash, "archive").status == 200)
        func listed(_ query: String) throws -> [String] {
            try node.get("/api/proofs\(query)", key: node.apiKey).json?["proofs"]?.arrayValue?.compactMap { $0["certificateHash"]?.stringValue } ?? []
        }
        #expect(try listed("").count == 1 && !(try listed("").contains(aHash)))
        #expect(try listed("?lifecycle=archived") == [aHash])
        #expect(try listed("?lifecycle=all").count == 2)
        #expect(try node.get("/api/proofs?lifecycle=archived,gone", key: node.apiKey).status == 400)
        let retention = try node.get("/v1/admin/retention", headers: admin).json
        #expect(retention?["pendingDeletions"]?.arrayValue?.count == stepCount && retention?["reviewRequired"]?.arrayValue?.isEmpty == true)
    }

    @Test func aPurgeOnRequestUnderALockedPolicyOrARunHoldIsNamedByTheAudit() async throws {
        let node = try TestNode()
        let admin = [("X-Admin-Secret", node.adminToken)]
        var p = CertifyParameters(
            executionId: "exec-forged", timestamp: "2026-11-22T00:00:00.000Z", createdAt: "2026-11-22T00:00:01.000Z",
            provider: "openai", model: "gpt-test", input: .string("held"), output: .string("held"))
        p.parameters = ["temperature": 0, "maxTokens": 64, "topP": 1, "seed": 7]
        p.appId = "app-locked"
        p.runId = "run-held"
        p.stepIndex = 0
        let bundle = try CanonicalJSON.encode(.object(try CERBuilder.certifyDecision(p)), profile: .nexartV1)
        let hash = try #require(try JSONParser.parse(bundle)["certificateHash"]?.stringValue)
        #expect(try node.post("/api/attest", bundle, key: node.apiKey).status == 200)
        #expect(try node.post("/v1/admin/retention/policies", try CanonicalJSON.encode([
            "account": "alpha", "application": "app-locked", "class": "long", "action": "archive", "mode": "locked"]), headers: admin).status == 201)
        #expect(try node.post("/v1/admin/legal-holds", try CanonicalJSON.encode([
            "caseId": "C-H", "account": "alpha", "scope": "run", "runId": "run-held", "holdId": "h-held"]), headers: admin).status == 201)
        // Someone with the database credentials requests and purges it, past the worker.
        let index = try #require(try node.scalar("SELECT idx FROM ledger_entries WHERE type = 'cer.attested'").flatMap { Int64($0) })
        let digest = try #require(try node.scalar("SELECT encode(payload_digest, 'hex') FROM ledger_entries WHERE idx = \(index)"))
        let pool = TestDatabase.pool(node.conninfo, connections: 2)
        defer { Task { await pool.shutdown() } }
        let log = PostgresEventLog(pool: pool)
        let request = try await log.append(AppendRequest(
            subject: Subject.certificate(hash), type: EventType.deletionRequested, account: "alpha", body: ["certificateHash": .string(JSONString(hash))])).entry
        _ = try await log.append(AppendRequest(subject: Subject.certificate(hash), type: EventType.payloadPurged, account: "alpha", body: [
            "certificateHash": .string(JSONString(hash)), "entryIndex": .number(Double(index)), "payloadDigest": .string(JSONString(digest)),
            "authority": ["type": "deletion.requested", "index": .number(Double(request.index))], "floorDays": 0,
        ]))
        try TestDatabase.superuser(node.conninfo, "DELETE FROM ledger_payloads WHERE digest = decode('\(digest)', 'hex')")
        let audit = try node.cli(["ledger", "verify", "--retention-floor-days", "0"] + node.keyArguments)
        #expect(audit.status == 1, "\(audit)")
        #expect(audit.stdout.contains("purged while locked retention policy"), "\(audit)")
        #expect(audit.stdout.contains("while legal hold h-held (case C-H) was in force"), "\(audit)")
    }

    @Test func oneRequestErasesEveryRecordNamingADataSubjectAndTheLogNeverHoldsTheReference() throws {
        let node = try TestNode()
        let beta = try node.createAccount("beta")
        func attest(_ tag: String, _ subjects: [String], key: String? = nil) throws -> String {
            let bundle = try freshBundle(tag)
            let r = try node.post("/api/attest", bundle, key: key ?? node.apiKey, headers: subjects.map { ("X-Data-Subject", $0) })
            #expect(r.status == 200, "\(r.text)")
            return try #require(try JSONParser.parse(bundle)["certificateHash"]?.stringValue)
        }
        let a1 = try attest("ds-a1", ["alice@example.com"])
        let ab = try attest("ds-ab", ["alice@example.com", "bob@example.com"])
        let b1 = try attest("ds-b1", ["bob@example.com"])
        let none = try attest("ds-none", [])
        let betaAlice = try attest("ds-beta", ["alice@example.com"], key: beta)
        let tooMany = try node.post("/api/attest", try freshBundle("ds-many"), key: node.apiKey, headers: (0..<17).map { ("X-Data-Subject", "p\($0)") })
        #expect(tooMany.status == 400, "\(tooMany.text)")
        // The log holds keyed digests only: alice under alpha, bob under alpha, alice under beta.
        #expect(try node.scalar("SELECT count(*) FROM ledger_entries WHERE body LIKE '%example.com%'") == "0")
        #expect(try node.scalar("SELECT count(DISTINCT d) FROM ledger_entries, jsonb_array_elements_text(body::jsonb->'dataSubjects') d") == "3")
        // Each digest is HMAC-SHA-256 under the node's secret, as openssl computes it.
        let secretFile = URL(fileURLWithPath: node.keysDirectory).appendingPathComponent("data-subject.secret")
        let secret = try #require(Base64.decode(try String(contentsOf: secretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        let message = node.directory.appendingPathComponent("ds-message")
        try Data("evidence-ledger data subject v1\nalpha\nbob@example.com".utf8).write(to: message)
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:\(Hex.encode(secret))", "-r", message.path]
        let pipe = Pipe()
        openssl.standardOutput = pipe
        try openssl.run()
        openssl.waitUntilExit()
        let expected = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
        #expect(expected.count == 64)
        #expect(try node.scalar("SELECT body::jsonb->'dataSubjects'->>0 FROM ledger_entries WHERE subject = 'cer:\(b1)'") == "hmac-sha256:" + expected)

        // One request reaches every record of the account naming alice, and only those.
        let alice = try node.post("/v1/data-subjects/deletion", json: ["dataSubject": "alice@example.com", "reason": "Art. 17 request"], key: node.apiKey)
        #expect(alice.status == 202 && alice.json?["requested"]?.arrayValue?.count == 2, "\(alice.text)")
        #expect(!alice.text.contains("example.com"), "the answer names the digest, not the reference")
        let bob = try node.post("/v1/data-subjects/deletion", json: ["dataSubject": "bob@example.com"], key: node.apiKey)
        #expect(bob.status == 202 && bob.json?["requested"]?.arrayValue?.count == 1 && bob.json?["alreadyPending"] == 1, "\(bob.text)")
        #expect(try node.post("/v1/data-subjects/deletion", json: ["dataSubject": "carol@example.com"], key: node.apiKey).status == 404)
        #expect(try node.post("/v1/data-subjects/deletion", json: [:], key: node.apiKey).status == 400)
        let later = ISO8601DateFormatter().string(from: Date().addingTimeInterval(100 * 86_400))
        let run = try node.cli(["retention", "run", "--database-url", node.conninfo, "--now", later])
        #expect(run.status == 0 && run.stdout.contains("erased 3 records"), "\(run)")
        for hash in [a1, ab, b1] { #expect(try node.get("/v1/records/\(hash)/lifecycle", key: node.apiKey).json?["state"] == "deleted") }
        #expect(try node.get("/v1/records/\(none)/lifecycle", key: node.apiKey).json?["state"] == "active")
        #expect(try node.get("/v1/records/\(betaAlice)/lifecycle", key: beta).json?["state"] == "active", "another account's alice is another person")
        let audit = try node.cli(["ledger", "verify"] + node.keyArguments)
        #expect(audit.status == 0 && audit.stdout.contains("3 authorised purges"), "\(audit)")
    }
}
