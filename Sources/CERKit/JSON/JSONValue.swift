#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A JSON value with JavaScript `JSON.parse` semantics: numbers are IEEE-754 doubles, strings are
/// sequences of UTF-16 code units (lone surrogates kept), objects keep first-insertion order with the
/// last duplicate's value.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(JSONString)
    case array([JSONValue])
    case object(JSONObject)
}

extension JSONValue {
    /// The member named `key` when this is an object, else nil.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    /// The element at `index` when this is an array and the index is in range, else nil.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let a) = self, index >= 0, index < a.count else { return nil }
        return a[index]
    }

    /// The string's text when this is a string (lone surrogates become U+FFFD), else nil.
    public var stringValue: String? {
        if case .string(let s) = self { return s.string }
        return nil
    }

    /// The raw string when this is a string, else nil.
    public var jsonString: JSONString? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The number when this is a number, else nil.
    public var numberValue: Double? {
        if case .number(let n) = self { return n }
        return nil
    }

    /// The boolean when this is a boolean, else nil.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements when this is an array, else nil.
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The object when this is an object, else nil.
    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// True when this is JSON `null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The JavaScript `typeof`-style name of the value's type, for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// True when this is a string whose text equals `text` (compared as bytes, without allocating).
    public func isString(_ text: String) -> Bool {
        guard case .string(let s) = self else { return false }
        return s.equals(text)
    }

    /// True when this is a string with at least one character.
    public var isNonEmptyString: Bool {
        if case .string(let s) = self { return !s.bytes.isEmpty }
        return false
    }

    /// The string value when it is a non-empty string, else nil.
    public var nonEmptyString: String? {
        guard let s = stringValue, !s.isEmpty else { return nil }
        return s
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(JSONString(value)) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (k, v) in elements { object[k] = v }
        self = .object(object)
    }
    public init(nilLiteral: ()) { self = .null }
}

/// A JSON string stored as WTF-8: UTF-8, except that an unpaired UTF-16 surrogate is kept as its
/// 3-byte generalized encoding. Byte equality is therefore UTF-16 code-unit equality.
public struct JSONString: Sendable, Hashable {
    /// The WTF-8 bytes.
    public var bytes: [UInt8]

    /// Wraps WTF-8 bytes produced by the parser or by `init(_ string:)`.
    public init(wtf8 bytes: [UInt8]) { self.bytes = bytes }

    /// A string from Swift text (always well-formed).
    public init(_ string: String) { self.bytes = Array(string.utf8) }

    /// The text, with any unpaired surrogate replaced by U+FFFD.
    public var string: String { String(decoding: hasLoneSurrogate ? utf8Replacing : bytes, as: UTF8.self) }

    /// UTF-8 with each unpaired surrogate replaced by one U+FFFD, as JavaScript's UTF-8 encoders do.
    public var utf8Replacing: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0xED, i + 2 < bytes.count, bytes[i + 1] >= 0xA0 {
                out.append(contentsOf: [0xEF, 0xBF, 0xBD])
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    /// True when the string's bytes equal `text`'s UTF-8 (no allocation).
    public func equals(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { t in
            bytes.count == t.count && bytes.withUnsafeBufferPointer { b in t.count == 0 || memcmp(b.baseAddress!, t.baseAddress!, t.count) == 0 }
        }
    }

    /// True when the string starts with `prefix`'s UTF-8 (no allocation).
    public func hasPrefix(_ prefix: String) -> Bool {
        var prefix = prefix
        return prefix.withUTF8 { t in
            bytes.count >= t.count && bytes.withUnsafeBufferPointer { b in t.count == 0 || memcmp(b.baseAddress!, t.baseAddress!, t.count) == 0 }
        }
    }

    /// True when the string holds an unpaired surrogate (not representable as UTF-8).
    public var hasLoneSurrogate: Bool {
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0xED, i + 1 < bytes.count, bytes[i + 1] >= 0xA0 { return true }
            i += 1
        }
        return false
    }

