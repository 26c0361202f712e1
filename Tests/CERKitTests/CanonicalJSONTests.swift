import Testing
@testable import CERKit

/// PROTOCOL.md §1.4 vectors and JavaScript-semantics edge cases of the parser and canonicalizer.
@Suite struct CanonicalJSONTests {
    func canonical(_ text: String, _ profile: CanonicalizationProfile = .nexartV1) throws -> String {
        try CanonicalJSON.string(try JSONParser.parse(text), profile: profile)
    }

    @Test func protocolVectorMixedValues() throws {
        let text = #"{"b":1,"a":[true,null,1.5e-7,1e21,-0,100,0.1],"A":"\u0001é\u2028😀"}"#
        let value = try JSONParser.parse(text)
        #expect(try CanonicalJSON.string(value) == "{\"A\":\"\\u0001é\u{2028}😀\",\"a\":[true,null,1.5e-7,1e+21,0,100,0.1],\"b\":1}")
        #expect(try ProtocolHash.canonical(value) == "sha256:9dd9e619490e99803e5d958ffcaf49d028f18a811bcdbf481f20de4572e8efd9")
    }

    @Test func protocolVectorUTF16KeyOrder() throws {
        let value = try JSONParser.parse(#"{"\uFFFD":1,"\ud83d\ude00":2,"a":3}"#)
        #expect(try CanonicalJSON.string(value) == "{\"a\":3,\"😀\":2,\"\u{FFFD}\":1}")
        #expect(try ProtocolHash.canonical(value) == "sha256:76d5a5feb9c236eda85f03c6db96116dda55470ad65eca7a538fcf544a0de282")
    }

    @Test func protocolVectorNested() throws {
        let value = try JSONParser.parse(#"{"x":{"z":1,"y":{"b":2,"a":1}}}"#)
        #expect(try CanonicalJSON.string(value) == #"{"x":{"y":{"a":1,"b":2},"z":1}}"#)
        #expect(try ProtocolHash.canonical(value) == "sha256:3e7a2dd76fb39957418d2c0f0944604c3e5746e52c16f3d5311cdc66dca18209")
    }

    @Test func lastDuplicateKeyWins() throws {
        #expect(try canonical(#"{"a":1,"b":2,"a":3}"#) == #"{"a":3,"b":2}"#)
        // Large objects switch to a hashed duplicate index; semantics must not change.
        var text = "{"
        for i in 0..<40 { text += "\"k\(i)\":\(i)," }
        text += "\"k3\":\"last\"}"
        guard case .object(let o) = try JSONParser.parse(text) else { Issue.record("not an object"); return }
        #expect(o.count == 40)
        #expect(o["k3"] == .string("last"))
        #expect(o.members.filter { $0.key == "k3" }.count == 1)
    }

    @Test func canonicallyEquivalentKeysStayDistinct() throws {
        // "é" precomposed and "e" + U+0301 are equal as Swift Strings but different JSON keys.
        let value = try JSONParser.parse("{\"\u{E9}\":1,\"e\u{301}\":2}")
        guard case .object(let o) = value else { Issue.record("not an object"); return }
        #expect(o.count == 2)
        #expect(try CanonicalJSON.string(value) == "{\"e\u{301}\":2,\"\u{E9}\":1}")
    }

    @Test func loneSurrogatesSurviveAndEscapeLowercaseUnderNexartV1() throws {
        #expect(try canonical(#"["\uD800","\uDFFF x","a\uDBFFb"]"#) == #"["\ud800","\udfff x","a\udbffb"]"#)
        // A high surrogate followed by a non-low escape stays unpaired.
        #expect(try canonical(#""\uD83D\u0041""#) == #""\ud83dA""#)
    }

    @Test func loneSurrogatesAreRefusedUnderJcsV1() throws {
        #expect(throws: CanonicalizationError.self) { try canonical(#""\uD800""#, .jcsV1) }
        #expect(try canonical(#""\uD83D\uDE00""#, .jcsV1) == "\"😀\"")
    }

    @Test func numbersFollowJavaScript() throws {
        #expect(try canonical("[9007199254740993, 1.0, 1E30, 4.50, 2e-3, 1e-27, 0.000001, 1e-7, -0.0, 100000000000000000000]")
            == "[9007199254740992,1,1e+30,4.5,0.002,1e-27,0.000001,1e-7,0,100000000000000000000]")
    }

    @Test func escapingFollowsJSONStringify() throws {
        #expect(try canonical(#""\u0000\u001f\b\t\n\f\r\"\\\/\u007f\u2029""#)
            == "\"\\u0000\\u001f\\b\\t\\n\\f\\r\\\"\\\\/\u{7F}\u{2029}\"")
    }

    @Test func overflowingNumberParsesAsInfinityAndCannotBeCanonicalized() throws {
        let value = try JSONParser.parse("{\"a\":1e400}")
        #expect(value["a"] == .number(.infinity))
        let error = #expect(throws: CanonicalizationError.self) { try CanonicalJSON.encode(value) }
        #expect(error?.message == "Non-finite number not allowed in canonical JSON: Infinity")
    }

    @Test func profilesFollowProtocolVersion() {
        #expect(CanonicalizationProfile.forProtocolVersion("1.2.0") == .nexartV1)
        #expect(CanonicalizationProfile.forProtocolVersion("1.3.0") == .jcsV1)
        #expect(CanonicalizationProfile.forProtocolVersion("1.3.1") == .jcsV1)
        #expect(CanonicalizationProfile.forProtocolVersion("1.4.0") == nil)
        #expect(CanonicalizationProfile.forProtocolVersion("") == nil)
    }

    @Test func stringInputHashesRawUTF8() throws {
        #expect(try ProtocolHash.value("Summarize the key risks in Q4 earnings.")
            == "sha256:92404e9f72809c9b7f81aaa976825e71d17e70da2633a7258d72e54ba46bd60e")
        let object = try JSONParser.parse(#"{"dataset":"customer_churn_q4_2025.csv","rows":12450}"#)
        #expect(try ProtocolHash.value(object) == "sha256:0feba055e8e164db8b33fea549ce12ba4b01e3a4c23b82f5c6386323d07737ff")
    }
}
