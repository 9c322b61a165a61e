import ChatTemplates
import Engine
import Foundation

/// Turning OpenAI request fields into engine parameters, refusing what is out of range or not
/// supported with a 400 that names the field. The ranges are the engine's (``ParameterRanges``).
enum RequestValidation {
    /// Sampling defaults are OpenAI's (temperature 1, top_p 1, no top-k or min-p), not the CLI's.
    /// `maxTokens` defaults to `defaultMaxTokens`, never more than the context leaves.
    static func parameters(_ f: SamplingFields, promptTokens: Int, served: ServedModel, logprobs: Int?,
                           promptParam: String, defaultMaxTokens: Int) throws(APIError) -> GenerationParameters {
        _ = try choices(f)
        var p: GenerationParameters
        do { p = try engineParameters(f, vocabulary: served.model.tokenizer.vocabularySize) } catch { throw APIError.invalidParameter(error) }
        p.logprobs = logprobs
        p.maxTokens = try maxTokens(f, promptTokens: promptTokens, context: served.contextLength, promptParam: promptParam,
                                    defaultMaxTokens: defaultMaxTokens)
        return p
    }

    /// The most choices (`n`) one request may ask for.
    static let maxChoices = 16

    /// `n`: how many choices (1 by default, at most ``maxChoices``).
    static func choices(_ f: SamplingFields) throws(APIError) -> Int {
        guard let n = f.n else { return 1 }
        guard (1...maxChoices).contains(n) else {
            throw APIError.invalidRequest("n must be between 1 and \(maxChoices); got \(n).", param: "n")
        }
        return n
    }

    /// Each choice's parameters: the request's, and with a `seed`, choice i samples with seed + i
    /// (so a seeded request with `n` choices repeats exactly, and its first choice is the answer
    /// the same request with `n` = 1 gets). Without one, each choice draws its own.
    static func perChoice(_ p: GenerationParameters, n: Int) -> [GenerationParameters] {
        (0..<n).map { i in
            var q = p
            q.sampling.seed = p.sampling.seed.map { $0 &+ UInt64(i) }
            return q
        }
    }

    private static func engineParameters(_ f: SamplingFields, vocabulary: Int) throws(EngineError) -> GenerationParameters {
        var s = SamplingParameters()
        s.temperature = Float(try ParameterRanges.check(f.temperature ?? 1, ParameterRanges.temperature, name: "temperature"))
        s.topP = Float(try ParameterRanges.check(f.topP ?? 1, ParameterRanges.topP, name: "top_p"))
        if let k = f.topK, k < -1 || k > vocabulary {
            throw EngineError(.invalidParameter, "top_k must be -1 or 0 (off), or at most the vocabulary's \(vocabulary) tokens; got \(k).",
                              parameter: "top_k")
        }
        s.topK = max(0, f.topK ?? 0)
        s.minP = Float(try ParameterRanges.check(f.minP ?? 0, ParameterRanges.minP, name: "min_p"))
        s.presencePenalty = Float(try ParameterRanges.check(f.presencePenalty ?? 0, ParameterRanges.presencePenalty, name: "presence_penalty"))
        s.frequencyPenalty = Float(try ParameterRanges.check(f.frequencyPenalty ?? 0, ParameterRanges.frequencyPenalty, name: "frequency_penalty"))
        s.repetitionPenalty = Float(try ParameterRanges.check(f.repetitionPenalty ?? 1, ParameterRanges.repetitionPenalty,
                                                              name: "repetition_penalty"))
        s.seed = f.seed.map { UInt64(bitPattern: $0) }
        s.logitBias = try logitBias(f.logitBias ?? [:], vocabulary: vocabulary)
        var p = GenerationParameters()
        p.sampling = s
        p.stop = f.stop?.values ?? []
        try ParameterRanges.checkStop(p.stop, name: "stop")
        return p
    }