    /// The UTF-16 code units, as JavaScript sees the string.
    public var utf16: [UInt16] {
        var out: [UInt16] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        let b = bytes
        while i < b.count {
            let c = b[i]
            if c < 0x80 {
                out.append(UInt16(c)); i += 1
            } else if c < 0xE0 {
                out.append(UInt16(c & 0x1F) << 6 | UInt16(b[i + 1] & 0x3F)); i += 2
            } else if c < 0xF0 {
                out.append(UInt16(c & 0x0F) << 12 | UInt16(b[i + 1] & 0x3F) << 6 | UInt16(b[i + 2] & 0x3F)); i += 3
            } else {
                let scalar = UInt32(c & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12 | UInt32(b[i + 2] & 0x3F) << 6
                    | UInt32(b[i + 3] & 0x3F)
                let v = scalar - 0x10000
                out.append(UInt16(0xD800 + (v >> 10)))
                out.append(UInt16(0xDC00 + (v & 0x3FF)))
                i += 4
            }
        }
        return out
    }

    /// JavaScript's default `Array.prototype.sort()` order: lexicographic by UTF-16 code units.
    public static func utf16Precedes(_ a: JSONString, _ b: JSONString) -> Bool {
        utf16Precedes(a.bytes, b.bytes)
    }

    static func utf16Precedes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let n = min(a.count, b.count)
        var i = 0
        while i < n {
            let x = a[i], y = b[i]
            if x != y {
                // ASCII and 2-byte sequences order the same in UTF-8 and UTF-16; only code points at or
                // above U+E000 versus supplementary ones (surrogate pairs) differ, so decode then.
                if x < 0xE0 && y < 0xE0 { return x < y }
                return JSONString(wtf8: a).utf16.lexicographicallyPrecedes(JSONString(wtf8: b).utf16)
            }
            i += 1
        }
        return a.count < b.count
    }
}

extension JSONString: ExpressibleByStringLiteral, CustomStringConvertible {
    public init(stringLiteral value: String) { self.init(value) }
    public var description: String { string }
}

/// A JSON object with keys unique by UTF-16 code units. Parsed objects hold their members in canonical
/// (UTF-16) key order, so canonicalization does not sort them again; members added later are appended.
public struct JSONObject: Sendable, Equatable {
    /// One member of an object.
    public struct Member: Sendable, Equatable {
        public var key: JSONString
        public var value: JSONValue
        public init(key: JSONString, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    /// The members: canonical order for parsed objects, then insertion order for added ones.
    public private(set) var members: [Member]

    /// An empty object.
    public init() { members = [] }

    /// An object from members whose keys are already unique.
    init(uniqueMembers: [Member]) { members = uniqueMembers }

    /// As `init(parsedMembers:)`, comparing keys in the source document (no escapes) without copying them.
    init(parsedMembers: [Member], keysIn source: UnsafeBufferPointer<UInt8>, at ranges: [Range<Int>]) {
        let base = source.baseAddress!
        @inline(__always) func precedes(_ a: Int, _ b: Int) -> Bool {
            let ra = ranges[a], rb = ranges[b]
            let n = min(ra.count, rb.count)
            let c = n == 0 ? 0 : memcmp(base + ra.lowerBound, base + rb.lowerBound, n)
            if c == 0 {
                if ra.count == rb.count { return a < b }
                return ra.count < rb.count
            }
            // Find the first differing byte; only bytes ≥ 0xE0 can order differently in UTF-16.
            var i = 0
            while source[ra.lowerBound + i] == source[rb.lowerBound + i] { i += 1 }
            let x = source[ra.lowerBound + i], y = source[rb.lowerBound + i]
            if x < 0xE0 && y < 0xE0 { return x < y }
            return JSONString.utf16Precedes(parsedMembers[a].key.bytes, parsedMembers[b].key.bytes)
        }
        let count = parsedMembers.count
        var sortedUnique = true
        if count > 1 {
            for i in 1..<count where !precedes(i - 1, i) || ranges[i - 1].count == ranges[i].count && memcmp(base + ranges[i - 1].lowerBound, base + ranges[i].lowerBound, ranges[i].count) == 0 {
                sortedUnique = false
                break
            }
        }
        if sortedUnique {
            members = parsedMembers
            return
        }
        let order = Self.stableOrder(count: count, precedes: precedes)
        var out: [Member] = []
        out.reserveCapacity(count)
        var previous = -1
        for i in order {
            if previous >= 0, ranges[previous].count == ranges[i].count,
                memcmp(base + ranges[previous].lowerBound, base + ranges[i].lowerBound, ranges[i].count) == 0
            {
                out[out.count - 1].value = parsedMembers[i].value
            } else {
                out.append(parsedMembers[i])
            }
            previous = i
        }
        members = out
    }

    /// Indexes 0..<count sorted by `precedes` (insertion sort for small objects: no closure allocation).
    static func stableOrder(count: Int, precedes: (Int, Int) -> Bool) -> [Int] {
        var order = Array(0..<count)
        guard count > 1 else { return order }
        if count <= 24 {
            for i in 1..<count {
                let x = order[i]
                var j = i
                while j > 0, precedes(x, order[j - 1]) {
                    order[j] = order[j - 1]
                    j -= 1
                }
                order[j] = x
            }
        } else {
            order.sort(by: precedes)
        }
        return order
    }

    /// An object from parsed members: sorted into canonical key order; of repeated keys the last value
    /// wins, as in `JSON.parse`.
    init(parsedMembers: [Member]) {
        var isSortedUnique = true
        if parsedMembers.count > 1 {
            for i in 1..<parsedMembers.count where !JSONString.utf16Precedes(parsedMembers[i - 1].key.bytes, parsedMembers[i].key.bytes) {
                isSortedUnique = false
                break
            }
        }
        if isSortedUnique {
            members = parsedMembers
            return
        }
        // Stable by position, so among equal keys the last one parsed comes last and wins.
        func precedes(_ a: Int, _ b: Int) -> Bool {
            let ka = parsedMembers[a].key.bytes, kb = parsedMembers[b].key.bytes
            if ka == kb { return a < b }
            return JSONString.utf16Precedes(ka, kb)
        }
        let order = Self.stableOrder(count: parsedMembers.count, precedes: precedes)
        var out: [Member] = []
        out.reserveCapacity(order.count)
        for i in order {
            if let last = out.last, last.key == parsedMembers[i].key {
                out[out.count - 1].value = parsedMembers[i].value
            } else {
                out.append(parsedMembers[i])
            }
        }
        members = out
    }

    /// Objects are equal when they have the same keys with equal values, in any order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        if lhs.members.elementsEqual(rhs.members) { return true }
        for m in lhs.members {
            guard let other = rhs[m.key], other == m.value else { return false }
        }
        return true
    }

