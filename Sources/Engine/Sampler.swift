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
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>, topLogprobs: Int? = nil)
        -> (token: Int32, logprob: TokenLogprob?, top: [TokenLogprob]) {
        let n = logits.count
        if working.count != n { working = [Float](repeating: 0, count: n) }
        working.withUnsafeMutableBufferPointer { w in
            for i in 0..<n { w[i] = logits[i] }
        }
        for (id, bias) in parameters.logitBias where id >= 0 && Int(id) < n { working[Int(id)] += bias }
        applyPenalties()
        var chosenLogprob: TokenLogprob?
        var top: [TokenLogprob] = []
        let token: Int32
        if parameters.temperature <= 0 {
            token = argmax()
        } else {
            token = draw()
        }
        if let k = topLogprobs {
            let (lse, best) = logSumExpAndTop(k)
            chosenLogprob = TokenLogprob(token: token, logprob: working[Int(token)] - lse)
            top = best.map { TokenLogprob(token: $0, logprob: working[Int($0)] - lse) }
        }
        history.append(token)
        return (token, chosenLogprob, top)
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
