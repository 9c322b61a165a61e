import ArgumentParser
import Engine
import Foundation
import Logging
import Server

/// `verity serve`: the OpenAI-compatible API over continuous batching.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve models over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, …).",
        discussion: "Logs one line per request to stderr. SIGINT or SIGTERM ends open generations, lets their streams finish, and exits.")

    @Option(name: .shortAndLong, help: "A GGUF model to serve (repeatable; default: the provisioned SmolLM2-135M-Instruct). Its id is the file name without .gguf.")
    var model: [String] = []
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 8080
    @Option(name: .customLong("api-key"), help: "Require this bearer key on /v1/* requests.") var apiKey: String?
    @Option(name: .customLong("api-keys-file"), help: "Require one of the keys in this file (one per line; # comments) on /v1/* requests.")
    var apiKeysFile: String?
    @Option(name: .customLong("max-sequences"), help: "Sequences generated at once per model (continuous batching).") var maxSequences = 8
    @Option(name: .customLong("ctx"), help: "Context positions per sequence, prompt plus completion (default: the model's trained context, at most 4096).")
    var contextLength: Int?
    @Option(help: "Compute threads per model (default: all cores).") var threads: Int?
    @Option(name: .customLong("max-queue"), help: "Requests that may wait for a free sequence; beyond that, 429 with Retry-After.")
    var maxQueue = 64
    @Option(name: .customLong("step-tokens"), help: "Tokens per batched step: one per generating sequence, the rest prompt chunks.")
    var stepTokens = 64
    @Option(name: .customLong("max-body-bytes"), help: "Largest request body accepted (413 beyond).") var maxBodyBytes = 8 << 20

    func validate() throws {
        if apiKey != nil && apiKeysFile != nil { throw ValidationError("use --api-key or --api-keys-file, not both") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard maxSequences >= 1 && maxSequences <= 256 else { throw ValidationError("--max-sequences must be between 1 and 256") }
        if let contextLength, contextLength < 2 { throw ValidationError("--ctx must be at least 2") }
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be between 1 and 256") }
        guard maxQueue >= 0 else { throw ValidationError("--max-queue must not be negative") }
        guard stepTokens >= 1 else { throw ValidationError("--step-tokens must be positive") }
        guard maxBodyBytes >= 1024 else { throw ValidationError("--max-body-bytes must be at least 1024") }
    }

    func run() async throws {
        var config = ServerConfiguration()
        config.host = host
        config.port = port
        config.modelPaths = model.isEmpty ? [ModelCache.defaultModelPath] : model
        for path in config.modelPaths where !FileManager.default.fileExists(atPath: path) {
            throw CLIError(model.isEmpty ? "default model not found at \(path); run scripts/fetch-models or pass --model PATH"
                                         : "model file not found: \(path)")
        }
        config.contextLength = contextLength
        config.apiKeys = try keys()
        config.scheduler.maxSequences = maxSequences
        config.scheduler.threads = threads ?? BatchScheduler.ThreadCount.default
        config.scheduler.maxQueue = maxQueue
        config.scheduler.stepTokens = stepTokens
        config.maxBodyBytes = maxBodyBytes
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "verity")
        logger.logLevel = .info
        do {
            try await OpenAIServer.run(config, logger: logger)
        } catch let error as EngineError {
            throw CLIError(error.message)
        }
    }

    private func keys() throws -> Set<String> {
        if let apiKey {
            guard !apiKey.isEmpty else { throw CLIError("--api-key must not be empty") }
            return [apiKey]
        }
        guard let apiKeysFile else { return [] }
        guard let text = try? String(contentsOfFile: apiKeysFile, encoding: .utf8) else {
            throw CLIError("cannot read API keys file \(apiKeysFile)")
        }
        let keys = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !keys.isEmpty else { throw CLIError("API keys file \(apiKeysFile) holds no keys") }
        return Set(keys)
    }
}
