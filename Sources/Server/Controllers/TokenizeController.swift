import Engine
import Hummingbird
import Node

/// `POST /v1/tokenize`, `POST /v1/detokenize` and `POST /v1/chat/template`: what the model sees.
struct TokenizeController {
    let services: APIServices

    func addRoutes(to group: RouterGroup<VerityRequestContext>) {
        group.post("tokenize", use: tokenize)
        group.post("detokenize", use: detokenize)
        group.post("chat/template", use: template)
    }

    @Sendable func tokenize(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let req = try await RequestBody.decode(TokenizeRequest.self, from: request, limit: services.limits.maxBodyBytes)
        let served = try services.host.model(req.model)
        let limits = services.limits
        let tokens: [Int32]
        if let prompt = req.prompt {
            guard prompt.utf8.count <= limits.maxTextBytes else {
                throw APIError.invalidRequest("The prompt has \(prompt.utf8.count) bytes; at most \(limits.maxTextBytes) are accepted.",
                                              param: "prompt", code: "request_too_large")
            }
            let (addSpecial, parseSpecial) = (req.addSpecialTokens ?? true, req.parseSpecial == true)
            tokens = try await PromptPreparation.offPool {
                served.model.tokenizer.encode(prompt, addSpecial: addSpecial, parseSpecial: parseSpecial)
            }
        } else if let messages = req.messages {
            let chat = try RequestValidation.messages(messages, limit: limits.maxMessages)
            tokens = try await PromptPreparation.chat(chat, served: served, limits: limits,
                                                      addGenerationPrompt: req.addGenerationPrompt ?? true, fitting: false)
        } else {
            throw APIError.missing("prompt")
        }
        return .json(["tokens": .array(tokens.map { .int(Int($0)) }), "count": .int(tokens.count), "max_model_len": .int(served.contextLength)])
    }

    @Sendable func detokenize(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let req = try await RequestBody.decode(DetokenizeRequest.self, from: request, limit: services.limits.maxBodyBytes)
        let served = try services.host.model(req.model)
        let vocab = served.model.tokenizer.vocabularySize
        if let bad = req.tokens.first(where: { $0 < 0 || Int($0) >= vocab }) {
            throw APIError.invalidRequest("Token id \(bad) is outside the vocabulary (0..<\(vocab)).", param: "tokens")
        }
        return .json(["prompt": .string(served.model.tokenizer.decode(req.tokens))])
    }

    @Sendable func template(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let req = try await RequestBody.decode(TokenizeRequest.self, from: request, limit: services.limits.maxBodyBytes)
        let served = try services.host.model(req.model)
        guard let messages = req.messages else { throw APIError.missing("messages") }
        return .json(["prompt": .string(try render(served, messages, addGenerationPrompt: req.addGenerationPrompt ?? true))])
    }

    private func render(_ served: ServedModel, _ messages: [ChatCompletionRequest.Message], addGenerationPrompt: Bool) throws(APIError) -> String {
        let chat = try RequestValidation.messages(messages, limit: services.limits.maxMessages)
        do {
            return try served.model.renderChat(chat, addGenerationPrompt: addGenerationPrompt)
        } catch {
            throw APIError.invalidRequest("The model's chat template could not render these messages: \(error.message)", param: "messages")
        }
    }
}
