/// RFC 3339 / ISO-8601 timestamps as milliseconds since the Unix epoch (what `Date.parse` yields for
/// the forms the protocol uses). Pure: no clock.
public enum Timestamp {
    /// Milliseconds since 1970-01-01T00:00:00Z for `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)` or a bare
    /// `YYYY-MM-DD` date; nil for anything else.
    public static func milliseconds(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var v = 0
            for i in from..<(from + count) {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard let year = num(0, 4), b.count >= 10, b[4] == 0x2D, let month = num(5, 2), b[7] == 0x2D, let day = num(8, 2),
            (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        var ms = Int64(daysFromCivil(year: year, month: month, day: day)) * 86_400_000
        if b.count == 10 { return ms }
        guard b.count >= 20, b[10] == 0x54 || b[10] == 0x74 || b[10] == 0x20, let hour = num(11, 2), b[13] == 0x3A,
            let minute = num(14, 2), b[16] == 0x3A, let second = num(17, 2), hour < 24, minute < 60, second < 61
        else { return nil }
        ms += Int64(hour * 3_600_000 + minute * 60_000 + second * 1000)
        var i = 19
        if i < b.count, b[i] == 0x2E {
            i += 1
            var digits = 0
            var fraction = 0
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
                if digits < 3 { fraction = fraction * 10 + Int(b[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            if digits < 3 { for _ in digits..<3 { fraction *= 10 } }
            ms += Int64(fraction)
        }
        guard i < b.count else { return nil }
        if b[i] == 0x5A || b[i] == 0x7A {
            return i + 1 == b.count ? ms : nil
        }
        guard b[i] == 0x2B || b[i] == 0x2D, i + 6 == b.count, let oh = num(i + 1, 2), b[i + 3] == 0x3A, let om = num(i + 4, 2),
            oh < 24, om < 60
        else { return nil }
        let offset = Int64(oh * 3_600_000 + om * 60_000)
        return b[i] == 0x2B ? ms - offset : ms + offset
    }

    /// The RFC 3339 text (UTC, milliseconds) of an epoch-milliseconds value.
    public static func iso8601(milliseconds: Int64) -> String {
        let days = Int(floorDiv(milliseconds, 86_400_000))
        let rest = Int(milliseconds - Int64(days) * 86_400_000)
        let (y, m, d) = civilFromDays(days)
        func pad(_ v: Int, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(rest / 3_600_000, 2)):\(pad(rest / 60_000 % 60, 2)):\(pad(rest / 1000 % 60, 2)).\(pad(rest % 1000, 3))Z"
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days-from-civil algorithm.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp + (mp < 10 ? 3 : -9)
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
