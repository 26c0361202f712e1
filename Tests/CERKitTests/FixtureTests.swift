import Testing
@testable import CERKit

/// Every fixture in shared/fixtures verifies as EXPECTED.md says (library level; the CLI suite repeats it end to end).
@Suite struct FixtureTests {
    @Test func aiCerWithStringInputOutputVerifies() throws {
        let report = ArtifactVerifier.verify(try Fixture.value("cer-exec_4f531c38051aa623.json"))
        #expect(report.status == .verified)
        #expect(report.code == .ok)
        #expect(report.bundleIntegrity.status == .pass)
        #expect(report.nodeSignature.status == .skipped)
        #expect(report.verificationEnvelope.status == .skipped)
        #expect(report.computedCertificateHash == "sha256:abffbfb4eb92384372372cbc3236e46cd1d2a834f2dd307077bad5590c64455d")
        let sdk = CerVerifier.verify(try Fixture.value("cer-exec_4f531c38051aa623.json"))
        #expect(sdk.ok && sdk.findings.isEmpty)
    }

    @Test func nodeTestFixtureVerifies() throws {
        let report = ArtifactVerifier.verify(try Fixture.value("node-attest-test-AI_CER_FIXTURE.json"))
        #expect(report.status == .verified)
        #expect(report.computedCertificateHash == "sha256:1dc840c0b72bf39ebb0f9ed63cfdab76b581c3cdaf55f5b8276ded49b364e52d")
    }

    @Test func ingestFixtureFailsWithOutputHashMismatchAndReportsRecomputedHash() throws {
        let value = try Fixture.value("node-cer-ingest-test-AI_CER_FIXTURE.json")
        let sdk = CerVerifier.verify(value)
        #expect(sdk.code == .outputHashMismatch)
        let report = ArtifactVerifier.verify(value)
        #expect(report.status == .failed)
        #expect(report.code == .outputHashMismatch)
        #expect(report.reasonCodes == ["BUNDLE_HASH_MISMATCH"])
        #expect(report.certificateHash == "sha256:1dc840c0b72bf39ebb0f9ed63cfdab76b581c3cdaf55f5b8276ded49b364e52d")
        let computed = try #require(report.computedCertificateHash)
        #expect(computed.hasPrefix("sha256:9d6fe152") && computed.hasSuffix("d250"))
    }

    @Test func projectBundleVerifiesWithUnbrokenChain() throws {
        let value = try Fixture.value("test-project-bundle.json")
        let result = ProjectBundle.verify(value)
        #expect(result.ok)
        #expect(result.passedSteps == 3 && result.failedSteps == 0)
        #expect(result.computedProjectHash?.hasPrefix("sha256:216e36c2") == true)
        #expect(result.computedProjectHash?.hasSuffix("88cb") == true)
        #expect(result.computedProjectHash == result.projectHash)
        let report = ArtifactVerifier.verify(value)
        #expect(report.status == .verified)
        #expect(report.chain.status == .pass)
        #expect(report.chainResult?.ok == true && report.chainResult?.stepCount == 3)
    }

    @Test func redactedResealVerifiesOnCoreFieldsAndSaysContextIsNotCovered() throws {
        let value = try Fixture.value("verify-redactedReseal-test-realReseal.json")
        let report = ArtifactVerifier.verify(value)
        #expect(report.status == .verified)
        #expect(report.isRedactedReseal)
        #expect(report.hashRule == .aiCore)
        #expect(report.verificationScope == .redactedReseal)
        #expect(report.computedCertificateHash == "sha256:e848fde55a4143453d181ed26b79350842c98c967d63959afbb603e2624885d2")
        #expect(report.warnings.contains { $0.contains("context.signals are NOT covered") })
        #expect(report.nodeSignature.status == .skipped)
        // With signals bound the hash would differ (PROTOCOL.md §11).
        let withSignals = try ProtocolHash.canonical(CertificateHash.aiPayload(
            bundle: value.objectValue!, snapshot: value["snapshot"]!, includeSignals: true))
        #expect(withSignals.hasPrefix("sha256:86675192") && withSignals.hasSuffix("f70e"))
    }

    @Test func redactedResealSignatureFailsWithTheProductionKey() throws {
        let report = ArtifactVerifier.verify(
            try Fixture.value("verify-redactedReseal-test-realReseal.json"), options: .init(keys: try Fixture.keys()))
        #expect(report.status == .failed)
        #expect(report.code == .attestationInvalidSignature)
        #expect(report.nodeSignature.status == .fail)
        #expect(report.bundleIntegrity.status == .pass)
    }

    @Test func governedPackageVerifiesEveryLayerWithTheProductionKey() throws {
        let report = ArtifactVerifier.verify(try Fixture.value("governed-attested-package.json"), options: .init(keys: try Fixture.keys()))
        #expect(report.kind == .cerPackage)
        #expect(report.status == .verified)
        #expect(report.hashRule == .governed)
        #expect(report.computedCertificateHash == "sha256:f330b5e47c6c3a04f31336db09d5ba71943ea1ac408c7f1f25635dff3d4c4bf5")
        for layer in [report.bundleIntegrity, report.nodeSignature, report.receiptConsistency, report.verificationEnvelope, report.timestamp] {
            #expect(layer.status == .pass, "\(layer.message)")
        }
    }

    @Test func governedPackageWithoutKeysSkipsSignatureLayers() throws {
        let report = ArtifactVerifier.verify(try Fixture.value("governed-attested-package.json"))
        #expect(report.status == .verified)
        #expect(report.nodeSignature.status == .skipped)
        #expect(report.verificationEnvelope.status == .skipped)
        #expect(report.timestamp.status == .pass)
    }

    @Test func timestampTokenImprintIsTheCertificateHashDigest() throws {
        let package = try Fixture.value("governed-attested-package.json")
        let token = try RFC3161Token(der: Base64.decode(package["timestamp"]!["token"]!.stringValue!)!)
        #expect(token.hashAlgorithm == RFC3161Token.sha256OID)
        #expect(Hex.encode(token.hashedMessage) == "f330b5e47c6c3a04f31336db09d5ba71943ea1ac408c7f1f25635dff3d4c4bf5")
        #expect(token.policy == "2.16.840.1.114412.7.1")
        #expect(token.genTime.hasPrefix("2026-10-06T20:53:2"))
    }

    @Test func rawExchangeMatchesThePackageItWasBuiltFrom() throws {
        let exchange = try Fixture.value("attest_exchange_k1.json")
        let package = try Fixture.value("governed-attested-package.json")
        #expect(exchange["cer"] == package["cer"])
        #expect(exchange["response"]?["receipt"] == package["receipt"])
        #expect(exchange["response"]?["verificationEnvelopeSignature"] == package["verificationEnvelopeSignature"])
    }

    @Test func keyManifestParsesAndSelectsK1ByKid() throws {
        let keys = try Fixture.keys()
        #expect(keys.nodeId == "nexart-node-prod-1")
        #expect(keys.activeKid == "k1")
        guard case .usable(let key) = keys.select(kid: "k1", signedAt: nil) else {
            Issue.record("k1 not usable")
            return
        }
        #expect(key.publicKey.map(Base64.encodeURL) == "30ROjmcwj5oowj_fflAqdyacB0ik7eEnndzNKJmy9uU")
    }
}
