import ChatTemplates
import Foundation
import Kernels
import ModelFormats
import Models
import Tokenizers

/// A model ready to run: the mapped GGUF file, the network, its tokenizer and chat template.
/// Immutable and shareable; generation state lives in a ``Generator``.
public final class LoadedModel: Sendable {
    public let path: String
    public let file: GGUFFile
    public let network: any LanguageModel
    public let tokenizer: Tokenizer
    public let chatTemplate: ChatTemplate?
    /// Seconds spent loading.
    public let loadSeconds: Double

    /// Where the model came from: the path, or `hf:org/name@commit` (``ModelLoadOptions/sourceName``).
    public let source: String
    /// The type the float weights were quantized to at load time, if any.
    public let quantizedTo: GGMLType?

    /// Opens and validates a model: a GGUF file (or the first shard of a split one) or a Hugging
    /// Face folder (config.json, safetensors, tokenizer.json). Errors name the path and what is
    /// wrong with it.
    public init(path: String, options: ModelLoadOptions = ModelLoadOptions(), threads: Int = ThreadPool.defaultThreadCount) throws(EngineError) {
        let start = Date()
        var opened = try ModelSource.open(path: path)
        let folder = HFCheckpoint.isCheckpoint(directory: path)
        let precision = options.attention ?? (folder ? .f32 : .f16)
        if let type = options.quantize {
            opened = try ModelSource.quantized(opened, to: type, threads: threads)
        }
        if precision == .f32 {
            // What --quantize left in half precision (or everything, without it) computes in F32.
            opened = try ModelSource.widened(opened, threads: threads)
        }
        file = opened
        source = options.sourceName ?? path
        quantizedTo = options.quantize
        do {
            network = try ModelRegistry.load(file, attention: precision)
        } catch {
            let code: EngineError.Code = [.unsupportedArchitecture, .unsupportedTensorType].contains(error.code) ? .unsupportedModel : .invalidModelFile
            throw EngineError(code, "\(path): \(error.message)", cause: error)
        }
        do {
            tokenizer = try Tokenizer(gguf: file)
        } catch {
            throw EngineError(.tokenizer, "\(path): \(error.message)", cause: error)
        }
        if let source = try? file.optionalString("tokenizer.chat_template") {
            do {
                chatTemplate = try ChatTemplate(source)
            } catch {
                throw EngineError(.chatTemplate, "\(path): chat template does not parse: \(error.message)", cause: error)
            }
        } else {
            chatTemplate = nil
        }
        self.path = path
        loadSeconds = Date().timeIntervalSince(start)
    }

    /// Whether the model is a Hugging Face folder (safetensors) rather than a GGUF file.
    public var isCheckpointFolder: Bool { HFCheckpoint.isCheckpoint(directory: path) }

    /// A short name for the model: `general.name`, else the file name.
    public var name: String {
        (try? file.optionalString("general.name")) ?? URL(fileURLWithPath: path).lastPathComponent
    }

    /// Renders a conversation through the model's chat template (with the generation prompt).
    public func renderChat(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws(EngineError) -> String {
        guard let template = chatTemplate else {
            throw EngineError(.chatTemplate, "\(name) has no chat template (tokenizer.chat_template); use a raw prompt")
        }
        let bos = tokenizer.bosTokenID.map { tokenizer.tokenText($0) } ?? ""
        let eos = tokenizer.eosTokenID.map { tokenizer.tokenText($0) } ?? ""
        do {
            return try template.apply(messages: messages, addGenerationPrompt: addGenerationPrompt, bosToken: bos, eosToken: eos)
        } catch {
            throw EngineError(.chatTemplate, "chat template failed: \(error.message)", cause: error)
        }
    }

    /// Renders message dicts (tool calls, tool results) with the `tools` the template may list.
    public func renderChat(values: [TemplateValue], tools: [TemplateValue]?, addGenerationPrompt: Bool = true) throws(EngineError) -> String {
        guard let template = chatTemplate else {
            throw EngineError(.chatTemplate, "\(name) has no chat template (tokenizer.chat_template); use a raw prompt")
        }
        let bos = tokenizer.bosTokenID.map { tokenizer.tokenText($0) } ?? ""
        let eos = tokenizer.eosTokenID.map { tokenizer.tokenText($0) } ?? ""
        do {
            return try template.apply(messages: values, addGenerationPrompt: addGenerationPrompt, bosToken: bos, eosToken: eos,
                                      tools: tools, now: Date())
        } catch {
            throw EngineError(.chatTemplate, "chat template failed: \(error.message)", cause: error)
        }
    }

    /// ``chatTokens(_:addGenerationPrompt:limit:)`` for message dicts and tools: every string in
    /// them (contents, tool-call arguments, tool definitions) has its control-token text escaped.
    public func chatTokens(values: [TemplateValue], tools: [TemplateValue]?, addGenerationPrompt: Bool = true,
                           limit: Int = .max) throws(EngineError) -> [Int32] {
        let text = try renderChat(values: values.map(escaped), tools: tools?.map(escaped), addGenerationPrompt: addGenerationPrompt)
        var ids = tokenizer.encode(text, addSpecial: tokenizer.addBOS, parseSpecial: true, escapes: true, limit: limit)
        if ids.count >= 2, let bos = tokenizer.bosTokenID, ids[0] == bos, ids[1] == bos { ids.removeFirst() }
        return ids
    }

    private func escaped(_ value: TemplateValue) -> TemplateValue {
        switch value {
        case .string(let s): return .string(tokenizer.escapeControlTokens(s))
        case .array(let items): return .array(items.map(escaped))
        case .object(let o): return .object(OrderedObject(o.map { ($0.0, escaped($0.1)) }))
        default: return value
        }
    }

    /// Token ids of a chat conversation: the rendered template, BOS added per the vocabulary's
    /// flag unless the template already wrote it. Control tokens come only from the template's
    /// own text: control-token text inside a message's content is tokenized as plain text, so a
    /// user cannot forge a turn of another role. Stops early past `limit` tokens (see
    /// ``Tokenizer/encode(_:addSpecial:parseSpecial:escapes:limit:)``).
    public func chatTokens(_ messages: [ChatMessage], addGenerationPrompt: Bool = true, limit: Int = .max) throws(EngineError) -> [Int32] {
        let escaped = messages.map { ChatMessage(role: $0.role, content: tokenizer.escapeControlTokens($0.content)) }
        let text = try renderChat(escaped, addGenerationPrompt: addGenerationPrompt)
        var ids = tokenizer.encode(text, addSpecial: tokenizer.addBOS, parseSpecial: true, escapes: true, limit: limit)
        if ids.count >= 2, let bos = tokenizer.bosTokenID, ids[0] == bos, ids[1] == bos { ids.removeFirst() }
        return ids
    }

    /// Token ids of a raw prompt, BOS/EOS per the vocabulary. Control-token text is parsed only
    /// with `parseSpecial`; else it is plain text.
    public func rawTokens(_ text: String, parseSpecial: Bool = false, limit: Int = .max) -> [Int32] {
        tokenizer.encode(text, addSpecial: true, parseSpecial: parseSpecial, limit: limit)
    }
}
