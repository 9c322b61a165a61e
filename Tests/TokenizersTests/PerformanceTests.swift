import Foundation
import Testing
@testable import Tokenizers

@Suite("Performance sanity", .enabled(if: hasSmolLM2, "SmolLM2 model not found at \(smolLM2Path)"))
struct PerformanceTests {
    /// ~100 KB of mixed prose, code, numbers and non-Latin text.
    static let corpus: String = {
        let parts = [
            "The quick brown fox jumps over the lazy dog, and then it runs away into the forest. ",
            "func fibonacci(_ n: Int) -> Int { n < 2 ? n : fibonacci(n - 1) + fibonacci(n - 2) }\n",
            "In 2024, revenue grew 12.5% to $3,456,789 while costs fell by 1,234 units. ",
            "这是一个用于测试分词器性能的中文句子。 Привет, мир! مرحبا 😀👍🏽\n",
            "    indented code line with    extra   spaces\t\tand tabs\n",
        ]
        var s = ""
        var i = 0
        while s.utf8.count < 100_000 {
            s += parts[i % parts.count]
            s += "word\(i) "
            i += 1
        }
        return s
    }()

    @Test("encoding 100 KB completes; prints the rate")
    func encode100KB() throws {
        let t = try #require(smolLM2)
        let text = Self.corpus
        let clock = ContinuousClock()
        var ids: [Int32] = []
        let elapsed = clock.measure {
            ids = t.encode(text, addSpecial: false, parseSpecial: true)
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let kb = Double(text.utf8.count) / 1024
        print(String(format: "encoded %.0f KB into %d tokens in %.1f ms (%.2f MB/s, %.0f tokens/s)",
                     kb, ids.count, seconds * 1000, kb / 1024 / max(seconds, 1e-9), Double(ids.count) / max(seconds, 1e-9)))
        #expect(ids.count > 10_000)
        #expect(t.decode(ids) == text)
    }

    @Test("a long word without spaces stays fast (merge heap, not quadratic)")
    func longWord() throws {
        let t = try #require(smolLM2)
        let text = String(repeating: "abcdefghij", count: 5_000)
        let clock = ContinuousClock()
        var ids: [Int32] = []
        let elapsed = clock.measure {
            ids = t.encode(text, addSpecial: false, parseSpecial: false)
        }
        print("encoded one 50,000-character word into \(ids.count) tokens in \(elapsed)")
        #expect(t.decode(ids) == text)
    }
}
