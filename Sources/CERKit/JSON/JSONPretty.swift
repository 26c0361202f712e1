extension JSONValue {
    /// Indented JSON text in member insertion order (for people; never hashed or signed).
    public func prettyPrinted(indent: Int = 2) -> String {
        var out: [UInt8] = []
        writePretty(self, level: 0, indent: indent, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Compact JSON bytes in member insertion order (responses; never hashed or signed).
    public func compactBytes() -> [UInt8] {
        var out: [UInt8] = []
        writePretty(self, level: 0, indent: 0, to: &out)
        return out
    }

    /// Compact JSON text in member insertion order (for people and logs; never hashed or signed).
    public func compactText() -> String {
        var out: [UInt8] = []
        writePretty(self, level: 0, indent: 0, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

private func writePretty(_ value: JSONValue, level: Int, indent: Int, to out: inout [UInt8]) {
    func newline(_ l: Int) {
        guard indent > 0 else { return }
        out.append(0x0A)
        out.append(contentsOf: repeatElement(0x20, count: l * indent))
    }
    switch value {
    case .number(let n) where !n.isFinite: out.append(contentsOf: Array("null".utf8))
    case .null, .bool, .number, .string: try? CanonicalJSON.write(value, profile: .nexartV1, to: &out)
    case .array(let a):
        guard !a.isEmpty else { out.append(contentsOf: [0x5B, 0x5D]); return }
        out.append(0x5B)
        for (i, e) in a.enumerated() {
            if i > 0 { out.append(0x2C) }
            newline(level + 1)
            writePretty(e, level: level + 1, indent: indent, to: &out)
        }
        newline(level)
        out.append(0x5D)
    case .object(let o):
        guard !o.isEmpty else { out.append(contentsOf: [0x7B, 0x7D]); return }
        out.append(0x7B)
        for (i, m) in o.members.enumerated() {
            if i > 0 { out.append(0x2C) }
            newline(level + 1)
            try? CanonicalJSON.writeString(m.key.bytes, profile: .nexartV1, to: &out)
            out.append(0x3A)
            if indent > 0 { out.append(0x20) }
            writePretty(m.value, level: level + 1, indent: indent, to: &out)
        }
        newline(level)
        out.append(0x7D)
    }
}
