/// Finds stop strings in streamed text. Text is released only once it can no longer be the start
/// of a stop string, so a caller never sees part of a stop sequence.
struct StopMatcher {
    let stops: [String]
    private var pending = ""

    init(stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// Adds text; returns what can be released now and whether a stop string was found (the
    /// released text then ends just before it).
    mutating func feed(_ text: String) -> (released: String, stopped: Bool) {
        pending += text
        guard !stops.isEmpty else {
            defer { pending = "" }
            return (pending, false)
        }
        var earliest: String.Index?
        for stop in stops {
            if let r = pending.range(of: stop), earliest.map({ r.lowerBound < $0 }) ?? true { earliest = r.lowerBound }
        }
        if let cut = earliest {
            let out = String(pending[..<cut])
            pending = ""
            return (out, true)
        }
        // Hold back the longest suffix that is a prefix of some stop string.
        var hold = 0
        for stop in stops {
            var k = min(stop.count - 1, pending.count)
            while k > hold {
                if pending.hasSuffix(stop.prefix(k)) { hold = k; break }
                k -= 1
            }
        }
        let splitAt = pending.index(pending.endIndex, offsetBy: -hold)
        let out = String(pending[..<splitAt])
        pending = String(pending[splitAt...])
        return (out, false)
    }

    /// Releases whatever is held back (generation ended without a stop string).
    mutating func flush() -> String {
        defer { pending = "" }
        return pending
    }
}
