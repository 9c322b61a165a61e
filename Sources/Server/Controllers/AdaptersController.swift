import Engine
import Foundation
import Hummingbird
import Node

/// The operator's admin API for LoRA adapters, behind ``AdminAuthMiddleware`` (the operator's
/// admin key only; an account's or `--api-key` key gets 403):
/// - `GET /v1/adapters`: every adapter, with its base, digest, scale and whether it is resident;
/// - `POST /v1/adapters` `{"name", "path", "scale"?, "base"?}`: loads one (hot; 201 with its entry);
/// - `DELETE /v1/adapters/{name}`: unloads one; requests already running on it finish;
/// - vLLM's spellings: `POST /v1/load_lora_adapter` `{"lora_name", "lora_path"}` and
///   `POST /v1/unload_lora_adapter` `{"lora_name"}`.
struct AdaptersController {
    let host: ModelHost
    let maxBodyBytes: Int

    func addRoutes(to group: RouterGroup<VerityRequestContext>) {
        group.get("adapters", use: list)
        group.post("adapters", use: load)
        group.delete("adapters/{name}", use: unload)
        group.post("load_lora_adapter", use: loadVLLM)
        group.post("unload_lora_adapter", use: unloadVLLM)
    }

    @Sendable func list(_ request: Request, context: VerityRequestContext) async throws -> Response {
        guard let models = host.models else { throw APIError.unavailable("Models are still loading; retry shortly.") }
        var data: [JSON] = []
        var resident = 0
        for base in models {
            for entry in base.adapters.all { data.append(Self.object(entry, parent: base.id)) }
            resident += base.adapters.residentBytes
        }
        return .json(["object": "list", "data": .array(data), "resident_bytes": .int(resident)])
    }

    @Sendable func load(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let json = try await body(request)
        let name = try string(json, "name"), path = try string(json, "path")
        var scale: Float = 1
        switch json["scale"] {
        case nil, .null?: break
        case .int(let n)?: scale = Float(n)
        case .double(let d)? where d.isFinite: scale = Float(d)
        default: throw APIError.invalidType("scale", "expected a number")
        }
        let baseID = json["base"]?.stringValue
        return try add(AdapterSpec(name: name, path: path, scale: scale), base: baseID, status: .created)
    }

    @Sendable func unload(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let name = context.parameters.get("name") ?? ""
        return try remove(name)
    }

    @Sendable func loadVLLM(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let json = try await body(request)
        return try add(AdapterSpec(name: try string(json, "lora_name"), path: try string(json, "lora_path")), base: nil, status: .ok)
    }

    @Sendable func unloadVLLM(_ request: Request, context: VerityRequestContext) async throws -> Response {
        try remove(try string(try await body(request), "lora_name"))
    }

    // MARK: -

    private func add(_ spec: AdapterSpec, base baseID: String?, status: HTTPResponse.Status) throws -> Response {
        guard let models = host.models else { throw APIError.unavailable("Models are still loading; retry shortly.") }
        let base: ServedModel
        if let baseID {
            guard let found = models.first(where: { $0.id == baseID }) else { throw APIError.modelNotFound(baseID) }
            base = found
        } else if models.count == 1 {
            base = models[0]
        } else {
            throw APIError.invalidRequest("Several models are served (\(models.map(\.id).joined(separator: ", "))); say which one the adapter is for in \"base\".", param: "base")
        }
        do { try AdapterSpec.checkName(spec.name) } catch { throw APIError.invalidRequest(error.message, param: "name") }
        guard (try? host.model(spec.name)) == nil else {
            throw APIError(status: .conflict, message: "'\(spec.name)' is already a served model or adapter; unload it first or pick another name.",
                           type: "invalid_request_error", param: "name", code: "name_in_use")
        }
        guard FileManager.default.fileExists(atPath: spec.path) else {
            throw APIError.invalidRequest("No adapter at \(spec.path) (a PEFT folder or a GGUF LoRA file on the server's disk).", param: "path")
        }
        let entry: AdapterRegistry.Entry
        do {
            entry = try base.adapters.add(spec)
        } catch let error as EngineError {
            throw APIError.invalidRequest(error.message, param: "path", code: "invalid_adapter")
        }
        host.logger.info("admin: loaded adapter \(spec.name) on \(base.id) from \(spec.path)")
        return .json(Self.object(entry, parent: base.id), status: status)
    }

    private func remove(_ name: String) throws -> Response {
        guard let models = host.models else { throw APIError.unavailable("Models are still loading; retry shortly.") }
        for base in models {
            if let entry = base.adapters.remove(name) {
                host.logger.info("admin: unloaded adapter \(name) from \(base.id)")
                return .json(Self.object(entry, parent: base.id).setting("deleted", true))
            }
        }
        throw APIError(status: .notFound, message: "No adapter named '\(name)' is loaded.", type: "invalid_request_error", param: "name",
                       code: "adapter_not_found")
    }

    private func body(_ request: Request) async throws -> JSON {
        let data = try await RequestBody.read(request, limit: maxBodyBytes)
        do {
            let json = try JSON.parse(data)
            guard case .object = json else { throw APIError.invalidRequest("The body must be a JSON object.") }
            return json
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.invalidJSON("\(error)")
        }
    }

    private func string(_ json: JSON, _ key: String) throws -> String {
        guard let value = json[key], value != .null else { throw APIError.missing(key) }
        guard let s = value.stringValue, !s.isEmpty else { throw APIError.invalidType(key, "expected a non-empty string") }
        return s
    }

    static func object(_ entry: AdapterRegistry.Entry, parent: String) -> JSON {
        ["id": .string(entry.spec.name), "name": .string(entry.spec.name), "object": "adapter", "parent": .string(parent),
         "path": .string(entry.spec.path), "scale": .double(Double(entry.spec.scale)), "digest": .string(entry.digest),
         "resident": .bool(entry.resident != nil), "bytes": .int(entry.bytes), "created": .int(entry.created)]
    }
}

/// The admin API's door: the operator's admin key, compared in constant time. Any other key,
/// valid or not, is refused: 403 when it is an account's or `--api-key` key, 401 otherwise.
struct AdminAuthMiddleware: RouterMiddleware {
    let adminKeys: Set<String>
    let authenticator: Authenticator

    func handle(_ request: Request, context: VerityRequestContext,
                next: (Request, VerityRequestContext) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw APIError.unauthorized("The admin API needs the operator's admin key (the data directory's admin.key, or --admin-key) as 'Authorization: Bearer KEY'.")
        }
        let token = header.hasPrefix("Bearer ") ? String(header.dropFirst(7)) : header
        var admitted = false
        for key in adminKeys where Authenticator.constantTimeEqual(Array(key.utf8), Array(token.utf8)) { admitted = true }
        if admitted { return try await next(request, context) }
        if (try? authenticator.authenticate(request)).map({ _ in true }) ?? false, (try? authenticator.required()) == true {
            throw APIError(status: .forbidden, message: "This key may not use the admin API: it needs the operator's admin key, not an account's.",
                           type: "invalid_request_error", param: nil, code: "admin_key_required")
        }
        throw APIError.unauthorized("Incorrect admin key provided.")
    }
}
