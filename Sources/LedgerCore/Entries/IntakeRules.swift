public import CERKit

/// What may be copied from a request into a ledger entry's body or a claim. Every such field has a
/// maximum length and a character rule, checked before anything is signed or appended, so that no
/// entry holds what PostgreSQL's `jsonb` cannot (NUL, unpaired surrogates) or what its indexes cannot.
public enum IntakeRules {
    /// How a field's text is constrained.
    public struct Rule: Sendable, Equatable {
        /// Most UTF-8 bytes.
        public var maxBytes: Int
        /// Whether C0 control characters other than NUL (U+0001–U+001F) and DEL are allowed.
        public var allowsControlCharacters: Bool

        /// Identifiers (executionId, runId, workflowId, stepId, bundle ids): 1 to 256 bytes, printable.
        public static let identifier = Rule(maxBytes: 256, allowsControlCharacters: false)
        /// Labels shown to people (a project's title): up to 1,024 bytes; line breaks and tabs allowed.
        public static let label = Rule(maxBytes: 1024, allowsControlCharacters: true)
        /// Protocol version strings.
        public static let version = Rule(maxBytes: 32, allowsControlCharacters: false)
    }

    /// A field that breaks its rule: which one, and why, in words.
    public struct Violation: Sendable, Equatable, CustomStringConvertible {
        public var field: String
        public var reason: String
        public var description: String { "\(field) \(reason)" }
    }

    /// Checks a string against a rule; `nil` when it conforms.
    public static func check(_ value: JSONString, field: String, rule: Rule) -> Violation? {
        let bytes = value.bytes
        if bytes.isEmpty { return Violation(field: field, reason: "must not be empty") }
        if bytes.count > rule.maxBytes {
            return Violation(field: field, reason: "is \(bytes.count) bytes long; at most \(rule.maxBytes) are accepted")
        }
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0 { return Violation(field: field, reason: "contains a NUL character (U+0000), which is not accepted") }
            if !rule.allowsControlCharacters, b < 0x20 || b == 0x7F {
                return Violation(field: field, reason: "contains a control character (U+\(hex4(b))), which is not accepted in identifiers")
            }
            // WTF-8 encodes a lone surrogate as ED A0–BF xx; a paired one never appears in it.
            if b == 0xED, i + 1 < bytes.count, bytes[i + 1] >= 0xA0 {
                return Violation(field: field, reason: "contains an unpaired UTF-16 surrogate, which is not accepted")
            }
            i += 1
        }
        return nil
    }

    /// Checks an optional member: absent or null conforms; any other non-string is a violation.
    public static func check(_ value: JSONValue?, field: String, rule: Rule) -> Violation? {
        guard let value, !value.isNull else { return nil }
        guard case .string(let s) = value else { return Violation(field: field, reason: "must be a string, not a \(value.typeName)") }
        return check(s, field: field, rule: rule)
    }

    /// The first violation among the fields of a CER that an attestation copies into its entry or a
    /// claim (the snapshot's executionId and run fields, versions, a governed bundle's id).
    public static func checkAttestable(_ cer: JSONValue) -> Violation? {
        let snapshot = cer["snapshot"]
        let fields: [(String, JSONValue?, Rule)] = [
            ("snapshot.executionId", snapshot?["executionId"], .identifier),
            ("snapshot.runId", snapshot?["runId"], .identifier),
            ("snapshot.workflowId", snapshot?["workflowId"], .identifier),
            ("snapshot.stepId", snapshot?["stepId"], .identifier),
            ("snapshot.prevStepHash", snapshot?["prevStepHash"], .identifier),
            ("snapshot.protocolVersion", snapshot?["protocolVersion"], .version),
            ("version", cer["version"], .version),
            ("evidence.bundle.bundleId", cer["evidence"]?["bundle"]?["bundleId"], .identifier),
        ]
        for (name, value, rule) in fields {
            // Only strings are copied; other types are the verifier's business.
            guard let value, value.stringValue != nil else { continue }
            if let v = check(value, field: name, rule: rule) { return v }
        }
        return nil
    }

    private static func hex4(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "00" + String(digits[Int(b >> 4)]) + String(digits[Int(b & 0x0F)])
    }
}
