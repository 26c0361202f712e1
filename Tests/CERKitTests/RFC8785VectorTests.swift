import Testing
@testable import CERKit

/// RFC 8785 vectors from cyberphone/json-canonicalization (see shared/vectors/rfc8785/SOURCES.md).
@Suite struct RFC8785VectorTests {
    static let names = ["arrays", "french", "structures", "unicode", "values", "weird"]

    @Test(arguments: names)
    func inputCanonicalizesToExpectedOutput(name: String) throws {
        let input = try SharedFiles.data("vectors/rfc8785/input/\(name).json")
        let expected = try SharedFiles.data("vectors/rfc8785/output/\(name).json")
        let value = try JSONParser.parse(input)
        #expect(try CanonicalJSON.encode(value, profile: .jcsV1) == expected)
        #expect(try CanonicalJSON.encode(value, profile: .nexartV1) == expected)
    }

    @Test(arguments: names)
    func outhexMatchesOutput(name: String) throws {
        let hex = try SharedFiles.text("vectors/rfc8785/outhex/\(name).txt").filter { !$0.isWhitespace }
        let expected = try SharedFiles.data("vectors/rfc8785/output/\(name).json")
        #expect(Hex.decode(hex) == expected)
    }

    @Test func allTenThousandNumbersFormatAsECMAScript() throws {
        let lines = try SharedFiles.text("vectors/rfc8785/numbers/es6testfile10k.txt").split(separator: "\n")
        #expect(lines.count == 10_000)
        var failures: [String] = []
        for line in lines {
            let parts = line.split(separator: ",", maxSplits: 1)
            let bits = UInt64(parts[0], radix: 16)!
            let value = Double(bitPattern: bits)
            let got = ECMAScriptNumber.format(value)
            if got != String(parts[1]) { failures.append("\(parts[0]): expected \(parts[1]), got \(got)") }
            // The expected text must also parse back to the same double through our parser.
            if case .number(let back) = try JSONParser.parse(String(parts[1])), back != value, !(back == 0 && value == 0) {
                failures.append("\(parts[0]): \(parts[1]) parsed back as \(back)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) mismatches, first: \(failures.prefix(5))")
    }

    @Test(arguments: [
        ("4340000000000001", "9007199254740994"), ("4340000000000002", "9007199254740996"),
        ("444b1ae4d6e2ef50", "1e+21"), ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"), ("8000000000000000", "0"), ("0", "0"),
        ("c43211ede4974a35", "-333333333333333300000"),
    ])
    func readmeSampleNumbers(hex: String, expected: String) {
        #expect(ECMAScriptNumber.format(Double(bitPattern: UInt64(hex, radix: 16)!)) == expected)
    }

    @Test func nonFiniteNumbersAreRefused() {
        for v in [Double.infinity, -Double.infinity, Double.nan] {
            #expect(throws: CanonicalizationError.self) { try CanonicalJSON.encode(.number(v)) }
        }
    }
}
