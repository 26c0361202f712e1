import Foundation
import LedgerTesting
import Testing
@testable import CERKit

/// Properties over random JSON (seeded, reproducible): canonical bytes are a fixed point of
/// parse∘canonicalize, independent of member order and formatting, and valid JSON to Foundation's parser.
@Suite struct CanonicalPropertyTests {
    static func randomString(_ rng: inout SeededGenerator) -> JSONString {
        let pool: [String] = ["a", "b", "Z", "é", "e\u{301}", "€", "😀", "\u{FFFD}", "\u{E000}", "\"", "\\", "\n", "\u{1}", "\u{7F}", "\u{2028}", "/", " ", "דּ", "0"]
        let n = Int.random(in: 0..<6, using: &rng)
        return JSONString((0..<n).map { _ in pool.randomElement(using: &rng)! }.joined())
    }

    static func randomValue(_ rng: inout SeededGenerator, depth: Int = 0) -> JSONValue {
        switch Int.random(in: 0..<(depth > 4 ? 5 : 7), using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2:
            let choices: [Double] = [0, -0.0, 1, -1, 0.1, 1e21, 1e-7, 123456789.123, 5e-324, 1.7976931348623157e308, 9007199254740993]
            return Bool.random(using: &rng) ? .number(choices.randomElement(using: &rng)!)
                : .number(Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF) * (Bool.random(using: &rng) ? 1 : -1))
        case 3, 4: return .string(randomString(&rng))
        case 5: return .array((0..<Int.random(in: 0..<5, using: &rng)).map { _ in randomValue(&rng, depth: depth + 1) })
        default:
            var o = JSONObject()
            for _ in 0..<Int.random(in: 0..<6, using: &rng) { o[randomString(&rng)] = randomValue(&rng, depth: depth + 1) }
            return .object(o)
        }
    }

    static func shuffled(_ v: JSONValue, _ rng: inout SeededGenerator) -> JSONValue {
        switch v {
        case .array(let a): return .array(a.map { shuffled($0, &rng) })
        case .object(let o):
            var out = JSONObject()
            for m in o.members.shuffled(using: &rng) { out[m.key] = shuffled(m.value, &rng) }
            return .object(out)
        default: return v
        }
    }

    @Test func canonicalBytesAreStableUnderReparsingAndKeyReordering() throws {
        var rng = SeededGenerator(seed: 2026)
        for _ in 0..<2000 {
            let value = Self.randomValue(&rng)
            let canonical = try CanonicalJSON.encode(value)
            let reparsed = try JSONParser.parse(canonical)
            #expect(try CanonicalJSON.encode(reparsed) == canonical)
            #expect(try CanonicalJSON.encode(Self.shuffled(value, &rng)) == canonical)
            #expect(try CanonicalJSON.encode(try JSONParser.parse(value.prettyPrinted())) == canonical)
            // jcs-v1 and nexart-v1 agree on I-JSON (no lone surrogates can arise here).
            #expect(try CanonicalJSON.encode(value, profile: .jcsV1) == canonical)
        }
    }

    @Test func canonicalBytesAreValidJSONToAnIndependentParser() throws {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<500 {
            let canonical = try CanonicalJSON.encode(.array([Self.randomValue(&rng)]))
            #expect((try? JSONSerialization.jsonObject(with: Data(canonical), options: [.fragmentsAllowed])) != nil)
        }
    }

    @Test func utf16OrderMatchesCodeUnitComparison() {
        var rng = SeededGenerator(seed: 99)
        for _ in 0..<5000 {
            let a = Self.randomString(&rng), b = Self.randomString(&rng)
            #expect(JSONString.utf16Precedes(a, b) == a.utf16.lexicographicallyPrecedes(b.utf16))
        }
    }
}
