import Foundation

/// Request bodies of the OpenAI endpoints. Unknown fields are ignored, as OpenAI does; a field of
/// the wrong type is an error naming it (see ``decodeRequest(_:from:)``).

/// Any JSON value, decoded only to learn that it is there (for fields we refuse, like `tools`).
struct AnyValue: Decodable {
    enum Kind { case null, scalar, array(Int), object }
    let kind: Kind

    init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            var n = 0
            while !array.isAtEnd { _ = try array.decode(AnyValue.self); n += 1 }
            kind = .array(n)
        } else if (try? decoder.container(keyedBy: AnyKey.self)) != nil {
            kind = .object
        } else {
            let single = try decoder.singleValueContainer()
            kind = single.decodeNil() ? .null : .scalar
        }
    }

    var isEmptyOrNull: Bool {
        switch kind {
        case .null: return true
        case .array(let n): return n == 0
        default: return false
        }
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A string or an array of strings (`stop`).
enum StringOrArray: Decodable {
    case one(String)
    case many([String])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .one(s); return }
        if let a = try? c.decode([String].self) { self = .many(a); return }
        throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath, debugDescription: "expected a string or an array of strings"))
    }

    var values: [String] {
        switch self {
        case .one(let s): return [s]
        case .many(let a): return a
        }
    }
}

/// The sampling and length fields both completion endpoints share.
struct SamplingFields: Decodable {
    var temperature: Double?
    var topP: Double?
    var topK: Int?
    var minP: Double?
    var presencePenalty: Double?
    var frequencyPenalty: Double?
    var repetitionPenalty: Double?
    var seed: Int64?
    var stop: StringOrArray?
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var logitBias: [String: Double]?
    var user: String?
    var n: Int?
    var stream: Bool?
    var streamOptions: StreamOptions?

    struct StreamOptions: Decodable {
        var includeUsage: Bool?
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }

    enum CodingKeys: String, CodingKey {
        case temperature, topP = "top_p", topK = "top_k", minP = "min_p", presencePenalty = "presence_penalty"
        case frequencyPenalty = "frequency_penalty", repetitionPenalty = "repetition_penalty", seed, stop
        case maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", logitBias = "logit_bias", user, n
        case stream, streamOptions = "stream_options"
    }
}

struct ChatCompletionRequest: Decodable {
    /// Empty when the request names none: the server's default (first) model.
    var model: String
    var messages: [Message]
    var sampling: SamplingFields
    var logprobs: Bool?
    var topLogprobs: Int?
    var tools: AnyValue?
    var functions: AnyValue?
    var responseFormat: ResponseFormat?
    /// Decoded (and so type-checked) even without tools, which are what it applies to.
    var parallelToolCalls: Bool?

    struct Message: Decodable {
        var role: String
        var content: Content?
        var toolCalls: AnyValue?

        enum CodingKeys: String, CodingKey { case role, content, toolCalls = "tool_calls" }
    }

    /// A message's content: a string or an array of parts.
    enum Content: Decodable {
        case text(String)
        case parts([Part])

        struct Part: Decodable {
            var type: String
            var text: String?
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .text(s); return }
            if let parts = try? c.decode([Part].self) { self = .parts(parts); return }
            throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath, debugDescription: "expected a string or an array of content parts"))
        }
    }

    struct ResponseFormat: Decodable {
        var type: String
    }

    enum CodingKeys: String, CodingKey {
        case model, messages, logprobs, topLogprobs = "top_logprobs", tools, functions, responseFormat = "response_format"
        case parallelToolCalls = "parallel_tool_calls"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(String.self, forKey: .model) ?? ""
        messages = try c.decode([Message].self, forKey: .messages)
        logprobs = try c.decodeIfPresent(Bool.self, forKey: .logprobs)
        topLogprobs = try c.decodeIfPresent(Int.self, forKey: .topLogprobs)
        tools = try c.decodeIfPresent(AnyValue.self, forKey: .tools)
        functions = try c.decodeIfPresent(AnyValue.self, forKey: .functions)
        responseFormat = try c.decodeIfPresent(ResponseFormat.self, forKey: .responseFormat)
        parallelToolCalls = try c.decodeIfPresent(Bool.self, forKey: .parallelToolCalls)
        sampling = try SamplingFields(from: decoder)
    }
}

struct CompletionRequest: Decodable {
    /// Empty when the request names none: the server's default (first) model.
    var model: String
    var prompt: Prompt
    var sampling: SamplingFields
    var logprobs: Int?
    var echo: Bool?
    var suffix: String?
    var bestOf: Int?
    /// Verity's extension: tokenize control-token text in the prompt (`<|im_start|>`) as control
    /// tokens; by default it is plain text.
    var parseSpecial: Bool?

    /// A string, an array of strings, an array of token ids or an array of such arrays.
    enum Prompt: Decodable {
        case texts([String])
        case tokens([[Int32]])

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .texts([s]); return }
            if let a = try? c.decode([String].self) { self = .texts(a); return }
            if let t = try? c.decode([Int32].self) { self = .tokens([t]); return }
            if let t = try? c.decode([[Int32]].self) { self = .tokens(t); return }
            throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath, debugDescription: "expected a string, an array of strings or an array of token ids"))
        }

        var count: Int {
            switch self {
            case .texts(let a): return a.count
            case .tokens(let a): return a.count
            }
        }
    }

    enum CodingKeys: String, CodingKey { case model, prompt, logprobs, echo, suffix, bestOf = "best_of", parseSpecial = "parse_special" }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(String.self, forKey: .model) ?? ""
        prompt = try c.decode(Prompt.self, forKey: .prompt)
        logprobs = try c.decodeIfPresent(Int.self, forKey: .logprobs)
        echo = try c.decodeIfPresent(Bool.self, forKey: .echo)
        suffix = try c.decodeIfPresent(String.self, forKey: .suffix)
        bestOf = try c.decodeIfPresent(Int.self, forKey: .bestOf)
        parseSpecial = try c.decodeIfPresent(Bool.self, forKey: .parseSpecial)
        sampling = try SamplingFields(from: decoder)
    }
}

struct TokenizeRequest: Decodable {
    var model: String
    var prompt: String?
    var messages: [ChatCompletionRequest.Message]?
    var addSpecialTokens: Bool?
    var addGenerationPrompt: Bool?
    /// As in ``CompletionRequest/parseSpecial``, for `prompt`.
    var parseSpecial: Bool?

    enum CodingKeys: String, CodingKey {
        case model, prompt, messages, addSpecialTokens = "add_special_tokens", addGenerationPrompt = "add_generation_prompt"
        case parseSpecial = "parse_special"
    }
}

struct DetokenizeRequest: Decodable {
    var model: String
    var tokens: [Int32]
}

