import ModelFormats
import ChatTemplates
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOFoundationCompat
import Node

/// A gateway's `/v1` API: the completion endpoints answered by the fleet (``GatewayResponder``),
/// the models the fleet serves, and tokenizing forwarded to a worker that serves the model.
///
/// Requests are checked here as `verity serve` checks them (the same errors for the same bad
/// input) before any worker sees them; what only the model can check (the prompt's length against
/// its context) the worker checks, and its 400 is the client's.
struct GatewayControllers {
    let services: GatewayServices

    func addRoutes(to group: RouterGroup<VerityRequestContext>) {
        group.post("chat/completions", use: chat)
        group.post("completions", use: completion)
        group.get("models", use: models)
        group.get("models/{id}", use: model)
        for path in ["tokenize", "detokenize", "chat/template"] {
            group.post(RouterPath(path)) { request, context in try await forward(request, path: "/v1/" + path) }
        }
    }

    @Sendable func chat(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let arrived = ContinuousClock.now
        let body = try await RequestBody.read(request, limit: services.limits.maxBodyBytes)
        return try await chat(body: body, context: context, id: nil, api: nil, arrived: arrived)
    }

    /// As ``ChatCompletionsController/answer(body:context:id:api:arrived:)``: the fleet answers a
    /// chat body, which the Responses and Messages APIs also send here, translated.
    func chat(body: Data, context: VerityRequestContext, id givenID: String?, api: String?,
              arrived: ContinuousClock.Instant = .now) async throws -> Response {
        let req = try RequestBody.decode(ChatCompletionRequest.self, from: body)
        // A gateway routes by model: it has no default one.
        guard !req.model.isEmpty else { throw APIError.missing("model") }
        try RequestValidation.checkSupported(req)
        let structured = try StructuredOutput.parse(body: body, completions: false)
        let json = try RawJSON.parse(Array(body))
        // The worker renders tools with its model's template; here they are checked and recorded.
        let tools = ToolCalling.involved(json) ? try ToolCalling.parse(json, template: nil) : nil
        _ = try tools?.grammar()
        let messages = try RequestValidation.messages(req.messages, limit: services.limits.maxMessages)
        try checkSampling(req.sampling)
        // A conversation's turns share its opening (system prompt and first user message): they
        // go to the worker that holds its cache.
        let opening = messages.prefix { $0.role != "user" } + messages.drop { $0.role != "user" }.prefix(1)
        let job = try GatewayJob(path: "/v1/chat/completions", model: req.model, streaming: req.sampling.stream == true, body: body,
                                 affinitySeed: JSON.array(opening.map { ["role": .string($0.role), "content": .string($0.content)] }).serialized())
        let id = givenID ?? RequestValidation.newID("chatcmpl")
        var interaction = Interaction.chat(id: id, caller: context.caller, model: identity(req.model), messages: messages, fields: req.sampling,
                                           maxTokens: req.sampling.maxCompletionTokens ?? req.sampling.maxTokens)
        if let structured { interaction.parameters.extra[structured.recorded.name] = structured.recorded.value }
        for (name, value) in tools?.recorded ?? [] { interaction.parameters.extra[name] = value }
        if let api { interaction.parameters.extra["api"] = api }
        interaction.bodyDigest = Data()
        return try await GatewayResponder(services: services, job: job, interaction: interaction, quota: context.quota, arrived: arrived)
            .respond(context: context)
    }

    @Sendable func completion(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let arrived = ContinuousClock.now
        let body = try await RequestBody.read(request, limit: services.limits.maxBodyBytes)
        let req = try RequestBody.decode(CompletionRequest.self, from: body)
        guard !req.model.isEmpty else { throw APIError.missing("model") }
        try CompletionsController.checkSupported(req)
        let structured = try StructuredOutput.parse(body: body, completions: true)
        try checkSampling(req.sampling)
        let seed: String
        switch req.prompt {
        case .texts(let texts): seed = String(texts[0].prefix(Self.affinityPrefix))
        case .tokens(let ids): seed = ids[0].prefix(Self.affinityPrefix / 4).map(String.init).joined(separator: ",")
        }
        let job = try GatewayJob(path: "/v1/completions", model: req.model, streaming: req.sampling.stream == true, body: body, affinitySeed: seed)
        let id = RequestValidation.newID("cmpl")
        var interaction = Interaction.completion(id: id, caller: context.caller, model: identity(req.model), prompt: req.prompt,
                                                 fields: req.sampling, logprobs: req.logprobs,
                                                 maxTokens: req.sampling.maxCompletionTokens ?? req.sampling.maxTokens)
        if let structured { interaction.parameters.extra[structured.recorded.name] = structured.recorded.value }
        return try await GatewayResponder(services: services, job: job, interaction: interaction, quota: context.quota, arrived: arrived)
            .respond(context: context)
    }

