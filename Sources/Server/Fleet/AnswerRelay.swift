import Foundation
import Node

/// Relays another server's OpenAI answer to a client, as this server's: each chunk (or the whole
/// response) gets this server's completion id; the worker's signed `verity_usage` statement is
/// taken out (it goes into this server's record instead); the text, finish reason and usage are
/// collected for the record. Chunks pass through as they come (streaming is unbuffered), except
/// the one that carries the statement: it is the worker's last, and is held until the answer is
/// recorded, so that the record's `verity` stub can ride on it.
struct AnswerRelay {
    /// This server's completion id, which replaces the upstream's.
    let id: String
    /// What the client sees as the model's id.
    let model: String

    /// Each choice's text (by its index), and finish reason.
    private var texts: [Int: String] = [:]
    private var finishReasons: [Int: String] = [:]
    private(set) var usage: JSON?
    /// The upstream's `verity_usage` (a signed usage statement), when it sent one.
    private(set) var usageStatement: JSON?
    private(set) var done = false
    private(set) var chunks = 0
    private var held: JSON?

    /// How many choices the answer has (`n`).
    var choices: Int { max(texts.keys.max() ?? 0, finishReasons.keys.max() ?? 0) + 1 }

    /// The answer as the worker recorded it: the text; with several choices, a JSON array of
    /// theirs (as ``CompletionResponder`` records them).
    var text: String {
        choices == 1 ? texts[0] ?? "" : JSON.array((0..<choices).map { .string(texts[$0] ?? "") }).serialized()
    }

    /// The finish reason; with several choices that ended differently, `length` if any did.
    var finishReason: String? {
        let reasons = (0..<choices).compactMap { finishReasons[$0] }
        guard let first = reasons.first else { return nil }
        return reasons.allSatisfy { $0 == first } ? first : reasons.contains("length") ? "length" : "stop"
    }

    /// Each choice's finish reason, in order (for the record of an answer with several).
    var choiceFinishReasons: [String] { (0..<choices).map { finishReasons[$0] ?? "" } }

    init(id: String, model: String) {
        self.id = id
        self.model = model
    }

    /// One upstream stream event; returns the chunks to send now.
    /// - Throws: ``JSON/ParseError`` for an event that is not JSON (nor `[DONE]`).
    mutating func accept(event payload: String) throws -> [JSON] {
        if payload.trimmingCharacters(in: .whitespaces) == "[DONE]" {
            done = true
            return []
        }
        var chunk = try JSON.parse(Data(payload.utf8))
        if let error = chunk["error"] {
            // An upstream's error event ends the answer as it is.
            return [JSON.object([("error", error)])]
        }
        chunks += 1
        let carriesStatement = chunk["verity_usage"] != nil
        chunk = take(chunk)
        guard carriesStatement else { return [chunk] }
        held = chunk
        return []
    }

    /// The held-back chunk that carried the statement, with `field` added (the record's stub);
    /// nil if no chunk carried one.
    mutating func finish(adding field: (key: String, value: JSON)?) -> JSON? {
        defer { held = nil }
        guard let last = held else { return nil }
        return field.map { last.setting($0.key, $0.value) } ?? last
    }

    /// A whole (non-streaming) upstream response, as this server's.
    mutating func accept(response body: Data) throws -> JSON {
        done = true
        return take(try JSON.parse(body))
    }

    /// Collects what the record needs from a chunk or response, and rewrites it as this server's.
    private mutating func take(_ value: JSON) -> JSON {
        for choice in value["choices"]?.arrayValue ?? [] {
            let index = max(0, min(choice["index"]?.intValue ?? 0, RequestValidation.maxChoices - 1))
            var text = texts[index] ?? ""
            defer { texts[index] = text }
            if let delta = choice["delta"], let content = delta["content"]?.stringValue { text += content }
            if let message = choice["message"], let content = message["content"]?.stringValue { text += content }
            if let piece = choice["text"]?.stringValue { text += piece }
            // Tool calls go into the record's response as the worker recorded them: after the
            // content, each call's JSON on a line of its own (ChatFormat.recordedResponse).
            for calls in [choice["delta"]?["tool_calls"], choice["message"]?["tool_calls"]] {
                for call in calls?.arrayValue ?? [] {
                    let item: JSON = ["id": call["id"] ?? .null, "type": call["type"] ?? .null,
                                      "function": ["name": call["function"]?["name"] ?? .null, "arguments": call["function"]?["arguments"] ?? .null]]
                    text += (text.isEmpty ? "" : "\n") + item.serialized()
                }
            }
            if let reason = choice["finish_reason"]?.stringValue { finishReasons[index] = reason }
        }
        if let found = value["usage"], found != .null { usage = found }
        if let statement = value["verity_usage"] { usageStatement = statement }
        return value.setting("id", .string(id)).setting("model", .string(model)).setting("verity_usage", nil)
    }
}
