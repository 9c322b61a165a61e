import Foundation

/// The log-probability of one token, as reported to callers.
public struct TokenLogprob: Sendable, Equatable, Codable {
    public var token: Int32
    public var logprob: Float
    public init(token: Int32, logprob: Float) {
        self.token = token
        self.logprob = logprob
    }
}

/// Picks tokens from logits: logit bias → repetition/presence/frequency penalties → greedy, or
/// top-k → top-p → min-p → temperature → a seeded draw (llama.cpp's default chain order).
/// One sampler per sequence; it keeps the seeded generator and the penalty history. Scratch is
/// allocated once and reused, so sampling a token allocates nothing beyond the first call.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var rng: SeededGenerator
    private var history: [Int32] = []
    private var counts: [Int32: Int] = [:]
    private var candidates: [(id: Int32, logit: Float)] = []
    private var working: [Float] = []
    private var probabilities: [Double] = []
    private var sortKeys: [(key: UInt32, id: Int32)] = []
    private var sortBuffer: [(key: UInt32, id: Int32)] = []

    public init(parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SeededGenerator(seed: parameters.seed ?? UInt64.random(in: .min ... .max))
    }

    /// Adds tokens the penalties should see (the prompt, then each sampled token).
    public mutating func accept(_ tokens: some Sequence<Int32>) {
        for t in tokens { history.append(t) }
    }

    /// Chooses the next token from `logits` (one row, vocabulary-sized). When `topLogprobs` is
    /// non-nil, also returns the chosen token's log-probability and the `topLogprobs` most likely
    /// alternatives, from the model's distribution after bias and penalties (before truncation and
    /// temperature, as OpenAI reports them).
    ///
    /// With `allowed` (a grammar's token mask, one bit per token), every other token's logit is
    /// -infinity after bias and penalties: it can't be drawn and is never listed. The mask must
    /// allow at least one token. With `accept`, a chosen token it refuses is masked too and the
    /// choice made again, from the same distribution without it (after ``maxRejections`` refusals,
    /// without every token it refuses); if it refuses them all, the last choice stands.
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>, topLogprobs: Int? = nil, allowed: [UInt64]? = nil,
                                accept: ((Int32) -> Bool)? = nil)
        -> (token: Int32, logprob: TokenLogprob?, top: [TokenLogprob]) {
        let n = logits.count
        if working.count != n { working = [Float](repeating: 0, count: n) }
        working.withUnsafeMutableBufferPointer { w in
            for i in 0..<n { w[i] = logits[i] }
        }
        for (id, bias) in parameters.logitBias where id >= 0 && Int(id) < n { working[Int(id)] += bias }
        applyPenalties()
        if let allowed { applyMask(allowed) }
        var chosenLogprob: TokenLogprob?
        var top: [TokenLogprob] = []
        var token = choose()
        if let accept, !accept(token) {
            // Usually the next choice or so is accepted; when many are refused (say, every token
            // that goes on with a string), test every candidate once and choose among the rest.
            var rejections = 0
            repeat {
                let refused = (token, working[Int(token)])
                working[Int(token)] = -.infinity
                rejections += 1
                if rejections == Self.maxRejections {
                    for i in working.indices where working[i] > -.infinity && !accept(Int32(i)) { working[i] = -.infinity }
                }
                guard working.contains(where: { $0 > -.infinity }) else {
                    working[Int(refused.0)] = refused.1
                    break
                }
                token = choose()
            } while rejections < Self.maxRejections && !accept(token)
        }
        if let k = topLogprobs {
            let (lse, best) = logSumExpAndTop(k)
            chosenLogprob = TokenLogprob(token: token, logprob: working[Int(token)] - lse)
            top = best.filter { working[Int($0)] > -Float.infinity }.map { TokenLogprob(token: $0, logprob: working[Int($0)] - lse) }
        }
        history.append(token)
        return (token, chosenLogprob, top)
    }

    /// Choices an `accept` test may refuse one by one before every candidate is tested at once.
    public static let maxRejections = 16

    private mutating func choose() -> Int32 {
        parameters.temperature <= 0 ? argmax() : draw()
    }

    private mutating func applyMask(_ allowed: [UInt64]) {
        working.withUnsafeMutableBufferPointer { w in
            let n = w.count
            for word in 0..<min(allowed.count, (n + 63) / 64) {
                let bits = allowed[word]
                if bits == ~0 { continue }
                let base = word * 64
                for j in 0..<min(64, n - base) where bits & (1 << UInt64(j)) == 0 { w[base + j] = -.infinity }
            }
            for i in min(n, allowed.count * 64)..<n { w[i] = -.infinity }
        }
    }

    private mutating func applyPenalties() {
        let p = parameters
        guard p.repetitionPenalty != 1 || p.presencePenalty != 0 || p.frequencyPenalty != 0 else { return }
        let window = p.penaltyWindow < 0 ? history.count : min(p.penaltyWindow, history.count)
        guard window > 0 else { return }
        counts.removeAll(keepingCapacity: true)
        for t in history[(history.count - window)...] { counts[t, default: 0] += 1 }
        for (t, c) in counts where t >= 0 && Int(t) < working.count {
            var l = working[Int(t)]
            if p.repetitionPenalty != 1 { l = l > 0 ? l / p.repetitionPenalty : l * p.repetitionPenalty }
            l -= Float(c) * p.frequencyPenalty + p.presencePenalty
            working[Int(t)] = l
        }
    }

    private func argmax() -> Int32 {
        var best = 0
        var bestValue = -Float.infinity
        for (i, v) in working.enumerated() where v > bestValue {
            best = i
            bestValue = v
        }
        return Int32(best)
    }

    private mutating func draw() -> Int32 {
        let p = parameters
        selectCandidates(limit: p.topK > 0 ? p.topK : working.count)
        if candidates.isEmpty { return argmax() }
        if p.topP < 1 || p.minP > 0 {
            // Probabilities before temperature, for top-p and min-p.
            softmaxCandidates(temperature: 1)
            var keep = candidates.count
            if p.topP < 1 {
                var cumulative: Double = 0
                for i in 0..<keep {
                    cumulative += probabilities[i]
                    if cumulative >= Double(p.topP) { keep = i + 1; break }
                }
            }
            if p.minP > 0 {
                let threshold = probabilities[0] * Double(p.minP)
                keep = max(1, (0..<keep).first { probabilities[$0] < threshold } ?? keep)
            }
            candidates.removeSubrange(keep...)
        }
        softmaxCandidates(temperature: p.temperature)
        let u = rng.nextUnit()
        var cumulative: Double = 0
        for i in candidates.indices {
            cumulative += probabilities[i]
            if u < cumulative { return candidates[i].id }
        }
        return candidates[candidates.count - 1].id
    }

    /// The candidates' probabilities at `temperature`, into ``probabilities`` (reused; nothing
    /// allocated per token once it has grown).
    private mutating func softmaxCandidates(temperature: Float) {
        probabilities.removeAll(keepingCapacity: true)
        guard let m = candidates.lazy.map(\.logit).max() else { return }
        let t = Double(temperature)
        var s: Double = 0
        for c in candidates {
            let e = exp((Double(c.logit) - Double(m)) / t)
            probabilities.append(e)
            s += e
        }
        for i in probabilities.indices { probabilities[i] /= s }
    }

    private func logSumExpAndTop(_ k: Int) -> (Float, [Int32]) {
        var m = -Float.infinity
        for v in working where v > m { m = v }
        var s: Double = 0
        for v in working { s += exp(Double(v - m)) }
        let lse = m + Float(log(s))
        guard k > 0 else { return (lse, []) }
        return (lse, working.withUnsafeBufferPointer { TokenRanking.top(k, of: $0) }.map(\.id))
    }

    /// Fills `candidates` with the `limit` highest finite logits, best first (ties: lower id
    /// first): O(V log k) for a top-k, O(V) for the whole vocabulary, whatever k a request asks.
    private mutating func selectCandidates(limit: Int) {
        if limit >= working.count / 8 {
            working.withUnsafeBufferPointer { TokenRanking.all($0, into: &candidates, scratch: &sortKeys, buffer: &sortBuffer) }
            if candidates.count > limit { candidates.removeSubrange(limit...) }
        } else {
            candidates = working.withUnsafeBufferPointer { TokenRanking.top(limit, of: $0) }
        }
    }
}
