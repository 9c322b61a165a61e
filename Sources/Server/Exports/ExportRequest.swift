import Engine
import Export
import Foundation
import ModelFormats
import Node

/// A `POST /v1/exports` body, checked field by field (each failure a 400 naming the field):
///
/// ```json
/// {"model": "<served model id or adapter name>", "format": "gguf"|"safetensors"|"lora",
///  "type": "Q4_K_M", "merge": false, "adapter": "<adapter name>", "split_max_size": "2G"}
/// ```
///
/// `format` defaults to `gguf`; `type` to the format's default (GGUF F16; safetensors the
/// source's float type; LoRA `peft`); `split_max_size` (GGUF only) is bytes, or a size with K, M
/// or G (powers of 1000, as gguf-split reads them). `source` is accepted for `model`.
struct ExportRequest: Sendable, Equatable {
    var model: String
    var format: ExportFormat
    var type: String?
    var merge: Bool
    var adapter: String?
    var splitMaxBytes: Int?

    static let fields: Set<String> = ["model", "source", "format", "type", "merge", "adapter", "split_max_size"]
    /// The smallest shard `split_max_size` may ask for.
    static let minimumSplitBytes = 1_000_000

    init(_ json: JSON) throws(APIError) {
        guard case .object(let pairs) = json else { throw APIError.invalidRequest("The request body must be a JSON object.", code: "invalid_type") }
        for (key, _) in pairs where !Self.fields.contains(key) {
            throw APIError.invalidRequest("Unrecognized request argument supplied: \(key). An export takes \(Self.fields.sorted().joined(separator: ", ")).",
                                          param: key, code: "unknown_parameter")
        }
        if json["model"] != nil, json["source"] != nil {
            throw APIError.invalidRequest("Give the model to export as 'model' or 'source', not both.", param: "source")
        }
        let modelKey = json["model"] == nil && json["source"] != nil ? "source" : "model"
        model = try Self.string(json, modelKey, required: true)!
        let formatName = try Self.string(json, "format") ?? "gguf"
        guard let format = ExportFormat(rawValue: formatName.lowercased()) else {
            throw APIError.invalidRequest("Unknown export format '\(formatName)': it is gguf, safetensors or lora.", param: "format")
        }
        self.format = format
        type = try Self.string(json, "type")
        adapter = try Self.string(json, "adapter")
        switch json["merge"] {
        case nil, .null?: merge = false
        case .bool(let b)?: merge = b
        default: throw APIError.invalidType("merge", "expected a boolean")
        }
        switch json["split_max_size"] {
        case nil, .null?: splitMaxBytes = nil
        case .int(let n)?: splitMaxBytes = n
        case .string(let text)?:
            guard let n = Self.parseSize(text) else {
                throw APIError.invalidRequest("split_max_size takes bytes or a size such as 500M or 2G, not '\(text)'.", param: "split_max_size")
            }
            splitMaxBytes = n
        default: throw APIError.invalidType("split_max_size", "expected a size such as \"2G\" or a number of bytes")
        }
        if let splitMaxBytes {
            guard format == .gguf else {
                throw APIError.invalidRequest("split_max_size applies to GGUF exports only.", param: "split_max_size")
            }
            guard splitMaxBytes >= Self.minimumSplitBytes else {
                throw APIError.invalidRequest("split_max_size must be at least 1M (\(Self.minimumSplitBytes) bytes).", param: "split_max_size")
            }
        }
    }

    private static func string(_ json: JSON, _ key: String, required: Bool = false) throws(APIError) -> String? {
        guard let value = json[key], value != .null else {
            if required { throw APIError.missing(key) }
            return nil
        }
        guard let s = value.stringValue, !s.isEmpty else { throw APIError.invalidType(key, "expected a non-empty string") }
        return s
    }

    /// `500M`, `2G`, `1024`: bytes (K, M, G are powers of 1000, as gguf-split reads them).
    static func parseSize(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        for (suffix, scale) in [("K", 1000), ("M", 1000 * 1000), ("G", 1000 * 1000 * 1000)] where t.hasSuffix(suffix) {
            guard let n = Int(t.dropLast()), n > 0, n <= Int.max / scale else { return nil }
            return n * scale
        }
        guard let n = Int(t), n > 0 else { return nil }
        return n
    }
}

/// What an export request names, once resolved against the served models: a base model and,
/// for a merge or a LoRA export, one of its adapters.
struct ExportSource: Sendable {
    let base: ServedModel
    let adapter: AdapterRegistry.Entry?

