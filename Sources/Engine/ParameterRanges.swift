/// The accepted range of every sampling and generation parameter, stated once: the HTTP API's
/// validation, the CLI's flags and the README read these.
///
/// The bounds on stop strings, logit biases and alternatives keep the per-token work of one
/// sequence bounded (stop matching, bias application and top-k selection run on the model's
/// scheduler thread, where every sequence waits for them).
public enum ParameterRanges {
    public static let temperature: ClosedRange<Double> = 0...2
    public static let topP: ClosedRange<Double> = 0...1
    public static let minP: ClosedRange<Double> = 0...1
    public static let presencePenalty: ClosedRange<Double> = -2...2
    public static let frequencyPenalty: ClosedRange<Double> = -2...2
    public static let repetitionPenalty: ClosedRange<Double> = 0.01...10
    public static let logitBias: ClosedRange<Double> = -100...100
    /// Alternatives reported per token with log-probabilities.
    public static let topLogprobs: ClosedRange<Int> = 0...20
    /// Stop strings per request, and UTF-8 bytes per stop string.
    public static let maxStopStrings = 16
    public static let maxStopBytes = 256
    /// Entries of a logit bias map.
    public static let maxLogitBiasEntries = 1024

    /// `value` if it is finite and within `range`; else an ``EngineError/Code/invalidParameter``
    /// naming `name` (the caller's spelling: `top_p` on the wire, `--top-p` on the CLI).
    public static func check(_ value: Double, _ range: ClosedRange<Double>, name: String) throws(EngineError) -> Double {
        guard value.isFinite, range.contains(value) else {
            throw EngineError(.invalidParameter, "\(name) must be between \(format(range.lowerBound)) and \(format(range.upperBound)); got \(value).",
                              parameter: name)
        }
        return value
    }

    /// `value` if it is within `range`; else an ``EngineError/Code/invalidParameter`` naming `name`.
    public static func check(_ value: Int, _ range: ClosedRange<Int>, name: String) throws(EngineError) -> Int {
        guard range.contains(value) else {
            throw EngineError(.invalidParameter, "\(name) must be between \(range.lowerBound) and \(range.upperBound); got \(value).",
                              parameter: name)
        }
        return value
    }

    /// Checks a list of stop strings against ``maxStopStrings`` and ``maxStopBytes``.
    public static func checkStop(_ stop: [String], name: String) throws(EngineError) {
        guard stop.count <= maxStopStrings else {
            throw EngineError(.invalidParameter, "\(name) takes at most \(maxStopStrings) strings; got \(stop.count).", parameter: name)
        }
        if let long = stop.first(where: { $0.utf8.count > maxStopBytes }) {
            throw EngineError(.invalidParameter, "Each \(name) string may have at most \(maxStopBytes) bytes; one has \(long.utf8.count).",
                              parameter: name)
        }
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

extension Duration {
    /// The duration in seconds (for flags and logs).
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
