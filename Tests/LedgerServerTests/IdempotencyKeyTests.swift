import CERKit
import Foundation
import Testing
import LedgerTesting

@Suite(.blockingIO) struct IdempotencyKeyTests {
    let certifyBody: JSONValue = [
        "provider": "openai", "model": "gpt-test", "input": "what is due?", "output": "nothing",
        "parameters": ["temperature": 0, "maxTokens": 16],
    ]

    @Test func aRetriedCertifyWithTheSameKeyGetsTheOriginalAnswerAndAppendsOnce() throws {
        let node = try TestNode()
        let body = try CanonicalJSON.encode(certifyBody, profile: .nexartV1)
        // Without a key, certify mints createdAt: two calls are two certificates.
        let a = try node.post("/v1/cer/ai/certify", body, key: node.apiKey)
        Thread.sleep(forTimeInterval: 0.01)
        let b = try node.post("/v1/cer/ai/certify", body, key: node.apiKey)
        #expect(a.json?["certificateHash"] != b.json?["certificateHash"])

        let before = try node.ledgerSize()
        let first = try node.post("/v1/cer/ai/certify", body, key: node.apiKey, headers: [("Idempotency-Key", "order-42")])
        #expect(first.status == 200, "\(first.text)")
        Thread.sleep(forTimeInterval: 0.01)
        let retry = try node.post("/v1/cer/ai/certify", body, key: node.apiKey, headers: [("Idempotency-Key", "order-42")])
        #expect(retry.status == 200, "\(retry.text)")
        #expect(retry.header("Idempotent-Replayed") == "true")
        #expect(retry.json?["certificateHash"] == first.json?["certificateHash"])
        #expect(retry.json?["receipt"] == first.json?["receipt"] && retry.json?["cer"] == first.json?["cer"])
        #expect(try node.ledgerSize() == before + 1)

        // The same key with another request: 409, nothing appended.
        var other = certifyBody.objectValue!
        other["output"] = "something else"
        let reused = try node.post("/v1/cer/ai/certify", try CanonicalJSON.encode(.object(other), profile: .nexartV1), key: node.apiKey,
            headers: [("Idempotency-Key", "order-42")])
        #expect(reused.status == 409 && reused.errorCode == "IDEMPOTENCY_KEY_REUSED", "\(reused.text)")
        #expect(try node.ledgerSize() == before + 1)
        // Keys are per account: another account may use the same one.
        let beta = try node.createAccount("beta")
        #expect(try node.post("/v1/cer/ai/certify", body, key: beta, headers: [("Idempotency-Key", "order-42")]).status == 200)
        // A malformed key is a 400.
        let bad = try node.post("/v1/cer/ai/certify", body, key: node.apiKey, headers: [("Idempotency-Key", "has space")])
        #expect(bad.status == 400 && bad.errorCode == "INVALID_REQUEST")
    }

    @Test func concurrentAttemptsWithOneKeyAppendOnce() throws {
        let node = try TestNode()
        let body = try CanonicalJSON.encode(certifyBody, profile: .nexartV1)
        let before = try node.ledgerSize()
        let hashes = ResultsBox()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let r = try? node.post("/v1/cer/ai/certify", body, key: node.apiKey, headers: [("Idempotency-Key", "race-1")])
            hashes.add(r.map { "\($0.status) \($0.json?["certificateHash"]?.stringValue ?? "")" } ?? "failed")
        }
        let answers = hashes.all
        #expect(answers.count == 8 && Set(answers).count == 1, "\(answers)")
        #expect(answers.first?.hasPrefix("200 sha256:") == true)
        #expect(try node.ledgerSize() == before + 1)
    }

    @Test func attestStampHashAndRegisterReplayUnderTheirKeys() throws {
        let node = try TestNode()
        let bundle = try freshBundle("idem-attest")
        let a1 = try node.post("/api/attest", bundle, key: node.apiKey, headers: [("Idempotency-Key", "att-1")])
        let a2 = try node.post("/api/attest", bundle, key: node.apiKey, headers: [("Idempotency-Key", "att-1")])
        #expect(a1.status == 200 && a2.status == 200 && a2.header("Idempotent-Replayed") == "true")
        #expect(a1.json?["receipt"] == a2.json?["receipt"])
        // A different bundle under the same key is refused even though attest is idempotent by itself.
        let other = try node.post("/api/attest", try freshBundle("idem-attest-2"), key: node.apiKey, headers: [("Idempotency-Key", "att-1")])
        #expect(other.status == 409 && other.errorCode == "IDEMPOTENCY_KEY_REUSED")

        let stampBody: JSONValue = ["certificateHash": .string(JSONString("sha256:" + String(repeating: "c", count: 64)))]
        let size = try node.ledgerSize()
        let s1 = try node.post("/api/stamp-hash", try CanonicalJSON.encode(stampBody, profile: .nexartV1), key: node.apiKey, headers: [("Idempotency-Key", "st-1")])
        let s2 = try node.post("/api/stamp-hash", try CanonicalJSON.encode(stampBody, profile: .nexartV1), key: node.apiKey, headers: [("Idempotency-Key", "st-1")])
        #expect(s1.status == 200 && s2.status == 200 && s2.header("Idempotent-Replayed") == "true", "\(s1.text)")
        #expect(s1.json?["signatureB64Url"] == s2.json?["signatureB64Url"])
        #expect(try node.ledgerSize() == size + 1)

        let project = try TestNode.fixture("test-project-bundle.json")
        let r1 = try node.post("/v1/project-bundle/register", project, key: node.apiKey, headers: [("Idempotency-Key", "proj-1")])
        let r2 = try node.post("/v1/project-bundle/register", project, key: node.apiKey, headers: [("Idempotency-Key", "proj-1")])
        #expect(r1.status == 200 && r2.status == 200 && r2.header("Idempotent-Replayed") == "true", "\(r1.text)")
        #expect(r1.json?["nodeReceipt"] == r2.json?["nodeReceipt"])
    }
}

final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String] = []
    func add(_ v: String) { lock.lock(); values.append(v); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return values }
}
