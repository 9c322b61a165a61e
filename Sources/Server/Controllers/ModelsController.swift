import Hummingbird
import Node

/// `GET /v1/models` and `GET /v1/models/{id}`.
struct ModelsController {
    let host: ModelHost

    func addRoutes(to group: RouterGroup<VerityRequestContext>) {
        group.get("models", use: list)
        group.get("models/{id}", use: show)
    }

    @Sendable func list(_ request: Request, context: VerityRequestContext) async throws -> Response {
        guard let models = host.models else { throw APIError.unavailable("Models are still loading; retry shortly.") }
        return .json(["object": "list", "data": .array(models.map(Self.object))])
    }

    @Sendable func show(_ request: Request, context: VerityRequestContext) async throws -> Response {
        .json(Self.object(try host.model(context.parameters.get("id") ?? "")))
    }

    static func object(_ served: ServedModel) -> JSON {
        // Beyond OpenAI's fields: where the weights came from and their digest (what the ledger records).
        ["id": .string(served.id), "object": "model", "created": .int(served.created), "owned_by": "verity",
         "source": .string(served.source ?? served.model.path), "digest": .string(served.digest),
         "max_model_len": .int(served.contextLength),
         "sampling_defaults": served.samplingDefaults.isEmpty ? .null : served.samplingDefaults.json]
    }
}
