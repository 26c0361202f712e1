/// Limits that bound the parser's memory and recursion on hostile input.
public struct JSONParseLimits: Sendable, Equatable {
    /// Largest document accepted, in bytes (the NexArt node's body limit is 50 MB).
    public var maxBytes: Int
    /// Deepest nesting of arrays and objects accepted.
    public var maxDepth: Int
    /// Longest string accepted, in UTF-8 bytes after unescaping.
    public var maxStringBytes: Int

    public init(maxBytes: Int = 50 * 1024 * 1024, maxDepth: Int = 256, maxStringBytes: Int = 50 * 1024 * 1024) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
        self.maxStringBytes = maxStringBytes
    }

    /// The defaults: 50 MiB documents, depth 256, 50 MiB strings.
    public static let `default` = JSONParseLimits()
}

/// Why a document could not be parsed, with the byte offset where the problem was found.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable machine-readable reason.
    public enum Reason: String, Sendable {
        case empty = "EMPTY_DOCUMENT"
        case tooLarge = "DOCUMENT_TOO_LARGE"
        case tooDeep = "NESTING_TOO_DEEP"
        case stringTooLong = "STRING_TOO_LONG"
        case invalidUTF8 = "INVALID_UTF8"
        case unexpectedCharacter = "UNEXPECTED_CHARACTER"
        case unexpectedEnd = "UNEXPECTED_END"
        case invalidNumber = "INVALID_NUMBER"
        case invalidEscape = "INVALID_ESCAPE"
        case controlCharacterInString = "CONTROL_CHARACTER_IN_STRING"
        case trailingData = "TRAILING_DATA"
    }

    public var reason: Reason
    /// Byte offset into the document.
    public var offset: Int
    /// A sentence for a person.
    public var message: String

    public var description: String { "\(message) (at byte \(offset))" }
}

/// A strict RFC 8259 parser with JavaScript `JSON.parse` value semantics.
///
/// Numbers become doubles (`1e400` is +Infinity, as in JavaScript; canonicalization rejects it later),
/// the last of duplicate keys wins, `\u` escapes may produce unpaired surrogates, raw bytes must be
/// valid UTF-8, and a leading UTF-8 byte-order mark is skipped.
public struct JSONParser: ~Copyable {
    private let limits: JSONParseLimits

    public init(limits: JSONParseLimits = .default) { self.limits = limits }

    /// Parses one JSON document from its bytes.
    public static func parse(_ bytes: some Collection<UInt8>, limits: JSONParseLimits = .default) throws(JSONParseError)
        -> JSONValue
    {
        let parser = JSONParser(limits: limits)
        if let contiguous = bytes.withContiguousStorageIfAvailable({ buffer in
            Result { () throws(JSONParseError) in try parser.parse(buffer) }
        }) {
            return try contiguous.get()
        }
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { buffer throws(JSONParseError) in try parser.parse(buffer) }
    }

    /// Parses one JSON document from text.
    public static func parse(_ text: String, limits: JSONParseLimits = .default) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8), limits: limits)
    }

    func parse(_ buffer: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSONValue {
        guard buffer.count <= limits.maxBytes else {
            throw JSONParseError(
                reason: .tooLarge, offset: 0,
                message: "document is \(buffer.count) bytes, larger than the limit of \(limits.maxBytes) bytes")
        }
        var cursor = Cursor(bytes: buffer, limits: limits)
        if buffer.count >= 3, buffer[0] == 0xEF, buffer[1] == 0xBB, buffer[2] == 0xBF { cursor.position = 3 }
        cursor.skipWhitespace()
        guard cursor.position < buffer.count else {
            throw JSONParseError(reason: .empty, offset: cursor.position, message: "document is empty")
        }
        let value = try cursor.parseValue(depth: 0)
        cursor.skipWhitespace()
        guard cursor.position == buffer.count else {
            throw cursor.error(.trailingData, "unexpected data after the JSON value")
        }
        return value
    }
}

private struct Cursor {
    let bytes: UnsafeBufferPointer<UInt8>
    let limits: JSONParseLimits
    var position = 0

