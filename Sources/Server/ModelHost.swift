import Engine
import Foundation
import Logging
import ModelFormats
import ServiceLifecycle

/// A model being served: its weights, tokenizer and template, and the scheduler that batches its
/// requests.
final class ServedModel: Sendable {
    let id: String
    let model: LoadedModel
    let scheduler: BatchScheduler
    let created: Int
    /// `sha256:<hex>` of the GGUF file, recorded with every interaction.
    let digest: String
    /// `sha256:<hex>` of the chat template's source, if the model has one.
    let chatTemplateHash: String?

    var contextLength: Int { scheduler.configuration.contextLength }

    /// How the ledger names this model.
    var identity: ModelIdentity { ModelIdentity(id: id, digest: digest, chatTemplateHash: chatTemplateHash) }

    init(id: String, model: LoadedModel, scheduler: BatchScheduler, created: Int, digest: String) {
        self.id = id
        self.model = model
        self.scheduler = scheduler
        self.created = created
        self.digest = digest
        chatTemplateHash = (try? model.file.optionalString("tokenizer.chat_template")).flatMap { $0 }.map(Interaction.textDigest)
    }

    /// Queues a completion in the model's scheduler; its refusals as API errors (a full queue is
    /// 429 with Retry-After, shutdown 503, a prompt that does not fit 400 on `promptParam`).
    func submit(_ prompt: [Int32], _ parameters: GenerationParameters, promptParam: String) throws(APIError) -> BatchScheduler.Request {
        do {
            return try scheduler.submit(prompt: prompt, parameters: parameters)
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

/// Loads the served models after the socket is open (so `/health` can say "loading"), then, on
/// graceful shutdown, ends every generation so that open streams finish cleanly before the HTTP
/// server stops.
final class ModelHost: Service, @unchecked Sendable {
    struct Spec: Sendable {
        var path: String
        var contextLength: Int?
    }

    private let specs: [Spec]
    private let configuration: BatchScheduler.Configuration
    private let logger: Logger
    private let lock = NSLock()
    private var loaded: [ServedModel]?

    init(specs: [Spec], configuration: BatchScheduler.Configuration, logger: Logger) {
        self.specs = specs
        self.configuration = configuration
        self.logger = logger
    }

    /// The served models in command-line order, or nil while loading.
    var models: [ServedModel]? {
        lock.withLock { loaded }
    }

    /// The model with this id; 503 while loading, 404 when unknown.
    func model(_ id: String) throws(APIError) -> ServedModel {
        guard let models else { throw APIError.unavailable("Models are still loading; retry shortly.") }
        guard let served = models.first(where: { $0.id == id }) else { throw APIError.modelNotFound(id) }
        return served
    }

    /// Loads every model and makes it available; ``run()`` does this once the socket is open.
    /// - Throws: ``EngineError`` if a model fails to load or two would have the same id.
    func load() throws {
        var served: [ServedModel] = []
        for spec in specs {
            let model = try LoadedModel(path: spec.path)
            var config = configuration
            let trained = model.network.trainedContextLength
            config.contextLength = min(spec.contextLength ?? min(trained, 4096), trained)
            let scheduler = try BatchScheduler(model: model, configuration: config)
            let id = Self.id(for: spec.path)
            guard !served.contains(where: { $0.id == id }) else {
                throw EngineError(.invalidParameter, "two models would be served as '\(id)'; rename one file")
            }
            let created = (try? FileManager.default.attributesOfItem(atPath: spec.path)[.modificationDate] as? Date)
                .map { Int($0.timeIntervalSince1970) } ?? Int(Date().timeIntervalSince1970)
            served.append(ServedModel(id: id, model: model, scheduler: scheduler, created: created,
                                      digest: try Interaction.fileDigest(spec.path)))
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

    /// A model's id: its file name without `.gguf`.
    static func id(for path: String) -> String {
        let name = URL(fileURLWithPath: path).lastPathComponent
        return name.lowercased().hasSuffix(".gguf") ? String(name.dropLast(5)) : name
    }
}
