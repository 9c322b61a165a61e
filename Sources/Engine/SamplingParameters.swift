/// How the next token is chosen from a distribution. Defaults follow llama.cpp's.
/// A temperature of 0 (or below) means greedy: always the most likely token.
public struct SamplingParameters: Sendable, Equatable, Codable {
    public var temperature: Float = 0.8
    /// Keep the k most likely tokens (0: all).
    public var topK: Int = 40
    /// Keep the smallest set whose probability reaches p (1: all).
    public var topP: Float = 0.95
    /// Drop tokens whose probability is below minP × the top probability (0: none).
    public var minP: Float = 0.05
    /// Divides positive logits (multiplies negative ones) of tokens seen in the last `penaltyWindow`.
    public var repetitionPenalty: Float = 1
    /// Subtracted once from the logit of every token seen.
    public var presencePenalty: Float = 0
    /// Subtracted from a token's logit per occurrence.
    public var frequencyPenalty: Float = 0
    /// How many recent tokens the penalties look at (prompt included; -1: all).
    public var penaltyWindow: Int = 64
    /// Added to the logit of the given token ids (-100 effectively bans, +100 forces).
    public var logitBias: [Int32: Float] = [:]
    /// Seed of the random generator: the same seed, prompt and parameters give the same output.
    /// nil picks a random seed.
    public var seed: UInt64? = nil

    public init() {}

    /// Greedy decoding.
    public static var greedy: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = 0
        return p
    }
}
