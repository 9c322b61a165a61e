import Engine
import Export
import Foundation
import Logging
import Node
import ModelFormats
import Models
import ServiceLifecycle

/// A model being served: its weights, tokenizer and template, and the scheduler that batches its
/// requests.
final class ServedModel: Sendable {
    /// The name requests use: the base model's id, or one of its adapters' names.
    let id: String
    let model: LoadedModel
    let scheduler: BatchScheduler
    let created: Int
    /// `sha256:<hex>` of the GGUF file (of a folder's or a split GGUF's manifest: see
    /// ``ModelHost/digest(of:)``), recorded with every interaction.
    let digest: String
    /// Where it came from, when more than a file: `hf:org/name@commit`, a folder, a load-time quantization.
    let source: String?
    /// The model's recommended sampling settings, used where a request leaves them unset.
    let samplingDefaults: SamplingDefaults
    /// `sha256:<hex>` of the chat template's source, if the model has one.
    let chatTemplateHash: String?
    /// The base model's LoRA adapters (shared by the base and its adapters' views).
    let adapters: AdapterRegistry
    /// For an adapter's view: the adapter, and the id of the base it runs on.
    let adapter: AdapterRegistry.Entry?
    let parentID: String?

    var contextLength: Int { scheduler.configuration.contextLength }

    /// How the ledger names this model: the base's id and digest, and the adapter's, if any.
    var identity: ModelIdentity {
        ModelIdentity(id: parentID ?? id, digest: digest, chatTemplateHash: chatTemplateHash, source: source,
                      adapter: adapter.map { AdapterIdentity(name: $0.spec.name, digest: $0.digest, scale: $0.spec.scale) })
    }

    init(id: String, model: LoadedModel, scheduler: BatchScheduler, created: Int, digest: String, maxAdapters: Int? = nil) {
        self.id = id
        adapters = AdapterRegistry(base: model, maxResident: maxAdapters)
        adapter = nil
        parentID = nil
        self.model = model
        self.scheduler = scheduler
        self.created = created
        self.digest = digest
        var source: String? = model.source == model.path && !model.isCheckpointFolder ? nil : model.source
        if let type = model.quantizedTo { source = (source ?? model.path) + " quantized to \(type.name) at load" }
        self.source = source
        samplingDefaults = SamplingDefaults(model: model)
        chatTemplateHash = (try? model.file.optionalString("tokenizer.chat_template")).flatMap { $0 }.map(Interaction.textDigest)
    }

    /// The view of `base` that runs with adapter `entry`.
    init(base: ServedModel, adapter entry: AdapterRegistry.Entry) {
        id = entry.spec.name
        model = base.model
        scheduler = base.scheduler
        created = entry.created
        digest = base.digest
        source = base.source
        samplingDefaults = base.samplingDefaults
        chatTemplateHash = base.chatTemplateHash
        adapters = base.adapters
        adapter = entry
        parentID = base.id
    }

    /// Queues a completion in the model's scheduler; its refusals as API errors (a full queue is
    /// 429 with Retry-After, shutdown 503, a prompt that does not fit 400 on `promptParam`).
    /// One sequence per choice (each with its own parameters), all queued or none.
    func submit(_ prompt: [Int32], _ choices: [GenerationParameters], promptParam: String) throws(APIError) -> [BatchScheduler.Request] {
        var weights: ModelAdapter?
        if let adapter {
            do {
                weights = try adapters.weights(adapter.spec.name)
            } catch {
                throw APIError.server("The adapter \(id) cannot be read again from \(adapter.spec.path): \(error)")
            }
            // Unloaded since the request named it.
            guard weights != nil else { throw APIError.modelNotFound(id) }
        }
        do {
            return try scheduler.submit(prompt: prompt, choices: choices, adapter: weights)
        } catch {
            switch error.code {
            case .overloaded: throw APIError.overloaded(error.message, retryAfter: 1)
            case .shuttingDown: throw APIError.unavailable(error.message)
            case .promptTooLong:
                throw APIError.contextLength(promptTokens: prompt.count, maxTokens: nil, context: contextLength, param: promptParam)
            default: throw APIError.invalidRequest(error.message)
            }
        }
    }
}

