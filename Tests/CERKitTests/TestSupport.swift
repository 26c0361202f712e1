@testable import CERKit

/// Small helpers shared by the CERKit suites.
enum Fixture {
    static func value(_ name: String) throws -> JSONValue { try JSONParser.parse(try SharedFiles.data("fixtures/\(name)")) }
    static func object(_ name: String) throws -> JSONObject { try value(name).objectValue! }
    static func keys() throws -> NodeKeyManifest { try NodeKeyManifest(try value("nexart-node-k1.json")) }
}

extension JSONValue {
    /// Returns a copy with the value at `path` replaced (path elements are keys or array indexes).
    func replacing(at path: [String], with newValue: JSONValue) -> JSONValue {
        guard let head = path.first else { return newValue }
        switch self {
        case .object(var o):
            o[head] = (o[head] ?? .null).replacing(at: Array(path.dropFirst()), with: newValue)
            return .object(o)
        case .array(var a):
            if let i = Int(head), i < a.count { a[i] = a[i].replacing(at: Array(path.dropFirst()), with: newValue) }
            return .array(a)
        default: return self
        }
    }

    /// The value at `path`, or nil when the path does not exist.
    func value(at path: [String]) -> JSONValue? {
        var node: JSONValue? = self
        for p in path {
            switch node {
            case .object(let o)?: node = o[p]
            case .array(let a)?: node = Int(p).flatMap { $0 < a.count ? a[$0] : nil }
            default: return nil
            }
        }
        return node
    }

    /// Every leaf path (strings, numbers, booleans, nulls) with its value.
    func leaves(prefix: [String] = []) -> [([String], JSONValue)] {
        switch self {
        case .object(let o): return o.members.flatMap { $0.value.leaves(prefix: prefix + [$0.key.string]) }
        case .array(let a): return a.enumerated().flatMap { $0.element.leaves(prefix: prefix + [String($0.offset)]) }
        default: return [(prefix, self)]
        }
    }

    /// The first path at which two values differ, or nil when equal.
    func firstDifference(from other: JSONValue, prefix: [String] = []) -> [String]? {
        switch (self, other) {
        case (.object(let a), .object(let b)):
            if Set(a.keys) != Set(b.keys) || a.count != b.count {
                // A renamed member: name the original key that disappeared.
                let renamed = b.keys.first { !a.keys.contains($0) } ?? a.keys.first { !b.keys.contains($0) }
                return prefix + (renamed.map { [$0] } ?? [])
            }
            for m in a.members where m.value != b[m.key] {
                return m.value.firstDifference(from: b[m.key]!, prefix: prefix + [m.key.string])
            }
            return nil
        case (.array(let a), .array(let b)):
            if a.count != b.count { return prefix }
            for i in a.indices where a[i] != b[i] { return a[i].firstDifference(from: b[i], prefix: prefix + [String(i)]) }
            return nil
        default:
            return self == other ? nil : prefix
        }
    }
}
