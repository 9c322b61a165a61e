/// Python `str` algorithms over Unicode scalars (Python indexes strings by code point).
enum PyString {
    typealias Scalars = [Unicode.Scalar]

    static func scalars(_ s: String) -> Scalars { Array(s.unicodeScalars) }

    static func string(_ s: some Sequence<Unicode.Scalar>) -> String {
        var v = String.UnicodeScalarView()
        v.append(contentsOf: s)
        return String(v)
    }

    /// Python `str.isspace` for one character.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        c.properties.isWhitespace || (0x1C...0x1F).contains(c.value)
    }

    static func find(_ h: Scalars, _ n: Scalars, from: Int, to: Int? = nil) -> Int? {
        let end = min(to ?? h.count, h.count)
        guard n.count <= end - from else { return nil }
        if n.isEmpty { return from }
        var i = max(0, from)
        while i + n.count <= end {
            if h[i] == n[0], Array(h[i..<i + n.count]) == n { return i }
            i += 1
        }
        return nil
    }

    static func rfind(_ h: Scalars, _ n: Scalars, from: Int = 0, to: Int? = nil) -> Int? {
        let end = min(to ?? h.count, h.count)
        var i = end - n.count
        while i >= max(0, from) {
            if Array(h[i..<i + n.count]) == n { return i }
            i -= 1
        }
        return nil
    }

    static func strip(_ s: String, _ chars: String?, left: Bool, right: Bool) -> String {
        let sc = scalars(s)
        let set = chars.map { Set($0.unicodeScalars) }
        func strippable(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isSpace(c) }
        var a = 0
        var b = sc.count
        if left { while a < b, strippable(sc[a]) { a += 1 } }
        if right { while b > a, strippable(sc[b - 1]) { b -= 1 } }
        return string(sc[a..<b])
    }

    static func split(_ s: String, sep: String?, maxsplit: Int) throws(TemplateError) -> [String] {
        let sc = scalars(s)
        var parts: [String] = []
        guard let sep else {
            var i = 0
            var splits = 0
            while i < sc.count {
                while i < sc.count, isSpace(sc[i]) { i += 1 }
                if i >= sc.count { break }
                if maxsplit >= 0, splits >= maxsplit {
                    var end = sc.count
                    while end > i, isSpace(sc[end - 1]) { end -= 1 }
                    parts.append(string(sc[i..<end]))
                    return parts
                }
                var j = i
                while j < sc.count, !isSpace(sc[j]) { j += 1 }
                parts.append(string(sc[i..<j]))
                splits += 1
                i = j
            }
            return parts
        }
        let sp = scalars(sep)
        guard !sp.isEmpty else { throw TemplateError.type("empty separator") }
        var start = 0
        var splits = 0
        while maxsplit < 0 || splits < maxsplit, let k = find(sc, sp, from: start) {
            parts.append(string(sc[start..<k]))
            start = k + sp.count
            splits += 1
        }
        parts.append(string(sc[start...]))
        return parts
    }

    static func rsplit(_ s: String, sep: String?, maxsplit: Int) throws(TemplateError) -> [String] {
        guard maxsplit >= 0 else { return try split(s, sep: sep, maxsplit: -1) }
        let sc = scalars(s)
        var parts: [String] = []
        guard let sep else {
            var end = sc.count
            var splits = 0
            while end > 0 {
                while end > 0, isSpace(sc[end - 1]) { end -= 1 }
                if end == 0 { break }
                if splits >= maxsplit {
                    var a = 0
                    while a < end, isSpace(sc[a]) { a += 1 }
                    parts.append(string(sc[a..<end]))
                    break
                }
                var j = end
                while j > 0, !isSpace(sc[j - 1]) { j -= 1 }
                parts.append(string(sc[j..<end]))
                splits += 1
                end = j
            }
            return parts.reversed()
        }
        let sp = scalars(sep)
        guard !sp.isEmpty else { throw TemplateError.type("empty separator") }
        var end = sc.count
        var splits = 0
        while splits < maxsplit, let k = rfind(sc, sp, to: end) {
            parts.append(string(sc[(k + sp.count)..<end]))
            end = k
            splits += 1
        }
        parts.append(string(sc[..<end]))
        return parts.reversed()
    }

    static let lineBreaks: Set<UInt32> = [0x0A, 0x0D, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029]

    static func splitlines(_ s: String, keepends: Bool) -> [String] {
        let sc = scalars(s)
        var lines: [String] = []
        var start = 0
        var i = 0
        while i < sc.count {
            if lineBreaks.contains(sc[i].value) {
                var eol = i + 1
                if sc[i] == "\r", eol < sc.count, sc[eol] == "\n" { eol += 1 }
                lines.append(string(sc[start..<(keepends ? eol : i)]))
                start = eol
                i = eol
            } else {
                i += 1
            }
        }
        if start < sc.count { lines.append(string(sc[start...])) }
        return lines
    }

    static func upper(_ s: String) -> String { s.uppercased() }
    static func lower(_ s: String) -> String { s.lowercased() }

    /// Python `str.title`.
    static func title(_ s: String) -> String {
        var out = ""
        var prevCased = false
        for c in s.unicodeScalars {
            let str = String(c)
            out += prevCased ? str.lowercased() : str.uppercased()
            prevCased = c.properties.isCased
        }
        return out
    }

    /// Python `str.capitalize`.
    static func capitalize(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return s }
        return String(first).uppercased() + string(s.unicodeScalars.dropFirst()).lowercased()
    }

    static func replace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
        let sc = scalars(s)
        let o = scalars(old)
        let n = scalars(new)
        var out: Scalars = []
        if o.isEmpty {
            var done = 0
            for c in sc {
                if count < 0 || done < count { out += n; done += 1 }
                out.append(c)
            }
            if count < 0 || done < count { out += n }
            return string(out)
        }
        var i = 0
        var done = 0
        while i < sc.count {
            if count < 0 || done < count, i + o.count <= sc.count, sc[i] == o[0], Array(sc[i..<i + o.count]) == o {
                out += n
                i += o.count
                done += 1
            } else {
                out.append(sc[i])
                i += 1
            }
        }
        return string(out)
    }

    static func count(_ s: String, _ sub: String) -> Int {
        let sc = scalars(s)
        let sb = scalars(sub)
        if sb.isEmpty { return sc.count + 1 }
        var n = 0
        var i = 0
        while let k = find(sc, sb, from: i) { n += 1; i = k + sb.count }
        return n
    }

    static func center(_ s: String, width: Int, fill: String = " ") -> String {
        let len = s.unicodeScalars.count
        guard width > len else { return s }
        let marg = width - len
        let left = marg / 2 + (marg & width & 1)
        return String(repeating: fill, count: left) + s + String(repeating: fill, count: marg - left)
    }
}
