import Engine
import Foundation
import Testing

@Suite("Sampling")
struct SamplerTests {
    static let logits: [Float] = [1.0, 3.0, 2.5, -1.0, 0.5, 2.9, -4.0, 0.0]

    func sample(_ p: SamplingParameters, _ logits: [Float] = logits, times: Int = 1, history: [Int32] = []) -> [Int32] {
        var sampler = Sampler(parameters: p)
        sampler.accept(history)
        return (0..<times).map { _ in logits.withUnsafeBufferPointer { sampler.sample($0).token } }
    }

    @Test("temperature 0 is greedy")
    func greedy() {
        #expect(sample(.greedy, times: 5) == [1, 1, 1, 1, 1])
    }

    @Test("the same seed gives the same tokens; another seed differs")
    func seeded() {
        var p = SamplingParameters()
        p.temperature = 1.5
        p.topK = 0
        p.topP = 1
        p.minP = 0
        p.seed = 1234
        let a = sample(p, times: 50), b = sample(p, times: 50)
        p.seed = 99
        let c = sample(p, times: 50)
        #expect(a == b)
        #expect(a != c)
    }

    @Test("top-k 1 is greedy at any temperature")
    func topK1() {
        var p = SamplingParameters()
        p.temperature = 5
        p.topK = 1
        p.seed = 3
        #expect(Set(sample(p, times: 40)) == [1])
    }

    @Test("top-k, top-p and min-p keep only the head of the distribution")
    func truncation() {
        var p = SamplingParameters()
        p.temperature = 3
        p.seed = 11
        p.topK = 3
        p.topP = 1
        p.minP = 0
        #expect(Set(sample(p, times: 300)).isSubset(of: [1, 5, 2]))
        p.topK = 0
        p.topP = 0.5
        #expect(Set(sample(p, times: 300)).isSubset(of: [1, 5]))
        p.topP = 1
        p.minP = 0.5   // p(x) ≥ 0.5 · p(top): logits within ln 2 of the top
        #expect(Set(sample(p, times: 300)) == [1, 5, 2])
    }

    @Test("logit bias can force or ban a token")
    func logitBias() {
        var p = SamplingParameters.greedy
        p.logitBias = [6: 100]
        #expect(sample(p) == [6])
        p.logitBias = [1: -100, 5: -100]
        #expect(sample(p) == [2])
    }

    @Test("repetition, presence and frequency penalties push seen tokens down")
    func penalties() {
        var p = SamplingParameters.greedy
        p.repetitionPenalty = 2     // 3.0 → 1.5: token 5 (2.9) wins
        #expect(sample(p, history: [1]) == [5])
        p.repetitionPenalty = 1
        p.presencePenalty = 0.2     // 3.0 → 2.8
        #expect(sample(p, history: [1, 1, 1]) == [5])
        p.presencePenalty = 0
        p.frequencyPenalty = 0.2    // 3.0 - 3·0.2 = 2.4 < 2.5
        #expect(sample(p, history: [1, 1, 1]) == [5])
        p.penaltyWindow = 1         // only the last token counts
        #expect(sample(p, history: [1, 1, 3]) == [1])
    }

    @Test("log-probabilities: chosen token and top alternatives, normalised")
    func logprobs() {
        var sampler = Sampler(parameters: .greedy)
        let result = Self.logits.withUnsafeBufferPointer { sampler.sample($0, topLogprobs: 3) }
        let m = Double(Self.logits.max()!)
        let lse = m + log(Self.logits.reduce(0.0) { $0 + exp(Double($1) - m) })
        #expect(result.logprob?.token == 1)
        #expect(abs(Double(result.logprob!.logprob) - (3.0 - lse)) < 1e-5)
        #expect(result.top.map(\.token) == [1, 5, 2])
        #expect(result.top.map(\.logprob) == result.top.map(\.logprob).sorted(by: >))
    }
}
