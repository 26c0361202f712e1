import CERKit
import LedgerCore
import Testing

@Suite struct IntakeRulesTests {
    @Test func identifiersRefuseNulControlsLoneSurrogatesAndLengthButKeepAnyOtherText() {
        let id = IntakeRules.Rule.identifier
        #expect(IntakeRules.check(JSONString("exec-42"), field: "f", rule: id) == nil)
        #expect(IntakeRules.check(JSONString("ünïcødé 😀 exec"), field: "f", rule: id) == nil)
        #expect(IntakeRules.check(JSONString(String(repeating: "a", count: 256)), field: "f", rule: id) == nil)
        #expect(IntakeRules.check(JSONString(String(repeating: "a", count: 257)), field: "f", rule: id)?.reason.contains("257 bytes") == true)
        // 86 three-byte characters are 258 bytes: the limit counts bytes, not characters.
        #expect(IntakeRules.check(JSONString(String(repeating: "€", count: 86)), field: "f", rule: id) != nil)
        #expect(IntakeRules.check(JSONString("a\u{0}b"), field: "snapshot.executionId", rule: id)?.description.hasPrefix("snapshot.executionId contains a NUL") == true)
        #expect(IntakeRules.check(JSONString("a\tb"), field: "f", rule: id)?.reason.contains("U+0009") == true)
        #expect(IntakeRules.check(JSONString("a\u{7f}"), field: "f", rule: id) != nil)
        #expect(IntakeRules.check(JSONString(""), field: "f", rule: id)?.reason == "must not be empty")
        // WTF-8 of a lone high and a lone low surrogate.
        #expect(IntakeRules.check(JSONString(wtf8: [0x61, 0xED, 0xA0, 0x80]), field: "f", rule: id)?.reason.contains("surrogate") == true)
        #expect(IntakeRules.check(JSONString(wtf8: [0xED, 0xBF, 0xBF]), field: "f", rule: id) != nil)
        // Hangul U+D7FF (ED 9F BF) is an ordinary character.
        #expect(IntakeRules.check(JSONString(wtf8: [0xED, 0x9F, 0xBF]), field: "f", rule: id) == nil)
    }

    @Test func labelsAllowLineBreaksButNotNul() {
        #expect(IntakeRules.check(JSONString("line one\nline two\ttab"), field: "projectTitle", rule: .label) == nil)
        #expect(IntakeRules.check(JSONString("a\u{0}"), field: "projectTitle", rule: .label) != nil)
        #expect(IntakeRules.check(.number(3), field: "projectTitle", rule: .label)?.reason == "must be a string, not a number")
        #expect(IntakeRules.check(nil as JSONValue?, field: "projectTitle", rule: .label) == nil)
        #expect(IntakeRules.check(JSONValue.null, field: "projectTitle", rule: .label) == nil)
    }

    @Test func anAttestableCerIsCheckedOnEveryFieldTheEntryCopies() {
        let ok: JSONValue = ["snapshot": ["executionId": "e", "runId": "r", "workflowId": "w", "prevStepHash": "sha256:00", "protocolVersion": "1.2.0"]]
        #expect(IntakeRules.checkAttestable(ok) == nil)
        for field in ["executionId", "runId", "workflowId", "stepId", "prevStepHash"] {
            let bad: JSONValue = ["snapshot": .object([field: .string(JSONString("x\u{0}"))])]
            #expect(IntakeRules.checkAttestable(bad)?.field == "snapshot.\(field)")
        }
        let governed: JSONValue = ["evidence": ["bundle": ["bundleId": .string(JSONString(String(repeating: "g", count: 300)))]]]
        #expect(IntakeRules.checkAttestable(governed)?.field == "evidence.bundle.bundleId")
        // Non-strings are not copied, so they are the verifier's business.
        #expect(IntakeRules.checkAttestable(["snapshot": ["runId": 5]]) == nil)
    }
}
