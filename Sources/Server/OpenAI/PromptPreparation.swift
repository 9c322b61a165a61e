import ChatTemplates
import Dispatch
import Engine

/// Turning a request's messages or text into prompt tokens, within the request limits and the
/// model's context, off Swift's cooperative pool: rendering a template and tokenizing a long
/// prompt cost milliseconds of CPU, which must not hold up the threads that every other request
/// and stream share.
enum PromptPreparation {
    private static let queue = DispatchQueue(label: "verity-prompt-preparation", attributes: .concurrent)

    /// Runs `work` on the preparation queue.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// A conversation's tokens through the model's chat template (control tokens only from the
    /// template's own text). Refuses, before any rendering, more messages or text than the limits
    /// allow; with `fitting`, also a prompt that leaves no room in the context.
    ///
    /// Tokenizing stops at twice the context: a prompt a little too long is refused with its
    /// exact length, an enormous one costs no more than twice the context.
    static func chat(_ messages: [ChatMessage], served: ServedModel, limits: RequestLimits,
                     addGenerationPrompt: Bool = true, fitting: Bool = true) async throws -> [Int32] {
        let bytes = messages.reduce(0) { $0 + $1.content.utf8.count }
        try checkText(bytes: bytes, limits: limits, param: "messages")
        let context = served.contextLength
        let limit = fitting ? budget(context) : .max
        let tokens = try await offPool { () throws -> [Int32] in
            do throws(EngineError) { return try served.model.chatTokens(messages, addGenerationPrompt: addGenerationPrompt, limit: limit) } catch {
                throw APIError.invalidRequest("The model's chat template could not render these messages: \(error.message)", param: "messages")
            }
        }
        if fitting { try checkFits(tokens, context: context, param: "messages") }
        return tokens
    }

    /// ``chat(_:served:limits:addGenerationPrompt:fitting:)`` for message dicts with tools
    /// (``ToolCalling``); `plain` is what the byte limit counts.
    static func chat(values: [TemplateValue], tools: [TemplateValue]?, plain: [ChatMessage], served: ServedModel,
                     limits: RequestLimits) async throws -> [Int32] {
        let bytes = plain.reduce(0) { $0 + $1.content.utf8.count }
        try checkText(bytes: bytes, limits: limits, param: "messages")
        let context = served.contextLength
        let limit = budget(context)
        let tokens = try await offPool { () throws -> [Int32] in
            do throws(EngineError) { return try served.model.chatTokens(values: values, tools: tools, limit: limit) } catch {
                throw APIError.invalidRequest("The model's chat template could not render these messages: \(error.message)", param: "messages")
            }
        }
        try checkFits(tokens, context: context, param: "messages")
        return tokens
    }

    /// How many tokens are counted before a prompt is known too long: twice the context.
    private static func budget(_ context: Int) -> Int { context.multipliedReportingOverflow(by: 2).overflow ? .max : 2 * context }

    /// A raw prompt's tokens (control-token text parsed only with `parseSpecial`), refused when
    /// beyond the limits or the context.
    static func text(_ text: String, parseSpecial: Bool, served: ServedModel, limits: RequestLimits,
                     param: String = "prompt") async throws -> [Int32] {
        try checkText(bytes: text.utf8.count, limits: limits, param: param)
        let context = served.contextLength
        let limit = budget(context)
        let tokens = try await offPool { served.model.rawTokens(text, parseSpecial: parseSpecial, limit: limit) }
        try checkFits(tokens, context: context, param: param)
        return tokens
    }

    private static func checkText(bytes: Int, limits: RequestLimits, param: String) throws(APIError) {
        guard bytes <= limits.maxTextBytes else {
            throw APIError.invalidRequest("The request's text has \(bytes) bytes; at most \(limits.maxTextBytes) are accepted.",
                                          param: param, code: "request_too_large")
        }
    }

    /// A prompt must leave room for at least one token; one that was cut short at the context
    /// is longer than it says.
    private static func checkFits(_ tokens: [Int32], context: Int, param: String) throws(APIError) {
        guard tokens.count < context else {
            throw APIError.contextLength(promptTokens: tokens.count, maxTokens: nil, context: context, param: param,
                                         atLeast: tokens.count > budget(context))
        }
    }
}
