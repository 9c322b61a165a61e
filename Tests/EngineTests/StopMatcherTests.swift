import Testing
@testable import Engine

@Suite("Stop strings in streamed text")
struct StopMatcherTests {
    /// Feeds `pieces`; returns everything released and whether a stop string was found.
    func run(_ stops: [String], _ pieces: [String]) -> (String, Bool) {
        var matcher = StopMatcher(stops: stops)
        var out = ""
        for piece in pieces {
            let (released, stopped) = matcher.feed(piece)
            out += released
            if stopped { return (out, true) }
        }
        return (out + matcher.flush(), false)
    }

    @Test("a stop string split across pieces ends the text just before it, and none of it is released")
    func split() {
        var matcher = StopMatcher(stops: ["STOP"])
        #expect(matcher.feed("Hello S") == ("Hello ", false))
        #expect(matcher.feed("TO") == ("", false))
        #expect(matcher.feed("P and more") == ("", true))
        #expect(run(["STOP"], ["Hello S", "TO", "P and more"]) == ("Hello ", true))
    }

    @Test("held text that turns out not to be a stop string is released, in order")
    func falseStart() {
        #expect(run(["STOP"], ["ST", "ART", " S"]) == ("START S", false))
        var matcher = StopMatcher(stops: ["STOP"])
        #expect(matcher.feed("xST") == ("x", false))
        #expect(matcher.feed("ART") == ("START", false))
    }

    @Test("the earliest of several stop strings wins")
    func earliest() {
        #expect(run(["world", "lo w"], ["hello world"]) == ("hel", true))
    }

    @Test("multi-byte characters are never split, and stop strings made of them match")
    func unicode() {
        #expect(run(["日本"], ["こんにちは日", "本語"]) == ("こんにちは", true))
        #expect(run(["é!"], ["café", " ok"]) == ("café ok", false))
        #expect(run(["🦙"], ["a", "🦙b"]) == ("a", true))
    }

    @Test("no stop strings: everything is released at once")
    func none() {
        var matcher = StopMatcher(stops: [])
        #expect(matcher.feed("abc") == ("abc", false))
        #expect(matcher.flush() == "")
    }
}
