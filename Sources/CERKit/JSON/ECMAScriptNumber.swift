/// ECMAScript `Number::toString(10)`: the number formatting of `JSON.stringify` and RFC 8785.
public enum ECMAScriptNumber {
    /// The JavaScript text of a finite double: shortest round-trip digits, plain notation for
    /// exponents in [-7, 21), `e+`/`e-` notation otherwise, and `-0` written as `0`.
    public static func format(_ value: Double) -> String {
        var out: [UInt8] = []
        append(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the JavaScript text of a finite double to `out`.
    public static func append(_ value: Double, to out: inout [UInt8]) {
        precondition(value.isFinite, "ECMAScript number formatting needs a finite value")
        if value == 0 {
            out.append(UInt8(ascii: "0"))
            return
        }
        // Integers of up to 15 digits print directly.
        if value == value.rounded(.towardZero), abs(value) < 1e15 {
            let i = Int64(value)
            if i < 0 { out.append(UInt8(ascii: "-")) }
            appendDecimal(i.magnitude, to: &out)
            return
        }
        if value < 0 { out.append(UInt8(ascii: "-")) }
        if appendShortDecimal(abs(value), to: &out) { return }
        // Swift's description yields the shortest round-trip digits; only the layout differs from ES.
        var (digits, n) = decompose(abs(value))
        while digits.count > 1, digits.last == UInt8(ascii: "0") { digits.removeLast() }
        let k = digits.count
        if k <= n && n <= 21 {
            out.append(contentsOf: digits)
            for _ in 0..<(n - k) { out.append(UInt8(ascii: "0")) }
        } else if 0 < n && n <= 21 {
            out.append(contentsOf: digits[0..<n])
            out.append(UInt8(ascii: "."))
            out.append(contentsOf: digits[n...])
        } else if -6 < n && n <= 0 {
            out.append(UInt8(ascii: "0"))
            out.append(UInt8(ascii: "."))
            for _ in 0..<(-n) { out.append(UInt8(ascii: "0")) }
            out.append(contentsOf: digits)
        } else {
            let e = n - 1
            out.append(digits[0])
            if k > 1 {
                out.append(UInt8(ascii: "."))
                out.append(contentsOf: digits[1...])
            }
            out.append(UInt8(ascii: "e"))
            out.append(e < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            appendDecimal(UInt64(abs(e)), to: &out)
        }
    }

    private static let powersOfTen: [Double] = (0...15).map { k in (0..<k).reduce(1.0) { r, _ in r * 10 } }

    /// Plain-notation values with at most 15 significant digits. With K = 15 − (integer digits): if
    /// m = round(v·10^K) and m / 10^K == v (both exact doubles, the division correctly rounded), the decimal
    /// m·10^-K parses back to v, and since no two decimals of ≤ 15 significant digits map to the same double,
    /// m with its trailing zeros removed is the shortest such decimal. One test decides; no search.
    static func appendShortDecimal(_ v: Double, to out: inout [UInt8]) -> Bool {
        guard v >= 1e-6, v < 1e15 else { return false }
        var integerDigits = 0
        var t = v.rounded(.towardZero)
        while t >= 1 { t /= 10; integerDigits += 1 }
        var k = 15 - max(integerDigits, 1)
        guard k >= 1 else { return false }
        let p = powersOfTen[k]
        let scaled = (v * p).rounded()
        guard scaled < 1e15, scaled / p == v else { return false }
        var m = Int64(scaled)
        while k > 0, m % 10 == 0 {
            m /= 10
            k -= 1
        }
        guard k > 0 else { return false }  // an integer: handled by the caller's integer path
        let pk = Int64(powersOfTen[k])
        appendDecimal(UInt64(m / pk), to: &out)
        out.append(UInt8(ascii: "."))
        var fraction = m % pk
        var digits = [UInt8](repeating: 0x30, count: k)
        var i = k - 1
        while fraction > 0 {
            digits[i] = UInt8(fraction % 10) + 0x30
            fraction /= 10
            i -= 1
        }
        out.append(contentsOf: digits)
        return true
    }

    /// Shortest digits d1…dk (no leading zeros) and n such that value = 0.d1…dk × 10^n.
    static func decompose(_ value: Double) -> (digits: [UInt8], n: Int) {
        let text = Array(value.description.utf8)  // e.g. "123.45", "1e-07", "1.5e+21", "5e-324"
        var mantissa = text[...]
        var exponent = 0
        if let e = text.firstIndex(of: UInt8(ascii: "e")) {
            mantissa = text[..<e]
            var sign = 1
            var i = e + 1
            if text[i] == UInt8(ascii: "-") { sign = -1; i += 1 } else if text[i] == UInt8(ascii: "+") { i += 1 }
            var v = 0
            while i < text.count { v = v * 10 + Int(text[i] - 48); i += 1 }
            exponent = sign * v
        }
        var digits: [UInt8] = []
        digits.reserveCapacity(mantissa.count)
        var pointPosition: Int? = nil
        for b in mantissa {
            if b == UInt8(ascii: ".") { pointPosition = digits.count } else { digits.append(b) }
        }
        var n = (pointPosition ?? digits.count) + exponent
        var leading = 0
        while leading < digits.count - 1, digits[leading] == UInt8(ascii: "0") { leading += 1 }
        if leading > 0 {
            digits.removeFirst(leading)
            n -= leading
        }
        return (digits, n)
    }

    static func appendDecimal(_ v: UInt64, to out: inout [UInt8]) {
        if v < 10 {
            out.append(UInt8(truncatingIfNeeded: v) + 48)
            return
        }
        var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes, enough for 20 digits
        withUnsafeMutableBytes(of: &buffer) { raw in
            var i = raw.count
            var x = v
            while x > 0 {
                i -= 1
                raw[i] = UInt8(truncatingIfNeeded: x % 10) + 48
                x /= 10
            }
            out.append(contentsOf: raw[i...])
        }
    }
}