    /// Characters of a raw prompt that key its affinity (a shared document or few-shot preamble).
    static let affinityPrefix = 1024

    /// The checks on sampling fields that need no model: the rest are the worker's.
    private func checkSampling(_ f: SamplingFields) throws(APIError) {
        _ = try RequestValidation.choices(f)
        if let max = f.maxCompletionTokens ?? f.maxTokens, max < 1 {
            throw APIError.invalidRequest("max_tokens must be at least 1.", param: f.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens")
        }
    }

    private func identity(_ model: String) -> ModelIdentity {
        ModelIdentity(id: model, digest: services.fleet.pinnedDigest(model) ?? GatewayResponder.noDigest, chatTemplateHash: nil)
    }

    // MARK: Models

    /// The models routable workers serve, each once: `owned_by` is "verity-fleet", and `verity`
    /// says how many workers serve it and its pinned digest.
    @Sendable func models(_ request: Request, context: VerityRequestContext) async throws -> Response {
        .json(["object": "list", "data": .array(served().map(Self.object))])
    }

    @Sendable func model(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        guard let entry = served().first(where: { $0.id == id }) else { throw APIError.modelNotFound(id) }
        return .json(Self.object(entry))
    }

    private struct ServedModel {
        var id: String
        var digest: String?
        var workers: Int
        var contextLength: Int
    }

    private func served() -> [ServedModel] {
        var byID: [String: ServedModel] = [:]
        for worker in services.fleet.listing(now: WorkerFleet.now()) where worker.routable {
            for model in worker.models {
                byID[model.id, default: ServedModel(id: model.id, digest: model.digest, workers: 0, contextLength: model.contextLength)].workers += 1
            }
        }
        return byID.values.sorted { $0.id < $1.id }
    }

    private static func object(_ m: ServedModel) -> JSON {
        ["id": .string(m.id), "object": "model", "created": 0, "owned_by": "verity-fleet",
         "verity": ["workers": .int(m.workers), "digest": .optional(m.digest), "context_length": .int(m.contextLength)]]
    }

    // MARK: Tokenizing

    /// Tokenizing needs the model's tokenizer: the request goes to the best worker serving it,
    /// and its answer comes back as it is (nothing is recorded).
    private func forward(_ request: Request, path: String) async throws -> Response {
        let body = try await RequestBody.read(request, limit: services.limits.maxBodyBytes)
        struct Model: Decodable { var model: String }
        let model = try RequestBody.decode(Model.self, from: body).model
        let candidates: [Candidate]
        switch services.fleet.candidates(model: model, policy: .leastLoaded, now: WorkerFleet.now()) {
        case .success(let found): candidates = found
        case .failure(let none):
            if none.serving == 0 { throw APIError.modelNotFound(model) }
            throw APIError.unavailable("No worker can take this request: \(none.message)")
        }
        var failures: [String] = []
        for candidate in candidates.prefix(services.routing.maxAttempts) {
            do {
                let response = try await services.jobs.send(base: candidate.advert.endpoint, path: path, body: body,
                                                            requestID: RequestValidation.newID("tok"), headTimeout: services.routing.headTimeout,
                                                            totalTimeout: services.routing.headTimeout)
                let data = try await response.body.collect(upTo: 64 << 20)
                guard response.status.code < 500 else {
                    failures.append("\(candidate.worker.short): HTTP \(response.status.code)")
                    continue
                }
                return Response(status: HTTPResponse.Status(code: Int(response.status.code)), headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: data))
            } catch {
                failures.append("\(candidate.worker.short): \(error)")
            }
        }
        throw APIError.unavailable("No worker could answer: \(failures.joined(separator: "; ")).")
    }
}