/// A model's own sampling defaults: `general.sampling.*` in a GGUF file, or a Hugging Face
/// folder's generation_config.json (read into the same keys). A request's unset field takes the
/// model's value; what the model does not say stays OpenAI's default (temperature 1, top_p 1).
struct SamplingDefaults: Sendable {
    var temperature: Double?
    var topP: Double?
    var topK: Int?
    var minP: Double?
    var repetitionPenalty: Double?
    /// Where the values came from, shown in /v1/models.
    var origin: String

    init(model: LoadedModel) {
        let file = model.file
        // Through the Float's shortest text, so 0.6 reads 0.6 and not 0.6000000238418579.
        func float(_ key: String) -> Double? {
            ((try? file.optionalFloat("general.sampling." + key)) ?? nil).map { Double("\($0)") ?? Double($0) }
        }
        temperature = float("temp")
        topP = float("top_p")
        topK = (try? file.optionalInt("general.sampling.top_k")) ?? nil
        minP = float("min_p")
        repetitionPenalty = float("penalty_repeat")
        origin = model.isCheckpointFolder ? "generation_config.json" : "GGUF metadata general.sampling.*"
    }

    var isEmpty: Bool { temperature == nil && topP == nil && topK == nil && minP == nil && repetitionPenalty == nil }

    /// `fields` with its unset sampling fields filled in from the model.
    func filling(_ fields: SamplingFields) -> SamplingFields {
        var f = fields
        if f.temperature == nil { f.temperature = temperature }
        if f.topP == nil { f.topP = topP }
        if f.topK == nil { f.topK = topK }
        if f.minP == nil { f.minP = minP }
        if f.repetitionPenalty == nil { f.repetitionPenalty = repetitionPenalty }
        return f
    }

    var json: JSON {
        var fields: [(String, JSON)] = []
        if let temperature { fields.append(("temperature", .double(temperature))) }
        if let topP { fields.append(("top_p", .double(topP))) }
        if let topK { fields.append(("top_k", .int(topK))) }
        if let minP { fields.append(("min_p", .double(minP))) }
        if let repetitionPenalty { fields.append(("repetition_penalty", .double(repetitionPenalty))) }
        fields.append(("source", .string(origin)))
        return .object(fields)
    }
}

/// Loads the served models after the socket is open (so `/health` can say "loading"), then, on
/// graceful shutdown, ends every generation so that open streams finish cleanly before the HTTP
/// server stops.
final class ModelHost: Service, @unchecked Sendable {
    struct Spec: Sendable {
        var path: String
        var contextLength: Int?
        var options = ModelLoadOptions()
        /// LoRA adapters to load on this model at start (paths resolved).
        var adapters: [AdapterSpec] = []
    }

    private let specs: [Spec]
    private let configuration: BatchScheduler.Configuration
    let logger: Logger
    private let lock = NSLock()
    private var loaded: [ServedModel]?

    /// Adapters resident in memory per base model (nil: no cap).
    let maxAdapters: Int?

    init(specs: [Spec], configuration: BatchScheduler.Configuration, maxAdapters: Int? = nil, logger: Logger) {
        self.specs = specs
        self.maxAdapters = maxAdapters
        self.configuration = configuration
        self.logger = logger
    }

    /// The served models in command-line order, or nil while loading.
    var models: [ServedModel]? {
        lock.withLock { loaded }
    }

    /// The model with this id, or the view of a base model with the adapter of that name, or the
    /// first model for an empty id (a request that names none, as vLLM serves it); 503 while
    /// loading, 404 when unknown.
    func model(_ id: String) throws(APIError) -> ServedModel {
        guard let models else { throw APIError.unavailable("Models are still loading; retry shortly.") }
        if id.isEmpty, let first = models.first { return first }
        if let served = models.first(where: { $0.id == id }) { return served }
        for base in models {
            if let entry = base.adapters.entry(id) { return ServedModel(base: base, adapter: entry) }
        }
        throw APIError.modelNotFound(id)
    }