    private static func logitBias(_ bias: [String: Double], vocabulary: Int) throws(EngineError) -> [Int32: Float] {
        guard bias.count <= ParameterRanges.maxLogitBiasEntries else {
            throw EngineError(.invalidParameter, "logit_bias takes at most \(ParameterRanges.maxLogitBiasEntries) entries; got \(bias.count).",
                              parameter: "logit_bias")
        }
        var out: [Int32: Float] = [:]
        for (key, value) in bias {
            guard let id = Int32(key), id >= 0, Int(id) < vocabulary else {
                throw EngineError(.invalidParameter, "logit_bias keys must be token ids in 0..<\(vocabulary); got '\(key)'.",
                                  parameter: "logit_bias")
            }
            out[id] = Float(try ParameterRanges.check(value, ParameterRanges.logitBias, name: "logit_bias"))
        }
        return out
    }

    /// The completion's length: what the request asks (`max_completion_tokens`, else
    /// `max_tokens`), else the default, and never beyond the context.
    private static func maxTokens(_ f: SamplingFields, promptTokens: Int, context: Int, promptParam: String,
                                  defaultMaxTokens: Int) throws(APIError) -> Int {
        let requested = f.maxCompletionTokens ?? f.maxTokens
        let param = f.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens"
        if let requested, requested < 0 {
            throw APIError.invalidRequest("\(param) must not be negative; got \(requested).", param: param)
        }
        let room = context - promptTokens
        if room <= 0 || (requested.map { $0 > room } ?? false) {
            // A length beyond the whole context is the length's fault; else the prompt's.
            let culprit = (requested.map { $0 > context } ?? false) ? param : promptParam
            throw APIError.contextLength(promptTokens: promptTokens, maxTokens: requested, context: context, param: culprit)
        }
        return requested ?? min(defaultMaxTokens, room)
    }

    /// The conversation as template messages. Refuses more than `limit` messages, and content we
    /// can't read (images, audio).
    static func messages(_ messages: [ChatCompletionRequest.Message], limit: Int) throws(APIError) -> [ChatMessage] {
        guard !messages.isEmpty else { throw APIError.invalidRequest("messages must not be empty.", param: "messages") }
        guard messages.count <= limit else {
            throw APIError.invalidRequest("A request may have at most \(limit) messages; this one has \(messages.count).", param: "messages")
        }
        var out: [ChatMessage] = []
        for (i, m) in messages.enumerated() {
            let roles = ["system", "developer", "user", "assistant", "tool", "function"]
            guard roles.contains(m.role) else {
                throw APIError.invalidRequest("Invalid role '\(m.role)'; expected one of \(roles.joined(separator: ", ")).", param: "messages[\(i)].role")
            }
            var text = ""
            switch m.content {
            case .text(let s): text = s
            case .parts(let parts):
                for (j, part) in parts.enumerated() {
                    guard part.type == "text", let t = part.text else {
                        throw APIError.unsupported("messages[\(i)].content[\(j)]", "Content parts of type '\(part.type)' are not supported; this server reads text only.")
                    }
                    text += t
                }
            case nil: text = ""
            }
            out.append(ChatMessage(role: m.role == "developer" ? "system" : m.role, content: text))
        }
        return out
    }

    /// Rejects fields we accept but can't honour yet, rather than ignoring them.
    static func checkSupported(_ request: ChatCompletionRequest) throws(APIError) {
        if let functions = request.functions, !functions.isEmptyOrNull {
            throw APIError.unsupported("functions", "Function calling is not supported yet; send the request without 'functions'.")
        }
        if let top = request.topLogprobs {
            do { _ = try ParameterRanges.check(top, ParameterRanges.topLogprobs, name: "top_logprobs") } catch { throw APIError.invalidParameter(error) }
            guard request.logprobs == true else { throw APIError.invalidRequest("top_logprobs requires logprobs to be true.", param: "top_logprobs") }
        }
    }

    /// A new completion id (`chatcmpl-…`, `cmpl-…`): 24 random base-36 characters.
    static func newID(_ prefix: String) -> String {
        prefix + "-" + (0..<24).map { _ in String("0123456789abcdefghijklmnopqrstuvwxyz".randomElement()!) }.joined()
    }
}
