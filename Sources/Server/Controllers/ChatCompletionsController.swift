import ModelFormats
import ChatTemplates
import Crypto
import Engine
import Foundation
import Hummingbird

/// `POST /v1/chat/completions`: a conversation through the model's chat template.
struct ChatCompletionsController {
    let services: APIServices

    func addRoutes(to group: RouterGroup<VerityRequestContext>) {
        group.post("chat/completions", use: create)
    }

    /// A chat body read and its conversation rendered: the request (its sampling filled with the
    /// model's defaults), the model, its structured output and tools, its messages, and the prompt.
    func prepare(body: Data) async throws -> (ChatCompletionRequest, ServedModel, StructuredOutput?, ToolCalling?, [ChatMessage], [Int32]) {
        var req = try RequestBody.decode(ChatCompletionRequest.self, from: body)
        let served = try services.host.model(req.model)
        req.sampling = served.samplingDefaults.filling(req.sampling)
        try RequestValidation.checkSupported(req)
        let structured = try StructuredOutput.parse(body: body, completions: false)
        let json = try RawJSON.parse(Array(body))
        let tools = ToolCalling.involved(json) ? try ToolCalling.parse(json, template: served.model.chatTemplate) : nil
        if let tools {
            let (values, plain) = try tools.messages(json, limit: services.limits.maxMessages)
            let prompt = try await PromptPreparation.chat(values: values, tools: tools.templateTools, plain: plain, served: served, limits: services.limits)
            return (req, served, structured, tools, plain, prompt)
        }
        let messages = try RequestValidation.messages(req.messages, limit: services.limits.maxMessages)
        return (req, served, structured, nil, messages, try await PromptPreparation.chat(messages, served: served, limits: services.limits))
    }

    @Sendable func create(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let arrived = ContinuousClock.now
        let body = try await RequestBody.read(request, limit: services.limits.maxBodyBytes)
        return try await answer(body: body, context: context, id: nil, api: nil, arrived: arrived)
    }

    /// Answers a chat completion request's `body`. The Responses and Messages APIs answer through
    /// here too, with a body they translated, their own response `id`, and `api` (their name, which
    /// the record keeps as the parameter `api`).
    func answer(body: Data, context: VerityRequestContext, id givenID: String?, api: String?,
                arrived: ContinuousClock.Instant = .now) async throws -> Response {
        let (req, served, structured, tools, messages, prompt) = try await prepare(body: body)
        var parameters = try RequestValidation.parameters(
            req.sampling, promptTokens: prompt.count, served: served, logprobs: req.logprobs == true ? (req.topLogprobs ?? 0) : nil,
            promptParam: "messages", defaultMaxTokens: services.limits.defaultMaxTokens)
        parameters.grammar = try structured?.constraint(tokenizer: served.model.tokenizer)
        if let call = try tools?.grammar() {
            guard structured == nil else {
                throw APIError.invalidRequest("response_format and a required tool call can't both shape one answer.", param: "tool_choice")
            }
            parameters.grammar = try call.constraint(tokenizer: served.model.tokenizer)
        }
        let id = givenID ?? context.jobRequestID ?? RequestValidation.newID("chatcmpl")
        var interaction = Interaction.chat(id: id, caller: context.caller, model: served.identity, messages: messages, fields: req.sampling,
                                           maxTokens: parameters.maxTokens)
        if let structured { interaction.parameters.extra[structured.recorded.name] = structured.recorded.value }
        for (name, value) in tools?.recorded ?? [] { interaction.parameters.extra[name] = value }
        if let api { interaction.parameters.extra["api"] = api }
        interaction.bodyDigest = Data(SHA256.hash(data: body))
        interaction.routedAdvert = context.jobAdvertHash
        let responder = try await CompletionResponder.start(
            services: services, quota: context.quota, served: served, prompt: prompt,
            choices: RequestValidation.perChoice(parameters, n: try RequestValidation.choices(req.sampling)), promptParam: "messages",
            shape: ResponseShape(kind: .chat, id: id, created: Int(Date().timeIntervalSince1970), model: served.id,
                                 includeUsage: req.sampling.streamOptions?.includeUsage == true,
                                 fingerprint: ResponseShape.fingerprint(digest: served.identity.digest)),
            format: ChatFormat(tokenizer: served.model.tokenizer, wantsLogprobs: parameters.logprobs != nil, tools: tools, responseID: id),
            arrived: arrived, interaction: interaction)
        return try await responder.respond(streaming: req.sampling.stream == true, context: context)
    }
}
