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
        guard let models = host.modelsAndAdapters else { throw APIError.unavailable("Models are still loading; retry shortly.") }
        return .json(["object": "list", "data": .array(models.map(Self.object))])
    }

    @Sendable func show(_ request: Request, context: VerityRequestContext) async throws -> Response {
        .json(Self.object(try host.model(context.parameters.get("id") ?? "")))
    }

    static func object(_ served: ServedModel) -> JSON {
        if let adapter = served.adapter, let parent = served.parentID {
            // vLLM's shape for a LoRA adapter: its base is its `parent`, its path its `root`.
            return ["id": .string(served.id), "object": "model", "created": .int(served.created), "owned_by": "verity",
                    "parent": .string(parent), "root": .string(adapter.spec.path), "digest": .string(adapter.digest),
                    "scale": .double(Double(adapter.spec.scale)), "max_model_len": .int(served.contextLength),
                    "sampling_defaults": served.samplingDefaults.isEmpty ? .null : served.samplingDefaults.json]
        }
        // Beyond OpenAI's fields: where the weights came from and their digest (what the ledger records).
        return ["id": .string(served.id), "object": "model", "created": .int(served.created), "owned_by": "verity",
         "source": .string(served.source ?? served.model.path), "digest": .string(served.digest),
         "max_model_len": .int(served.contextLength),
         "sampling_defaults": served.samplingDefaults.isEmpty ? .null : served.samplingDefaults.json]
    }
}
