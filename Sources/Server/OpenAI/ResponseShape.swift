import Engine
import Node

/// The one place OpenAI's completion objects are built: the response, its stream chunks and the
/// usage chunk, for chat (`chat.completion`, `chat.completion.chunk`) and text completions
/// (`text_completion`).
struct ResponseShape: Sendable {
    enum Kind: Sendable {
        case chat, text

        var object: String { self == .chat ? "chat.completion" : "text_completion" }
        var chunkObject: String { self == .chat ? "chat.completion.chunk" : "text_completion" }
    }

    let kind: Kind
    /// The completion's id, which is also its ledger record id.
    let id: String
    let created: Int
    let model: String
    /// `stream_options.include_usage`: every chunk carries `"usage": null`, and a last chunk the usage.
    let includeUsage: Bool
    /// `system_fingerprint`: the engine's version and the model's digest, which together decide
    /// an answer (``fingerprint(digest:)``).
    let fingerprint: String

    /// The engine's version, as the fleet's adverts also name it.
    static let engineVersion = "verity/0.1"

    /// `verity/<version>+<first 16 hex digits of the model's SHA-256>`.
    static func fingerprint(digest: String) -> String {
        let hex = digest.hasPrefix("sha256:") ? digest.dropFirst("sha256:".count) : Substring(digest)
        return engineVersion + "+" + hex.prefix(16)
    }

    /// A stream chunk with these choices.
    func chunk(_ choices: [JSON]) -> JSON {
        var fields = header(kind.chunkObject) + [("choices", .array(choices))]
        if includeUsage { fields.append(("usage", nil)) }
        return .object(fields)
    }

    /// The stream's last chunk before `[DONE]`: no choices, the usage.
    func usageChunk(_ summary: GenerationSummary) -> JSON {
        .object(header(kind.chunkObject) + [("choices", []), ("usage", Self.usage(summary))])
    }

    /// The non-streaming response.
    func response(_ choices: [JSON], summary: GenerationSummary) -> JSON {
        .object(header(kind.object) + [("choices", .array(choices)), ("usage", Self.usage(summary))])
    }

    private func header(_ object: String) -> [(String, JSON)] {
        [("id", .string(id)), ("object", .string(object)), ("created", .int(created)), ("model", .string(model)),
         ("system_fingerprint", .string(fingerprint))]
    }

    static func usage(_ summary: GenerationSummary) -> JSON {
        ["prompt_tokens": .int(summary.promptTokens), "completion_tokens": .int(summary.completionTokens),
         "total_tokens": .int(summary.promptTokens + summary.completionTokens),
         "prompt_tokens_details": ["cached_tokens": .int(summary.cachedPromptTokens), "audio_tokens": 0],
         "completion_tokens_details": ["reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                       "rejected_prediction_tokens": 0]]
    }

    /// A choice that ends, with vLLM's `stop_reason` (the stop string that ended it) when one did:
    /// OpenAI's `finish_reason` says only `stop`. The Messages API's `stop_sequence` is read from it.
    static func stopReason(_ choice: JSON, _ summary: GenerationSummary) -> JSON {
        choice.setting("stop_reason", summary.stopString.map { .string($0) })
    }

    /// OpenAI has no reason for a generation the server cut short (shutdown): it reads as `length`.
    static func finishReason(_ reason: FinishReason) -> JSON {
        .string(reason == .stop ? "stop" : "length")
    }
}