    /// The number of members.
    public var count: Int { members.count }

    /// True when the object has no members.
    public var isEmpty: Bool { members.isEmpty }

    /// The keys as text, in insertion order.
    public var keys: [String] { members.map { $0.key.string } }

    /// The index of the member named `key`, if any.
    public func index(of key: JSONString) -> Int? {
        members.firstIndex { $0.key == key }
    }

    /// The value of the member named by the raw key.
    public subscript(key: JSONString) -> JSONValue? {
        get { index(of: key).map { members[$0].value } }
        set {
            if let i = index(of: key) {
                if let newValue { members[i].value = newValue } else { members.remove(at: i) }
            } else if let newValue {
                members.append(Member(key: key, value: newValue))
            }
        }
    }

    /// The value of the member named `key`.
    public subscript(key: String) -> JSONValue? {
        get {
            var key = key
            return key.withUTF8 { k in
                for m in members where m.key.bytes.count == k.count {
                    let equal = m.key.bytes.withUnsafeBufferPointer { b in k.count == 0 || memcmp(b.baseAddress!, k.baseAddress!, k.count) == 0 }
                    if equal { return m.value }
                }
                return nil
            }
        }
        set { self[JSONString(key)] = newValue }
    }

    /// True when the object has a member named `key`.
    public func contains(_ key: String) -> Bool { self[key] != nil }

    /// A copy with only the named members that are present, in the order given.
    public func picking(_ keys: [String]) -> JSONObject {
        var out = JSONObject()
        for k in keys { if let v = self[k] { out[k] = v } }
        return out
    }

    /// A copy without the named members.
    public func removing(_ keys: Set<String>) -> JSONObject {
        JSONObject(uniqueMembers: members.filter { !keys.contains($0.key.string) })
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// An object from literal members, in the order written (a later duplicate replaces an earlier one).
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init()
        for (k, v) in elements { self[k] = v }
    }
}
