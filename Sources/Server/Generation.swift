import ChatTemplates
import Engine
import Foundation
import Tokenizers

/// Turning OpenAI request fields into engine parameters, and engine output into OpenAI's shapes.
enum Generation {
    /// Sampling defaults are OpenAI's (temperature 1, top_p 1, no top-k or min-p), not the CLI's.
    static func parameters(_ f: SamplingFields, promptTokens: Int, served: ServedModel, logprobs: Int?,
                           promptParam: String) throws(APIError) -> GenerationParameters {
        if let n = f.n, n != 1 {
            throw APIError.unsupported("n", "n = \(n) is not supported yet: one choice per request. Send \(n) requests (with different seeds) instead.")
        }
        var s = SamplingParameters()
        s.temperature = Float(try check(f.temperature ?? 1, "temperature", 0...2))
        s.topP = Float(try check(f.topP ?? 1, "top_p", 0...1))
        s.topK = f.topK.map { max(0, $0) } ?? 0
        if let k = f.topK, k < -1 { throw APIError.invalidRequest("top_k must be -1 (off), 0 (off) or positive; got \(k).", param: "top_k") }
        s.minP = Float(try check(f.minP ?? 0, "min_p", 0...1))
        s.presencePenalty = Float(try check(f.presencePenalty ?? 0, "presence_penalty", -2...2))
        s.frequencyPenalty = Float(try check(f.frequencyPenalty ?? 0, "frequency_penalty", -2...2))
        s.repetitionPenalty = Float(try check(f.repetitionPenalty ?? 1, "repetition_penalty", 0.01...10))
        s.seed = f.seed.map { UInt64(bitPattern: $0) }
        let vocab = served.model.tokenizer.vocabularySize
        for (key, value) in f.logitBias ?? [:] {
            guard let id = Int32(key), id >= 0, Int(id) < vocab else {
                throw APIError.invalidRequest("logit_bias keys must be token ids in 0..<\(vocab); got '\(key)'.", param: "logit_bias")
            }
            s.logitBias[id] = Float(try check(value, "logit_bias", -100...100))
        }
        var p = GenerationParameters()
        p.sampling = s
        p.stop = f.stop?.values ?? []
        if p.stop.count > 16 { throw APIError.invalidRequest("stop takes at most 16 strings; got \(p.stop.count).", param: "stop") }
        p.logprobs = logprobs
        let context = served.contextLength
        let requested = f.maxCompletionTokens ?? f.maxTokens
        let param = f.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens"
        if let requested, requested < 0 { throw APIError.invalidRequest("\(param) must not be negative; got \(requested).", param: param) }
        if promptTokens >= context || promptTokens + (requested ?? 0) > context {
            throw APIError.contextLength(promptTokens: promptTokens, maxTokens: requested, context: context, param: promptParam)
        }
        p.maxTokens = requested ?? (context - promptTokens)
        return p
    }

    private static func check(_ value: Double, _ param: String, _ range: ClosedRange<Double>) throws(APIError) -> Double {
        guard value.isFinite, range.contains(value) else {
            throw APIError.invalidRequest("\(param) must be between \(range.lowerBound) and \(range.upperBound); got \(value).", param: param)
        }
        return value
    }

    /// The conversation as template messages. Refuses content we can't read (images, audio).
    static func messages(_ messages: [ChatCompletionRequest.Message]) throws(APIError) -> [ChatMessage] {
        guard !messages.isEmpty else { throw APIError.invalidRequest("messages must not be empty.", param: "messages") }
        var out: [ChatMessage] = []
        for (i, m) in messages.enumerated() {
            let roles = ["system", "developer", "user", "assistant", "tool", "function"]
            guard roles.contains(m.role) else {
                throw APIError.invalidRequest("Invalid role '\(m.role)'; expected one of \(roles.joined(separator: ", ")).", param: "messages[\(i)].role")
            }
            if let calls = m.toolCalls, !calls.isEmptyOrNull {
                throw APIError.unsupported("messages[\(i)].tool_calls", "Tool calls are not supported yet.")
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
        if let tools = request.tools, !tools.isEmptyOrNull {
            throw APIError.unsupported("tools", "Tool calling is not supported yet; send the request without 'tools'.")
        }
        if let functions = request.functions, !functions.isEmptyOrNull {
            throw APIError.unsupported("functions", "Function calling is not supported yet; send the request without 'functions'.")
        }
        if let format = request.responseFormat, format.type != "text" {
            throw APIError.unsupported("response_format", "response_format '\(format.type)' (structured output) is not supported yet; only 'text'.")
        }
        if let top = request.topLogprobs {
            guard (0...20).contains(top) else { throw APIError.invalidRequest("top_logprobs must be between 0 and 20; got \(top).", param: "top_logprobs") }
            guard request.logprobs == true else { throw APIError.invalidRequest("top_logprobs requires logprobs to be true.", param: "top_logprobs") }
        }
    }

    // MARK: Output shapes

    static func tokenText(_ tokenizer: Tokenizer, _ id: Int32) -> (String, [UInt8]) {
        let bytes = tokenizer.pieceBytes(id)
        return (String(decoding: bytes, as: UTF8.self), bytes)
    }

    static func logprob(_ value: Float) -> JSON { .float(value.isFinite ? value : -9999) }

    /// One entry of a chat `logprobs.content` array.
    static func chatLogprob(_ tokenizer: Tokenizer, _ chosen: TokenLogprob, top: [TokenLogprob]) -> JSON {
        func entry(_ t: TokenLogprob) -> [(String, JSON)] {
            let (text, bytes) = tokenText(tokenizer, t.token)
            return [("token", .string(text)), ("logprob", logprob(t.logprob)), ("bytes", .array(bytes.map { .int(Int($0)) }))]
        }
        return .object(entry(chosen) + [("top_logprobs", .array(top.map { .object(entry($0)) }))])
    }

    static func usage(_ summary: BatchScheduler.Summary) -> JSON {
        ["prompt_tokens": .int(summary.promptTokens), "completion_tokens": .int(summary.completionTokens),
         "total_tokens": .int(summary.promptTokens + summary.completionTokens),
         "prompt_tokens_details": ["cached_tokens": .int(summary.cachedPromptTokens)]]
    }

    /// OpenAI has no reason for a generation the server cut short (shutdown): it reads as `length`.
    static func finishReason(_ reason: FinishReason) -> JSON {
        .string(reason == .stop ? "stop" : "length")
    }

    static func newID(_ prefix: String) -> String {
        prefix + "-" + (0..<24).map { _ in String("0123456789abcdefghijklmnopqrstuvwxyz".randomElement()!) }.joined()
    }
}
