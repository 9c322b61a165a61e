import Crypto
import Engine
import Foundation
import Hummingbird

/// `POST /v1/completions`: a raw-text or token-id prompt, completed as it is.
struct CompletionsController {
    let services: APIServices

    func addRoutes(to group: RouterGroup<VerityRequestContext>) {
        group.post("completions", use: create)
    }

    @Sendable func create(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let arrived = ContinuousClock.now
        let body = try await RequestBody.read(request, limit: services.limits.maxBodyBytes)
        var req = try RequestBody.decode(CompletionRequest.self, from: body)
        let served = try services.host.model(req.model)
        req.sampling = served.samplingDefaults.filling(req.sampling)
        try Self.checkSupported(req)
        let structured = try StructuredOutput.parse(body: body, completions: true)
        let tokenizer = served.model.tokenizer
        let prompt: [Int32]
        switch req.prompt {
        case .texts(let texts):
            prompt = try await PromptPreparation.text(texts[0], parseSpecial: req.parseSpecial == true, served: served, limits: services.limits)
        case .tokens(let ids):
            prompt = ids[0]
            if let bad = prompt.first(where: { $0 < 0 || Int($0) >= tokenizer.vocabularySize }) {
                throw APIError.invalidRequest("Token id \(bad) is outside the vocabulary (0..<\(tokenizer.vocabularySize)).", param: "prompt")
            }
        }
        if prompt.isEmpty { throw APIError.invalidRequest("The prompt is empty.", param: "prompt") }
        var parameters = try RequestValidation.parameters(req.sampling, promptTokens: prompt.count, served: served, logprobs: req.logprobs,
                                                          promptParam: "prompt", defaultMaxTokens: services.limits.defaultMaxTokens)
        parameters.grammar = try structured?.constraint(tokenizer: tokenizer)
        let id = context.jobRequestID ?? RequestValidation.newID("cmpl")
        var interaction = Interaction.completion(id: id, caller: context.caller, model: served.identity, prompt: req.prompt, fields: req.sampling,
                                                 logprobs: req.logprobs, maxTokens: parameters.maxTokens)
        if let structured { interaction.parameters.extra[structured.recorded.name] = structured.recorded.value }
        interaction.bodyDigest = Data(SHA256.hash(data: body))
        interaction.routedAdvert = context.jobAdvertHash
        let responder = try await CompletionResponder.start(
            services: services, quota: context.quota, served: served, prompt: prompt,
            choices: RequestValidation.perChoice(parameters, n: try RequestValidation.choices(req.sampling)), promptParam: "prompt",
            shape: ResponseShape(kind: .text, id: id, created: Int(Date().timeIntervalSince1970), model: served.id,
                                 includeUsage: req.sampling.streamOptions?.includeUsage == true,
                                 fingerprint: ResponseShape.fingerprint(digest: served.identity.digest)),
            format: TextFormat(tokenizer: tokenizer, wantsLogprobs: parameters.logprobs != nil),
            arrived: arrived, interaction: interaction)
        return try await responder.respond(streaming: req.sampling.stream == true, context: context)
    }

    /// Refuses what this endpoint accepts but cannot honour yet.
    static func checkSupported(_ req: CompletionRequest) throws(APIError) {
        if req.prompt.count == 0 { throw APIError.invalidRequest("The prompt is empty.", param: "prompt") }
        if req.prompt.count != 1 {
            throw APIError.unsupported("prompt", "Send one prompt per request; batches of \(req.prompt.count) prompts are not supported yet.")
        }
        if req.echo == true { throw APIError.unsupported("echo", "echo is not supported yet.") }
        if let suffix = req.suffix, !suffix.isEmpty { throw APIError.unsupported("suffix", "suffix (fill-in-the-middle) is not supported yet.") }
        if let best = req.bestOf, best != 1 { throw APIError.unsupported("best_of", "best_of > 1 is not supported yet.") }
        if let n = req.logprobs {
            do { _ = try ParameterRanges.check(n, ParameterRanges.topLogprobs, name: "logprobs") } catch { throw APIError.invalidParameter(error) }
        }
    }
}
