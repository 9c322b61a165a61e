import ChatTemplates
import Crypto
import Engine
import Foundation
import Ledger
import Node

/// Which model answered, as the ledger names it: its id, the digest of its weights, and the hash
/// of the chat template that rendered the conversation (if one did).
struct ModelIdentity: Sendable, Hashable {
    var id: String
    var digest: String
    var chatTemplateHash: String?
    /// Where the weights came from when not a plain file (`hf:org/name@commit`, `+ quantized to
    /// Q4_K at load`), recorded as the parameter `model_source`.
    var source: String? = nil
    /// The LoRA adapter that ran on the model, if any.
    var adapter: AdapterIdentity? = nil

    /// The adapter's parameters of a record: `adapter_name`, `adapter_digest`, `adapter_scale`,
    /// and `model_source`.
    func record(into parameters: inout ModelParameters) {
        if let source { parameters.extra["model_source"] = source }
        if let adapter {
            parameters.extra["adapter_name"] = adapter.name
            parameters.extra["adapter_digest"] = adapter.digest
            parameters.extra["adapter_scale"] = "\(adapter.scale)"
        }
    }
}

/// A LoRA adapter as the ledger names it: its name, the digest of its files, and the user's scale.
struct AdapterIdentity: Sendable, Hashable {
    var name: String
    var digest: String
    var scale: Float
}

/// What the ledger records about one request, gathered when it is accepted; the response, token
/// counts and finish reason complete it into a ``LedgerRecord`` (``record(response:promptTokens:completionTokens:finishReason:worker:)``).
struct Interaction: Sendable {
    /// The record id: the completion's id (`chatcmpl-…`, `cmpl-…`), which the client sees.
    var recordID: String
    var caller: Caller
    var timestampMilliseconds: Int64
    var modelID: String
    var modelDigest: String
    var chatTemplateHash: String?
    var parameters: ModelParameters
    var systemPrompt: String?
    var prompt: String
    /// SHA-256 of the request body as received (a worker's usage statement states it, so the
    /// gateway that sent those bytes can check it).
    var bodyDigest = Data()
    /// On a worker: the hash of the advert its gateway routed the job by (`Verity-Advert`), which
    /// the usage statement names.
    var routedAdvert: Data?

    /// A chat request: the system prompt is the system (and developer) messages' text, joined by
    /// a blank line; the prompt is the user's text when the conversation is one user message,
    /// else the other messages as a JSON array of `{"role", "content"}`.
    static func chat(id: String, caller: Caller, model: ModelIdentity, messages: [ChatMessage], fields: SamplingFields,
                     maxTokens: Int?) -> Interaction {
        let system = messages.filter { $0.role == "system" }.map(\.content)
        let rest = messages.filter { $0.role != "system" }
        let prompt = rest.count == 1 && rest[0].role == "user" ? rest[0].content
            : JSON.array(rest.map { ["role": .string($0.role), "content": .string($0.content)] }).serialized()
        var parameters = parameters(fields, maxTokens: maxTokens)
        model.record(into: &parameters)
        return Interaction(recordID: id, caller: caller, timestampMilliseconds: now(), modelID: model.id, modelDigest: model.digest,
                           chatTemplateHash: model.chatTemplateHash, parameters: parameters,
                           systemPrompt: system.isEmpty ? nil : system.joined(separator: "\n\n"), prompt: prompt)
    }

    /// A completions request: the prompt text, or its token ids as a JSON array.
    static func completion(id: String, caller: Caller, model: ModelIdentity, prompt: CompletionRequest.Prompt,
                           fields: SamplingFields, logprobs: Int?, maxTokens: Int?) -> Interaction {
        let text: String
        switch prompt {
        case .texts(let texts): text = texts[0]
        case .tokens(let ids): text = JSON.array(ids[0].map { .int(Int($0)) }).serialized()
        }
        var parameters = parameters(fields, maxTokens: maxTokens)
        if let logprobs { parameters.extra["logprobs"] = String(logprobs) }
        model.record(into: &parameters)
        return Interaction(recordID: id, caller: caller, timestampMilliseconds: now(), modelID: model.id, modelDigest: model.digest,
                           chatTemplateHash: nil, parameters: parameters, systemPrompt: nil, prompt: text)
    }

    /// The sampling parameters as the request gave them; temperature and top_p at OpenAI's
    /// defaults (1) when absent, max_tokens as enforced (where known). Other fields the request
    /// set go in `extra`, by their wire names.
    static func parameters(_ f: SamplingFields, maxTokens: Int?) -> ModelParameters {
        var extra: [String: String] = [:]
        let optional: [(String, Double?)] = [("min_p", f.minP), ("presence_penalty", f.presencePenalty),
                                             ("frequency_penalty", f.frequencyPenalty), ("repetition_penalty", f.repetitionPenalty)]
        for case let (name, value?) in optional { extra[name] = String(value) }
        if let stop = f.stop { extra["stop"] = JSON.array(stop.values.map { .string($0) }).serialized() }
        if let bias = f.logitBias, !bias.isEmpty {
            extra["logit_bias"] = JSON.object(bias.sorted { $0.key < $1.key }.map { ($0.key, .double($0.value)) }).serialized()
        }
        if f.stream == true { extra["stream"] = "true" }
        if let n = f.n, n != 1 { extra["n"] = String(n) }
        return ModelParameters(temperature: f.temperature ?? 1, topP: f.topP ?? 1, topK: f.topK.map(Int64.init),
                               maxTokens: maxTokens.map(Int64.init), seed: f.seed.map { UInt64(bitPattern: $0) }, extra: extra)
    }

    /// The complete record.
    /// The record with the response so far. `finishReason` is the generation's, or
    /// ``interrupted`` for the write-ahead record of an answer still being made.
    func record(response: String, promptTokens: Int, completionTokens: Int, finishReason: String, worker: WorkerInfo) -> LedgerRecord {
        LedgerRecord(
            recordID: recordID, timestampMilliseconds: timestampMilliseconds, gpu: worker.gpu, gpuProvider: worker.provider,
            gpuPricePerHourMicros: worker.pricePerHourMicros, currency: worker.currency, modelID: modelID, modelDigest: modelDigest,
            chatTemplateHash: chatTemplateHash, parameters: parameters, systemPrompt: systemPrompt, prompt: prompt, response: response,
            senderAddress: caller.address, promptTokens: UInt64(promptTokens), completionTokens: UInt64(completionTokens),
            finishReason: finishReason
        )
    }

    /// The finish reason of a write-ahead record: what the ledger keeps of an answer whose end
    /// was never recorded (the process died, or storage failed).
    static let interrupted = "interrupted"

    /// Milliseconds since the Unix epoch, now.
    static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    /// `sha256:<hex>` of a file, read in 4 MiB pieces (a model's digest, computed once at load).
    static func fileDigest(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw EngineError(.fileNotFound, "cannot read \(path) to compute its digest")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return "sha256:" + hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// `sha256:<hex>` of a text (a chat template's source).
    static func textDigest(_ text: String) -> String {
        "sha256:" + SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
