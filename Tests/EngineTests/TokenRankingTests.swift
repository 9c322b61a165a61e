import Testing
import TestSupport
@testable import Engine

@Suite("Token ranking: the order sampling draws in")
struct TokenRankingTests {
    /// The order by definition: descending logit, ties by ascending id, -inf and NaN left out.
    func reference(_ values: [Float]) -> [(id: Int32, logit: Float)] {
        values.enumerated().filter { $0.element > -Float.infinity }.map { (Int32($0.offset), $0.element) }
            .sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
    }

    /// Logits with many ties, negative and positive zeros, infinities and NaN.
    func logits(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in
            switch rng.next() % 20 {
            case 0: -Float.infinity
            case 1: .nan
            case 2: -0.0
            case 3: 0.0
            case 4: .infinity
            default: Float(Int(rng.next() % 64) - 32) / 4   // few distinct values: ties everywhere
            }
        }
    }

    @Test("the whole vocabulary in the defined order", arguments: [1, 7, 256, 49_152])
    func all(_ n: Int) {
        let values = logits(n, seed: UInt64(n))
        var out: [(id: Int32, logit: Float)] = [], keys: [(key: UInt32, id: Int32)] = [], buffer: [(key: UInt32, id: Int32)] = []
        values.withUnsafeBufferPointer { TokenRanking.all($0, into: &out, scratch: &keys, buffer: &buffer) }
        let expected = reference(values)
        #expect(out.map(\.id) == expected.map(\.id))
    }

    @Test("the top k in the defined order, for every k from 1 past the vocabulary", arguments: [1, 2, 40, 255, 300])
    func top(_ k: Int) {
        let values = logits(257, seed: 99 + UInt64(k))
        let got = values.withUnsafeBufferPointer { TokenRanking.top(k, of: $0) }
        #expect(got.map(\.id) == reference(values).prefix(k).map(\.id))
    }
}