    /// Every base model and, after each, its adapters' views.
    var modelsAndAdapters: [ServedModel]? {
        models.map { bases in bases.flatMap { base in [base] + base.adapters.all.map { ServedModel(base: base, adapter: $0) } } }
    }

    /// Loads every model and makes it available; ``run()`` does this once the socket is open.
    /// - Throws: ``EngineError`` if a model fails to load or two would have the same id.
    func load() throws {
        var served: [ServedModel] = []
        for spec in specs {
            let model = try LoadedModel(path: spec.path, options: spec.options, threads: configuration.threads)
            var config = configuration
            let trained = model.network.trainedContextLength
            config.contextLength = min(spec.contextLength ?? min(trained, 4096), trained)
            let scheduler = try BatchScheduler(model: model, configuration: config)
            let id = Self.id(for: spec.path, source: spec.options.sourceName)
            guard !served.contains(where: { $0.id == id }) else {
                throw EngineError(.invalidParameter, "two models would be served as '\(id)'; rename one file or folder")
            }
            let created = (try? FileManager.default.attributesOfItem(atPath: spec.path)[.modificationDate] as? Date)
                .map { Int($0.timeIntervalSince1970) } ?? Int(Date().timeIntervalSince1970)
            let base = ServedModel(id: id, model: model, scheduler: scheduler, created: created,
                                   digest: try Self.digest(of: spec.path), maxAdapters: maxAdapters)
            for adapter in spec.adapters {
                guard !served.contains(where: { $0.id == adapter.name || $0.adapters.entry(adapter.name) != nil }), adapter.name != id else {
                    throw EngineError(.invalidParameter, "the adapter name '\(adapter.name)' is already a model's or adapter's id")
                }
                let entry = try base.adapters.add(adapter)
                logger.info("loaded adapter \(adapter.name) on \(id) (\(entry.bytes / 1024) KiB, scale \(adapter.scale)) from \(adapter.path)")
            }
            served.append(base)
            logger.info("loaded \(id) (\(model.network.architecture), context \(config.contextLength) × \(config.maxSequences) sequences) in \(String(format: "%.2f", model.loadSeconds)) s")
        }
        lock.withLock { loaded = served }
        logger.info("ready")
    }

    /// Loads the models, serves until graceful shutdown, then ends every generation and waits
    /// for their streams to end.
    func run() async throws {
        try load()
        let served = models ?? []
        try? await gracefulShutdown()
        shutdown()
        // Let the ended streams write their last chunks before the HTTP server closes.
        while served.contains(where: { $0.scheduler.load.active > 0 }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Ends every generation and stops the schedulers.
    func shutdown() {
        for model in models ?? [] { model.scheduler.shutdown() }
    }

    /// The models of a configuration, the start-up adapters on the first.
    static func specs(_ configuration: ServerConfiguration) -> [Spec] {
        configuration.modelPaths.enumerated().map { i, path in
            Spec(path: path, contextLength: configuration.contextLength, options: configuration.modelLoadOptions[path] ?? ModelLoadOptions(),
                 adapters: i == 0 ? configuration.adapters : [])
        }
    }

    /// A model's id: the repo for a Hugging Face source (`org/name`, with `:TAG` for a GGUF file
    /// picked by tag), else its file or folder name without `.gguf`.
    static func id(for path: String, source: String? = nil) -> String {
        if let source, source.hasPrefix("hf:") {
            // hf:org/name[:tag]@commit
            return String(source.dropFirst(3).split(separator: "@", maxSplits: 1)[0])
        }
        let name = URL(fileURLWithPath: path).lastPathComponent
        return name.lowercased().hasSuffix(".gguf") ? String(name.dropLast(5)) : name
    }

    /// `sha256:<hex>` naming a model's weights (see ``FileDigest/modelDigest(_:)``).
    static func digest(of path: String) throws -> String {
        do { return try FileDigest.modelDigest(path) } catch {
            throw EngineError(error.code == .invalidSource ? .fileNotFound : .invalidModelFile, error.message)
        }
    }
}
