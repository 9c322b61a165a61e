/// The sampling parameters a request ran with, as recorded in a ``LedgerRecord``.
///
/// Named fields cover what every OpenAI-style request carries; anything else (`min_p`,
/// `repeat_penalty`, `stop`, …) goes in ``extra`` as text, which is encoded in sorted key order.
public struct ModelParameters: Sendable, Hashable, Codable {
    /// Sampling temperature.
    public var temperature: Double?
    /// Nucleus sampling mass.
    public var topP: Double?
    /// Top-k cut-off.
    public var topK: Int64?
    /// The completion token limit.
    public var maxTokens: Int64?
    /// The sampler seed.
    public var seed: UInt64?
    /// Other parameters, by name, rendered as text by the caller.
    public var extra: [String: String]

    /// Creates a parameter set; every field defaults to absent.
    public init(
        temperature: Double? = nil, topP: Double? = nil, topK: Int64? = nil,
        maxTokens: Int64? = nil, seed: UInt64? = nil, extra: [String: String] = [:]
    ) {
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
        self.maxTokens = maxTokens
        self.seed = seed
        self.extra = extra
    }
}
