import Engine
import Foundation
import Hummingbird
import HummingbirdTesting
import Ledger
import Logging
import Node
import TestSupport
@testable import Server

/// An in-process server for route tests: the router over the provisioned SmolLM2 model and a
/// ledger in a fresh temporary data directory, driven through Hummingbird's router test client
/// (no sockets).
struct TestServer: Sendable {
    let host: ModelHost
    let ledger: LedgerAppender
    let directory: URL

    static let apiKey = "test-key"

    /// Runs `body` against the process's shared server (the model loaded once, the test key,
    /// default limits): for tests that change no state another test reads.
    static func withShared(_ body: @Sendable (TestServer, any TestClientProtocol) async throws -> Void) async throws {
        let (server, responder) = try await Shared.instance.get()
        try await Application(responder: responder).test(.router) { client in try await body(server, client) }
    }

    private actor Shared {
        static let instance = Shared()
        private var made: (TestServer, RouterResponder<VerityRequestContext>)?

        func get() async throws -> (TestServer, RouterResponder<VerityRequestContext>) {
            if let made { return made }
            let directory = TestPaths.temporaryDirectory("verity-server-test-shared")
            let (server, services) = try await TestServer.make(directory: directory, load: true, limits: RequestLimits())
            let responder = OpenAIServer.buildRouter(services: services, ledger: server.ledger, apiKeys: [apiKey], web: WebChatController()).buildResponder()
            made = (server, responder)
            return (server, responder)
        }
    }

    private static func make(directory: URL, load: Bool, limits: RequestLimits,
                             store: (any LedgerStore)? = nil) async throws -> (TestServer, APIServices) {
        var logger = Logger(label: "verity-test")
        logger.logLevel = .warning
        var ledgerConfiguration = LedgerConfiguration()
        ledgerConfiguration.dataDirectory = DataDirectory(path: directory.path)
        ledgerConfiguration.worker = WorkerInfo(gpu: "test CPU")
        ledgerConfiguration.minFreeBytes = 0
        let ledger = try LedgerAppender(configuration: ledgerConfiguration, logger: logger, store: store)
        try await ledger.prepare()
        var scheduler = BatchScheduler.Configuration()
        scheduler.maxSequences = 2
        scheduler.threads = 2
        let host = ModelHost(specs: [.init(path: TestPaths.smolLM2, contextLength: 512)], configuration: scheduler, logger: logger)
        if load { try host.load() }
        let services = APIServices(host: host, metrics: ServerMetrics(), limits: limits, ledger: ledger, limiter: RateLimiter(), logger: logger)
        return (TestServer(host: host, ledger: ledger, directory: directory), services)
    }

    /// Runs `body` against a fresh server; `keys` are the accepted static keys (none: no auth).
    static func withApp(load: Bool = true, keys: Set<String> = [apiKey], limits: RequestLimits = RequestLimits(),
                        store: (any LedgerStore)? = nil,
                        _ body: @Sendable (TestServer, any TestClientProtocol) async throws -> Void) async throws {
        let directory = TestPaths.temporaryDirectory("verity-server-test")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (server, services) = try await make(directory: directory, load: load, limits: limits, store: store)
        defer { server.host.shutdown() }
        let router = OpenAIServer.buildRouter(services: services, ledger: server.ledger, apiKeys: keys, web: WebChatController())
        let app = Application(router: router, logger: services.logger)
        try await app.test(.router) { client in try await body(server, client) }
    }
}

extension TestServer {
    /// The `Authorization` header with the test key.
    static var authorized: HTTPFields { [.authorization: "Bearer \(apiKey)"] }
}

/// An OpenAI error body: `{"error": {"message", "type", "param", "code"}}`.
struct ErrorBody: Decodable {
    var message: String
    var type: String
    var param: String?
    var code: String?

    private struct Wrapper: Decodable { var error: ErrorBody }

    init(_ buffer: ByteBuffer) throws {
        self = try JSONDecoder().decode(Wrapper.self, from: Data(buffer.readableBytesView)).error
    }
}