    /// Resolves `request.model` (a base's id, or an adapter's name, whose base it is then) and
    /// `request.adapter`: 503 while loading, 404 for an unknown model or adapter, 400 when both
    /// name different adapters.
    init(_ request: ExportRequest, host: ModelHost) throws(APIError) {
        let named = try host.model(request.model)
        if let entry = named.adapter {
            if let other = request.adapter, other != entry.spec.name {
                throw APIError.invalidRequest("'\(request.model)' is already an adapter; 'adapter' may only repeat it, not name '\(other)'.", param: "adapter")
            }
            guard let base = host.models?.first(where: { $0.id == named.parentID }) else { throw APIError.modelNotFound(request.model) }
            self.base = base
            adapter = entry
        } else if let name = request.adapter {
            guard let entry = named.adapters.entry(name) else {
                throw APIError(status: .notFound, message: "The model '\(named.id)' has no adapter named '\(name)'; GET /v1/models lists them.",
                               type: "invalid_request_error", param: "adapter", code: "adapter_not_found")
            }
            base = named
            adapter = entry
        } else {
            base = named
            adapter = nil
        }
    }

    /// The model ids and adapter names whose weights the export writes: the base's unless only the
    /// adapter is written (`lora`), and the adapter's.
    func exported(as format: ExportFormat) -> [String] {
        (format == .lora ? [] : [base.id]) + (adapter.map { [$0.spec.name] } ?? [])
    }

    /// 403 unless `exporter` may export every id ``exported(as:)`` names: the admin may export
    /// anything served; others what the operator marked exportable (`serve --exportable`).
    func authorize(_ exporter: Exporter, format: ExportFormat, configuration: ExportConfiguration, requested: String) throws(APIError) {
        guard !exporter.isAdmin else { return }
        for id in exported(as: format) where !configuration.isExportable(id) {
            let what = id == base.id ? "model '\(id)'" : "adapter '\(id)'"
            throw APIError(status: .forbidden,
                           message: "The \(what) is not exportable with this key: the operator has not marked it exportable (verity serve --exportable \(id)). The admin key may export it.",
                           type: "invalid_request_error", param: id == requested || id == base.id ? "model" : "adapter", code: "model_not_exportable")
        }
    }

    /// The combinations of format, adapter and merge an export takes, as 400s naming the field.
    func check(_ request: ExportRequest) throws(APIError) {
        switch request.format {
        case .lora:
            guard let adapter else {
                throw APIError.invalidRequest("A LoRA export writes an adapter: name one of '\(base.id)'s adapters as 'model' or 'adapter'.", param: "adapter")
            }
            if request.merge {
                throw APIError.invalidRequest("A LoRA export writes the adapter '\(adapter.spec.name)' alone; to fold it into the model, export gguf or safetensors with merge: true.", param: "merge")
            }
        case .gguf, .safetensors:
            if let adapter, !request.merge {
                throw APIError.invalidRequest("'\(adapter.spec.name)' is an adapter: set merge: true to fold it into '\(base.id)' and write the merged model, or use format lora to write the adapter alone.", param: "merge")
            }
            if adapter == nil, request.merge {
                throw APIError.invalidRequest("merge folds an adapter into the model: name it in 'adapter' (or as 'model').", param: "adapter")
            }
        }
    }

    /// Opens the source (and adapter) files and checks the job against them
    /// (``ModelExport/resolve(_:model:adapter:)``): an unknown type is a 400 on `type`. Returns
    /// the work and the type it resolved to. Blocking: call it off the cooperative pool.
    func prepare(_ request: ExportRequest, output: String, threads: Int, sender: Caller) throws(APIError) -> (work: ExportJobs.Work, type: String) {
        let path = base.model.path
        let model: GGUFFile
        do { model = try ModelFiles.open(path) } catch { throw APIError.server("The model '\(base.id)' cannot be read from \(path) for export: \(error.message)") }
        var lora: LoRAFile?
        if let adapter {
            do { lora = try LoRAFile.load(path: adapter.spec.path, base: model) } catch {
                throw APIError.server("The adapter '\(adapter.spec.name)' cannot be read from \(adapter.spec.path) for export: \(error.message)")
            }
        }
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        let job = ExportJob(format: request.format, type: request.type, output: output, splitMaxBytes: request.splitMaxBytes, merge: request.merge,
                            adapterScale: adapter?.spec.scale ?? 1, threads: threads, source: base.model.source, sourceDigest: base.digest,
                            sourceDirectory: isDirectory.boolValue ? path : nil, adapterSource: adapter?.spec.path, adapterDigest: adapter?.digest,
                            tool: ModelExport.tool)
        let type: String
        do {
            type = try ModelExport.resolve(job, model: model, adapter: lora).type
        } catch {
            switch error.code {
            case .invalidOption: throw APIError.invalidRequest(error.message, param: "type")
            case .unsupported: throw APIError.invalidRequest(error.message, param: "format", code: "unsupported_value")
            case .invalidSource, .io, .cancelled: throw APIError.server("The export cannot start: \(error.message)")
            }
        }
        return (ExportJobs.Work(job: job, model: model, adapter: lora, sender: sender), type)
    }
}
