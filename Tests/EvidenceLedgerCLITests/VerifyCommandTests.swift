import Foundation
import Testing
import LedgerTesting

/// `evidence-ledger verify` end to end: every fixture as EXPECTED.md says, output formats, exit codes.
@Suite(.blockingIO) struct VerifyCommandTests {
    let keys = CLI.fixture("nexart-node-k1.json")

    func verifyJSON(_ args: [String]) throws -> (Int32, [String: Any]) {
        let r = try CLI.run(["verify", "--format", "json"] + args)
        return (r.status, try #require(try CLI.json(r.stdout) as? [String: Any], "stdout: \(r.stdout) stderr: \(r.stderr)"))
    }

    @Test func aiCerFixtureVerifies() throws {
        let (status, report) = try verifyJSON([CLI.fixture("cer-exec_4f531c38051aa623.json")])
        #expect(status == 0)
        #expect(report["status"] as? String == "VERIFIED")
        #expect(report["code"] as? String == "OK")
        #expect(report["reasonCodes"] as? [String] == [])
        let checks = try #require(report["checks"] as? [String: String])
        #expect(checks["bundleIntegrity"] == "PASS")
        #expect(checks["nodeSignature"] == "SKIPPED")
        #expect(checks["receiptConsistency"] == "SKIPPED")
        #expect(checks["verificationEnvelope"] == "SKIPPED")
        #expect(report["certificateHash"] as? String == "sha256:abffbfb4eb92384372372cbc3236e46cd1d2a834f2dd307077bad5590c64455d")
        #expect(report["computedCertificateHash"] as? String == report["certificateHash"] as? String)
    }

    @Test func nodeFixtureVerifies() throws {
        let (status, report) = try verifyJSON([CLI.fixture("node-attest-test-AI_CER_FIXTURE.json")])
        #expect(status == 0)
        #expect((report["computedCertificateHash"] as? String)?.hasPrefix("sha256:1dc840c0") == true)
    }

    @Test func ingestFixtureFailsWithOutputHashMismatch() throws {
        let (status, report) = try verifyJSON([CLI.fixture("node-cer-ingest-test-AI_CER_FIXTURE.json")])
        #expect(status == 1)
        #expect(report["status"] as? String == "FAILED")
        #expect(report["code"] as? String == "OUTPUT_HASH_MISMATCH")
        #expect((report["computedCertificateHash"] as? String)?.hasPrefix("sha256:9d6fe152") == true)
        #expect((report["computedCertificateHash"] as? String)?.hasSuffix("d250") == true)
        #expect((report["certificateHash"] as? String)?.hasPrefix("sha256:1dc840c0") == true)
    }

    @Test func projectBundleVerifiesWithAllStepsAndChain() throws {
        let (status, report) = try verifyJSON([CLI.fixture("test-project-bundle.json")])
        #expect(status == 0)
        #expect(report["kind"] as? String == "project-bundle")
        #expect((report["computedProjectHash"] as? String)?.hasPrefix("sha256:216e36c2") == true)
        #expect((report["steps"] as? [[String: Any]])?.allSatisfy { $0["status"] as? String == "VERIFIED" } == true)
        #expect((report["steps"] as? [Any])?.count == 3)
        #expect((report["checks"] as? [String: String])?["chain"] == "PASS")
    }

    @Test func redactedResealPassesIntegrityAndFailsSignatureWithTheKey() throws {
        let (status, report) = try verifyJSON([CLI.fixture("verify-redactedReseal-test-realReseal.json")])
        #expect(status == 0)
        #expect(report["redactedReseal"] as? Bool == true)
        #expect(report["computedCertificateHash"] as? String == "sha256:e848fde55a4143453d181ed26b79350842c98c967d63959afbb603e2624885d2")
        #expect((report["warnings"] as? [String])?.contains { $0.contains("NOT covered") } == true)
        #expect((report["checks"] as? [String: String])?["nodeSignature"] == "SKIPPED")

        let (keyed, withKeys) = try verifyJSON(["--keys", keys, CLI.fixture("verify-redactedReseal-test-realReseal.json")])
        #expect(keyed == 1)
        #expect(withKeys["code"] as? String == "ATTESTATION_INVALID_SIGNATURE")
        #expect((withKeys["checks"] as? [String: String])?["bundleIntegrity"] == "PASS")
        #expect((withKeys["checks"] as? [String: String])?["nodeSignature"] == "FAIL")
    }

    @Test func governedPackageVerifiesEveryLayerWithTheKey() throws {
        let (status, report) = try verifyJSON(["--keys", keys, CLI.fixture("governed-attested-package.json")])
        #expect(status == 0)
        let checks = try #require(report["checks"] as? [String: String])
        for layer in ["bundleIntegrity", "nodeSignature", "receiptConsistency", "verificationEnvelope", "timestamp"] {
            #expect(checks[layer] == "PASS", "\(layer)")
        }
        #expect(report["hashRule"] as? String == "governed")
    }

    @Test func withTSARootsTheTimestampIsVerifiedInFullAndDecides() throws {
        // NexArt's DigiCert token chains to the system roots.
        let (status, report) = try verifyJSON(["--keys", keys, "--tsa-roots", "/etc/ssl/certs/ca-certificates.crt", CLI.fixture("governed-attested-package.json")])
        #expect(status == 0)
        let layers = try #require(report["layers"] as? [String: [String: Any]])
        #expect(layers["timestamp"]?["status"] as? String == "PASS")
        #expect((layers["timestamp"]?["message"] as? String)?.contains("DigiCert SHA256 RSA4096 Timestamp Responder 2026 1") == true, "\(layers)")
        // Against roots that are not DigiCert's, the same token fails the report, with its reason.
        let stranger = try TimestampAuthority()
        let (refused, untrusted) = try verifyJSON(["--keys", keys, "--tsa-roots", stranger.rootPath, CLI.fixture("governed-attested-package.json")])
        #expect(refused == 1)
        #expect(untrusted["code"] as? String == "TIMESTAMP_INVALID")
        #expect((untrusted["layers"] as? [String: [String: Any]])?["timestamp"]?["message"].map { "\($0)" }?.hasPrefix("TSA_UNTRUSTED") == true, "\(untrusted)")
        let empty = try CLI.run(["verify", "--tsa-roots", CLI.fixture("governed-attested-package.json"), CLI.fixture("governed-attested-package.json")])
        #expect(empty.status == 2 && empty.stderr.contains("holds no PEM certificate"), "\(empty)")
    }

    @Test func textOutputHasOneLinePerLayerThenTheVerdict() throws {
        let r = try CLI.run(["verify", "--keys", keys, CLI.fixture("governed-attested-package.json")])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        for label in ["bundle integrity", "node signature", "receipt consistency", "verification envelope", "timestamp"] {
            #expect(lines.filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix(label) }.count == 1, "\(label)")
        }
        #expect(lines.last == "VERIFIED (OK)")
        let failing = try CLI.run(["verify", CLI.fixture("node-cer-ingest-test-AI_CER_FIXTURE.json")])
        #expect(failing.stdout.split(separator: "\n").last?.hasPrefix("NOT VERIFIED: OUTPUT_HASH_MISMATCH") == true)
    }

    @Test func aiefFormatFollowsSection9() throws {
        let r = try CLI.run(["verify", "--format", "aief", CLI.fixture("node-cer-ingest-test-AI_CER_FIXTURE.json")])
        #expect(r.status == 1)
        let report = try #require(try CLI.json(r.stdout) as? [String: Any])
        #expect(report["result"] as? String == "FAIL")
        #expect(report["reason"] as? String == "integrityProofMismatch")
        #expect((report["checks"] as? [String: Bool])?["integrityValid"] == false)
        #expect((report["checks"] as? [String: Bool])?["schemaSupported"] == true)
        #expect(report["field"] as? String == "snapshot.outputHash")
    }

    @Test func standardInputIsRead() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: CLI.fixture("cer-exec_4f531c38051aa623.json")))
        let r = try CLI.run(["verify", "-"], stdin: data)
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("stdin: AI CER"))
    }

    @Test func filesOfOneRunVerifyTogetherInAnyOrder() throws {
        let bundle = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: CLI.fixture("test-project-bundle.json")))) as? [String: Any])
        let embedded = try #require(bundle["embeddedBundles"] as? [String: Any])
        let registry = try #require(bundle["stepRegistry"] as? [[String: Any]])
        var paths: [String] = []
        for entry in registry.reversed() {
            let step = try JSONSerialization.data(withJSONObject: embedded[entry["stepId"] as! String]!)
            paths.append(try CLI.temporaryFile(step, name: "step-\(entry["sequence"]!).json"))
        }
        let r = try CLI.run(["verify", "--run", "--format", "json"] + paths)
        #expect(r.status == 0, "\(r.stdout)")
        let report = try #require(try CLI.json(r.stdout) as? [String: Any])
        #expect((report["checks"] as? [String: String])?["chain"] == "PASS")
        // Drop the middle step: the run is incomplete.
        let gap = try CLI.run(["verify", "--run", "--format", "json", paths[0], paths[2]])
        #expect(gap.status == 1)
        #expect((try CLI.json(gap.stdout) as? [String: Any])?["code"] as? String == "INCOMPLETE_ARTIFACT")
    }

    @Test func unreadableInputExitsTwoWithASentence() throws {
        let missing = try CLI.run(["verify", "/nonexistent/bundle.json"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("cannot read /nonexistent/bundle.json: No such file or directory"))
        let garbage = try CLI.run(["verify", "-"], stdin: Data([0xFF, 0xFE, 0x00, 0x7B]))
        #expect(garbage.status == 2)
        #expect(garbage.stderr.contains("standard input is not valid JSON"))
        let deep = try CLI.run(["verify", "-"], stdin: Data(String(repeating: "[", count: 100_000).utf8))
        #expect(deep.status == 2)
        #expect(deep.stderr.contains("nesting is deeper than the limit"))
        let huge = try CLI.run(["verify", "--max-bytes", "10", CLI.fixture("cer-exec_4f531c38051aa623.json")])
        #expect(huge.status == 2)
        #expect(huge.stderr.contains("larger than the limit of 10 bytes"))
    }

    @Test func aJSONThatIsNoArtifactIsNotVerified() throws {
        let r = try CLI.run(["verify", "-"], stdin: Data(#"{"hello":"world"}"#.utf8))
        #expect(r.status == 1)
        #expect(r.stdout.contains("UNSUPPORTED_BUNDLE_TYPE"))
    }

    @Test func usageErrorsExitTwo() throws {
        let none = try CLI.run(["verify"])
        #expect(none.status == 2)
        #expect(none.stderr.contains("Missing expected argument"))
        let badFormat = try CLI.run(["verify", "--format", "xml", "x.json"])
        #expect(badFormat.status == 2)
        let badKeys = try CLI.run(["verify", "--keys", CLI.fixture("cer-exec_4f531c38051aa623.json"), CLI.fixture("cer-exec_4f531c38051aa623.json")])
        #expect(badKeys.status == 2)
        #expect(badKeys.stderr.contains("key manifest has no \"keys\" array"))
        let unknown = try CLI.run(["frobnicate"])
        #expect(unknown.status == 2)
    }

    @Test func helpDescribesExitCodes() throws {
        let r = try CLI.run(["verify", "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("Exit codes: 0 verified, 1 not verified, 2 unreadable input or usage error"))
        #expect(try CLI.run(["--version"]).stdout.hasPrefix("0.4.0"))
    }
}