    init(bytes: UnsafeBufferPointer<UInt8>, limits: JSONParseLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    func error(_ reason: JSONParseError.Reason, _ message: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(reason: reason, offset: offset ?? position, message: message)
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    func describeByte(_ b: UInt8) -> String {
        if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x" + String(b, radix: 16, uppercase: true)
    }

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard position < bytes.count else { throw error(.unexpectedEnd, "document ends where a value was expected") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        case let b: throw error(.unexpectedCharacter, "unexpected \(describeByte(b)) where a value was expected")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let start = position
        let n = literal.utf8CodeUnitCount
        guard position + n <= bytes.count else {
            throw error(.unexpectedEnd, "document ends inside the literal \(literal)")
        }
        let p = literal.utf8Start
        for i in 0..<n where bytes[position + i] != p[i] {
            throw error(.unexpectedCharacter, "invalid literal; expected \(literal)", at: start)
        }
        position += n
    }

    mutating func enter(_ depth: Int) throws(JSONParseError) {
        if depth > limits.maxDepth {
            throw error(.tooDeep, "nesting is deeper than the limit of \(limits.maxDepth) levels")
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        try enter(depth)
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard position < bytes.count else { throw error(.unexpectedEnd, "document ends inside an array") }
            let b = bytes[position]
            position += 1
            if b == UInt8(ascii: ",") { continue }
            if b == UInt8(ascii: "]") { return .array(elements) }
            throw error(.unexpectedCharacter, "expected ',' or ']' in an array, found \(describeByte(b))", at: position - 1)
        }
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        try enter(depth)
        position += 1
        var members: [JSONObject.Member] = []
        var keyRanges: [Range<Int>] = []  // raw source bytes of each key, valid when it had no escapes
        var hasEscapedKey = false
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(JSONObject(uniqueMembers: members))
        }
        while true {
            skipWhitespace()
            guard position < bytes.count else { throw error(.unexpectedEnd, "document ends inside an object") }
            guard bytes[position] == UInt8(ascii: "\"") else {
                throw error(.unexpectedCharacter, "expected a string key in an object, found \(describeByte(bytes[position]))")
            }
            let keyStart = position + 1
            let key = try parseString()
            keyRanges.append(keyStart..<(position - 1))
            if key.bytes.count != position - 1 - keyStart { hasEscapedKey = true }
            skipWhitespace()
            guard position < bytes.count else { throw error(.unexpectedEnd, "document ends inside an object") }
            guard bytes[position] == UInt8(ascii: ":") else {
                throw error(.unexpectedCharacter, "expected ':' after an object key, found \(describeByte(bytes[position]))")
            }
            position += 1
            skipWhitespace()
            members.append(JSONObject.Member(key: key, value: try parseValue(depth: depth)))
            skipWhitespace()
            guard position < bytes.count else { throw error(.unexpectedEnd, "document ends inside an object") }
            let b = bytes[position]
            position += 1
            if b == UInt8(ascii: ",") { continue }
            if b == UInt8(ascii: "}") {
                if hasEscapedKey { return .object(JSONObject(parsedMembers: members)) }
                return .object(JSONObject(parsedMembers: members, keysIn: bytes, at: keyRanges))
            }
            throw error(.unexpectedCharacter, "expected ',' or '}' in an object, found \(describeByte(b))", at: position - 1)
        }
    }

    mutating func parseNumber() throws(JSONParseError) -> Double {
        let start = position
        var isNegative = false
        if bytes[position] == UInt8(ascii: "-") {
            isNegative = true
            position += 1
        }
        guard position < bytes.count, isDigit(bytes[position]) else {
            throw error(.invalidNumber, "a number needs a digit after '-'", at: start)
        }
        var mantissa: UInt64 = 0
        var digitCount = 0
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < bytes.count, isDigit(bytes[position]) {
                throw error(.invalidNumber, "numbers may not have leading zeros", at: start)
            }
        } else {
            while position < bytes.count, isDigit(bytes[position]) {
                if digitCount < 19 { mantissa = mantissa &* 10 &+ UInt64(bytes[position] &- 48) }
                digitCount += 1
                position += 1
            }
        }
        var isInteger = true
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard position < bytes.count, isDigit(bytes[position]) else {
                throw error(.invalidNumber, "a number needs a digit after the decimal point", at: start)
            }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard position < bytes.count, isDigit(bytes[position]) else {
                throw error(.invalidNumber, "a number needs a digit in its exponent", at: start)
            }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        // Integers below 2^53 convert exactly; everything else goes through a correctly rounded conversion.
        if isInteger, digitCount <= 15 {
            let v = Double(mantissa)
            return isNegative ? -v : v
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        guard let value = Double(text) else {
            throw error(.invalidNumber, "number could not be converted", at: start)
        }
        return value
    }

    @inline(__always) func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    mutating func parseString() throws(JSONParseError) -> JSONString {
        let start = position
        position += 1
        // Fast path: a run without escapes is copied in one go.
        var runStart = position
        var out: [UInt8] = []
        while true {
            guard position < bytes.count else { throw error(.unexpectedEnd, "document ends inside a string", at: start) }
            let b = bytes[position]
            if b == UInt8(ascii: "\"") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
                position += 1
                break
            }
            if b == UInt8(ascii: "\\") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
                try parseEscape(into: &out)
                runStart = position
                continue
            }
            if b < 0x20 {
                throw error(.controlCharacterInString, "raw control character 0x\(String(b, radix: 16)) inside a string; it must be escaped")
            }
            if b < 0x80 {
                position += 1
            } else {
                try skipUTF8Sequence()
            }
            if position - runStart + out.count > limits.maxStringBytes {
                throw error(.stringTooLong, "a string is longer than the limit of \(limits.maxStringBytes) bytes", at: start)
            }
        }
        return JSONString(wtf8: out)
    }

    mutating func skipUTF8Sequence() throws(JSONParseError) {
        let b0 = bytes[position]
        let remaining = bytes.count - position
        func cont(_ i: Int) -> UInt8? { i < remaining ? bytes[position + i] : nil }
        func isCont(_ b: UInt8?) -> Bool { if let b { return b & 0xC0 == 0x80 } else { return false } }
        let invalid = error(.invalidUTF8, "invalid UTF-8 byte sequence")
        switch b0 {
        case 0xC2...0xDF:
            guard isCont(cont(1)) else { throw invalid }
            position += 2
        case 0xE0...0xEF:
            guard let b1 = cont(1), isCont(b1), isCont(cont(2)) else { throw invalid }
            if b0 == 0xE0 && b1 < 0xA0 { throw invalid }  // overlong
            if b0 == 0xED && b1 >= 0xA0 { throw invalid }  // UTF-8 may not encode surrogates
            position += 3
        case 0xF0...0xF4:
            guard let b1 = cont(1), isCont(b1), isCont(cont(2)), isCont(cont(3)) else { throw invalid }
            if b0 == 0xF0 && b1 < 0x90 { throw invalid }  // overlong
            if b0 == 0xF4 && b1 >= 0x90 { throw invalid }  // above U+10FFFF
            position += 4
        default:
            throw invalid
        }
    }

    mutating func parseEscape(into out: inout [UInt8]) throws(JSONParseError) {
        let start = position
        position += 1
        guard position < bytes.count else { throw error(.unexpectedEnd, "document ends inside an escape", at: start) }
        let c = bytes[position]
        position += 1
        switch c {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try parseHex4(escapeStart: start)
            if unit >= 0xD800 && unit < 0xDC00,
                position + 6 <= bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
            {
                let save = position
                position += 2
                let low = try parseHex4(escapeStart: save)
                if low >= 0xDC00 && low < 0xE000 {
                    let scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                    appendScalar(scalar, to: &out)
                    return
                }
                position = save  // not a pair: the high surrogate stays unpaired, the next escape is read anew
            }
            appendScalar(UInt32(unit), to: &out)
        default:
            throw error(.invalidEscape, "invalid escape sequence '\\\(Character(Unicode.Scalar(c)))'", at: start)
        }
    }

    mutating func parseHex4(escapeStart: Int) throws(JSONParseError) -> UInt16 {
        var v: UInt16 = 0
        for _ in 0..<4 {
            guard position < bytes.count else { throw error(.unexpectedEnd, "document ends inside a \\u escape", at: escapeStart) }
            let b = bytes[position]
            let d: UInt8
            switch b {
            case 0x30...0x39: d = b - 0x30
            case 0x41...0x46: d = b - 0x41 + 10
            case 0x61...0x66: d = b - 0x61 + 10
            default: throw error(.invalidEscape, "invalid \\u escape: expected four hex digits", at: escapeStart)
            }
            v = v << 4 | UInt16(d)
            position += 1
        }
        return v
    }
}

/// Appends a code point (or an unpaired surrogate) in WTF-8.
@inline(__always)
func appendScalar(_ v: UInt32, to out: inout [UInt8]) {
    if v < 0x80 {
        out.append(UInt8(v))
    } else if v < 0x800 {
        out.append(UInt8(0xC0 | (v >> 6)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else if v < 0x10000 {
        out.append(UInt8(0xE0 | (v >> 12)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else {
        out.append(UInt8(0xF0 | (v >> 18)))
        out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    }
}
