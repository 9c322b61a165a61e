/// Finds stop strings in streamed text. Text is released only once it can no longer be the start
/// of a stop string, so a caller never sees part of a stop sequence.
///
/// It matches UTF-8 bytes (as llama.cpp and vLLM compare strings), and each token costs
/// O(held text × stop strings), not more: on the scheduler's thread, where every sequence waits
/// for it, a request's 16 stop strings of 256 bytes must stay cheap.
struct StopMatcher {
    private let stops: [[UInt8]]
    /// Text received but not released: at most one byte short of the longest stop string, plus
    /// the latest piece.
    private var pending: [UInt8] = []
    /// The stop string that ended the text, once one has.
    private(set) var matched: String?

    init(stops: [String]) { self.stops = stops.filter { !$0.isEmpty }.map { Array($0.utf8) } }

    /// Adds text; returns what can be released now and whether a stop string was found (the
    /// released text then ends just before it).
    mutating func feed(_ text: String) -> (released: String, stopped: Bool) {
        pending.append(contentsOf: text.utf8)
        guard !stops.isEmpty else { return (release(upTo: pending.count), false) }
        var earliest: Int?, which: [UInt8] = []
        for stop in stops {
            if let at = Self.firstIndex(of: stop, in: pending), earliest.map({ at < $0 }) ?? true { earliest = at; which = stop }
        }
        if let cut = earliest {
            matched = String(decoding: which, as: UTF8.self)
            let out = String(decoding: pending[..<cut], as: UTF8.self)
            pending = []
            return (out, true)
        }
        // Hold back the longest suffix that is a prefix of some stop string. It starts where a
        // stop string starts, so never inside a character.
        var hold = 0
        for stop in stops {
            var k = min(stop.count - 1, pending.count)
            while k > hold {
                if pending[(pending.count - k)...].elementsEqual(stop[..<k]) { hold = k; break }
                k -= 1
            }
        }
        return (release(upTo: pending.count - hold), false)
    }

    /// Releases whatever is held back (generation ended without a stop string).
    mutating func flush() -> String {
        release(upTo: pending.count)
    }

    private mutating func release(upTo end: Int) -> String {
        let out = String(decoding: pending[..<end], as: UTF8.self)
        pending.removeSubrange(..<end)
        return out
    }

    /// The first position of `needle` in `haystack`.
    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count, let first = needle.first else { return nil }
        var i = 0
        while i <= haystack.count - needle.count {
            if haystack[i] == first, haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
