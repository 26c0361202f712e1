import Foundation
import LedgerTesting
import Testing
@testable import CERKit

/// Hostile input never crashes or hangs the parser or the verifier; each gets a clear error or report.
@Suite struct HostileInputTests {
    @Test func randomBytesNeverCrash() {
        var rng = SeededGenerator(seed: 42)
        var parsedCount = 0
        for _ in 0..<3000 {
            let length = Int.random(in: 0..<200, using: &rng)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Bias towards almost-JSON so deeper parser paths run too.
            if length > 0, Bool.random(using: &rng) { bytes[0] = UInt8(ascii: ["{", "[", "\""].randomElement(using: &rng)!) }
            if let value = try? JSONParser.parse(bytes) {
                parsedCount += 1
                _ = ArtifactVerifier.verify(value)
            }
        }
        #expect(parsedCount < 3000)
    }

    @Test func hundredThousandDeepNestingIsRefusedQuickly() {
        let deep = [UInt8](repeating: UInt8(ascii: "["), count: 100_000) + [UInt8](repeating: UInt8(ascii: "]"), count: 100_000)
        let error = #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        #expect(error?.reason == .tooDeep)
        let objects = Array(String(repeating: "{\"a\":", count: 100_000).utf8)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(objects) }
    }

    @Test func nestingAtTheLimitIsAcceptedAndCanonicalized() throws {
        let depth = JSONParseLimits.default.maxDepth
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let value = try JSONParser.parse(text)
        #expect(try CanonicalJSON.string(value) == text)
        #expect(throws: JSONParseError.self) { try JSONParser.parse("[" + text + "]") }
    }

    @Test func overflowingNumberInABundleIsACanonicalizationError() throws {
        let text = try SharedFiles.text("fixtures/cer-exec_4f531c38051aa623.json")
            .replacingOccurrences(of: "\"maxTokens\": 1024", with: "\"maxTokens\": 1e400")
        let value = try JSONParser.parse(text)
        let result = CerVerifier.verify(value)
        #expect(result.code == .schemaError || result.code == .canonicalizationError)
        let inOutput = try JSONParser.parse(text.replacingOccurrences(of: "\"topP\": null", with: "\"topP\": null, \"x\": [1e400]"))
        #expect(CerVerifier.verify(inOutput).code == .canonicalizationError)
    }

    @Test func invalidUTF8IsRefused() {
        for bad: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC0, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22]] {
            let error = #expect(throws: JSONParseError.self) { try JSONParser.parse(bad) }
            #expect(error?.reason == .invalidUTF8)
        }
    }

    @Test func loneSurrogatesInABundleVerifyUnderNexartV1() throws {
        var p = CertifyParameters(
            executionId: "e1", timestamp: "2026-01-01T00:00:00.000Z", createdAt: "2026-01-01T00:00:00.000Z",
            provider: "p", model: "m", prompt: "s", input: .string(JSONString(wtf8: [0x61, 0xED, 0xA0, 0x80])), output: "o",
            parameters: ["temperature": 0, "maxTokens": 1])
        let bundle = try CERBuilder.certifyDecision(p)
        let reparsed = try JSONParser.parse(try CanonicalJSON.encode(.object(bundle)))
        #expect(CerVerifier.verify(reparsed).ok)
        p.protocolVersion = "1.3.0"
        #expect(throws: CreationError.self) { try CERBuilder.certifyDecision(p) }
    }

    @Test func fiftyMegabyteStringIsHandled() throws {
        let big = [UInt8](repeating: UInt8(ascii: "a"), count: 50_000_000)
        let doc = Array("{\"s\":\"".utf8) + big + Array("\"}".utf8)
        let value = try JSONParser.parse(doc)
        #expect(value["s"]?.jsonString?.bytes.count == 50_000_000)
        let limited = JSONParseLimits(maxBytes: 60_000_000, maxStringBytes: 1_000_000)
        let error = #expect(throws: JSONParseError.self) { try JSONParser.parse(doc, limits: limited) }
        #expect(error?.reason == .stringTooLong)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(doc, limits: JSONParseLimits(maxBytes: 1_000_000)) }
    }

    @Test func duplicateKeysTakeTheLastValueLikeJavaScript() throws {
        let text = try SharedFiles.text("fixtures/cer-exec_4f531c38051aa623.json")
            .replacingOccurrences(of: "\"createdAt\": \"2026-02-13T17:48:38.582Z\",", with: "\"createdAt\": \"forged\", \"createdAt\": \"2026-02-13T17:48:38.582Z\",")
        #expect(CerVerifier.verify(try JSONParser.parse(text)).ok)
        let forged = try SharedFiles.text("fixtures/cer-exec_4f531c38051aa623.json")
            .replacingOccurrences(of: "\"createdAt\": \"2026-02-13T17:48:38.582Z\",", with: "\"createdAt\": \"2026-02-13T17:48:38.582Z\", \"createdAt\": \"forged\",")
        #expect(CerVerifier.verify(try JSONParser.parse(forged)).code == .certificateHashMismatch)
    }

    @Test func wrongTypesInEveryFieldNeverPassOrCrash() throws {
        let fixture = try Fixture.value("cer-exec_4f531c38051aa623.json")
        let replacements: [JSONValue] = [.null, true, 0, -1.5, "x", [], [:], [[:]]]
        var checked = 0
        for (path, original) in fixture.leaves() + [(["snapshot"], fixture["snapshot"]!), (["snapshot", "parameters"], fixture["snapshot"]!["parameters"]!)] {
            for r in replacements where r != original {
                let report = ArtifactVerifier.verify(fixture.replacing(at: path, with: r))
                checked += 1
                if path.first == "meta" { continue }
                #expect(report.status != .verified, "\(path) = \(r) verified")
            }
        }
        #expect(checked > 100)
    }

    @Test func malformedDocumentsGetPreciseErrors() {
        let cases: [(String, JSONParseError.Reason)] = [
            ("", .empty), ("   ", .empty), ("{", .unexpectedEnd), ("[1,]", .unexpectedCharacter), ("{\"a\" 1}", .unexpectedCharacter),
            ("01", .invalidNumber), ("1.", .invalidNumber), ("-", .invalidNumber), ("1e", .invalidNumber), ("NaN", .unexpectedCharacter),
            ("\"\\x\"", .invalidEscape), ("\"\\u12\"", .invalidEscape), ("\"a\nb\"", .controlCharacterInString), ("{} {}", .trailingData),
            ("tru", .unexpectedEnd), ("nul1", .unexpectedCharacter),
        ]
        for (text, reason) in cases {
            let error = #expect(throws: JSONParseError.self, "\(text)") { try JSONParser.parse(text) }
            #expect(error?.reason == reason, "\(text): \(String(describing: error))")
        }
    }
}
