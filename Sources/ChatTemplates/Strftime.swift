import Foundation

/// A subset of C/Python `strftime` (English locale, local time zone, naive datetime semantics).
enum Strftime {
    static let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    static let months = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December",
    ]

    static func format(_ date: Date, _ fmt: String, timeZone: TimeZone = .current) -> String {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = timeZone
        let c = cal.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday, .nanosecond], from: date)
        let year = c.year ?? 1970, month = c.month ?? 1, day = c.day ?? 1
        let hour = c.hour ?? 0, minute = c.minute ?? 0, second = c.second ?? 0
        let weekday = (c.weekday ?? 1) - 1
        let yday = cal.ordinality(of: .day, in: .year, for: date) ?? 1
        func pad(_ v: Int, _ w: Int = 2, _ fill: Character = "0") -> String {
            let s = String(v)
            return String(repeating: fill, count: max(0, w - s.count)) + s
        }
        var out = ""
        var chars = Array(fmt)[...]
        while let ch = chars.popFirst() {
            guard ch == "%", var code = chars.popFirst() else { out.append(ch); continue }
            var noPad = false
            if code == "-", let next = chars.popFirst() { noPad = true; code = next }
            func num(_ v: Int, _ w: Int = 2) -> String { noPad ? String(v) : pad(v, w) }
            let hour12 = hour % 12 == 0 ? 12 : hour % 12
            switch code {
            case "Y": out += String(year)
            case "y": out += num(year % 100)
            case "m": out += num(month)
            case "d": out += num(day)
            case "e": out += noPad ? String(day) : pad(day, 2, " ")
            case "H": out += num(hour)
            case "I": out += num(hour12)
            case "M": out += num(minute)
            case "S": out += num(second)
            case "f": out += pad((c.nanosecond ?? 0) / 1000, 6)
            case "j": out += num(yday, 3)
            case "p": out += hour < 12 ? "AM" : "PM"
            case "a": out += String(days[weekday].prefix(3))
            case "A": out += days[weekday]
            case "b", "h": out += String(months[month - 1].prefix(3))
            case "B": out += months[month - 1]
            case "w": out += String(weekday)
            case "u": out += String(weekday == 0 ? 7 : weekday)
            case "D": out += "\(pad(month))/\(pad(day))/\(pad(year % 100))"
            case "F": out += "\(year)-\(pad(month))-\(pad(day))"
            case "T": out += "\(pad(hour)):\(pad(minute)):\(pad(second))"
            case "R": out += "\(pad(hour)):\(pad(minute))"
            case "c": out += "\(days[weekday].prefix(3)) \(months[month - 1].prefix(3)) \(pad(day, 2, " ")) \(pad(hour)):\(pad(minute)):\(pad(second)) \(year)"
            case "x": out += "\(pad(month))/\(pad(day))/\(pad(year % 100))"
            case "X": out += "\(pad(hour)):\(pad(minute)):\(pad(second))"
            case "Z", "z": break
            case "n": out += "\n"
            case "t": out += "\t"
            case "%": out += "%"
            default: out += "%" + String(code)
            }
        }
        return out
    }
}
