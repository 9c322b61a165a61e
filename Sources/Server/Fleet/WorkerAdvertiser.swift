import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import Node
import ServiceLifecycle
import Synchronization

/// A worker's presence at its gateways. For each gateway, on its own: learn the key it signs jobs
/// with (unless given), send the signed advert, then heartbeat the worker's load; advertise again
/// when the gateway has forgotten the worker (it restarted) or the advert was renewed; after a
/// refusal or an unreachable gateway, retry with backoff, logging why.
final class WorkerAdvertiser: Service, Sendable {
    struct Configuration: Sendable {
        var gateways: [String]
        /// Gateway keys given on the command line (admitted without asking the gateways).
        var gatewayKeys: [Data] = []
        var joinToken: String?
        var provider: String
        var pricePerHourMicros: Int64
        var currency: String
        var region: String
        var hardware: Advert.Hardware
        var capacity: Int
        var heartbeatInterval: Duration = .seconds(5)
        /// How long an advert stands; it is renewed halfway.
        var advertLifetime: Duration = .seconds(3600)
        /// The endpoint's TLS certificate (DER) and its key's SHA-256, for gateways to pin.
        var tlsCertificate: Data?
        var tlsSPKISHA256: Data?
    }

    /// What the worker serves and how loaded it is, asked at each advert and heartbeat.
    struct Source: Sendable {
        /// The models, or nil while they load.
        var models: @Sendable () -> [Advert.Model]?
        /// Sequences generating and waiting.
        var load: @Sendable () -> (active: Int, queued: Int)
        /// The endpoint gateways call, or nil until the socket is bound.
        var endpoint: @Sendable () -> String?
    }

    let configuration: Configuration
    let key: WorkerKey
    let source: Source
    let meter: TokenMeter
    let adverts: AdvertBook
    let admitted: AdmittedGateways
    let http: HTTPClient
    let logger: Logger
    private let current = Mutex<(document: SignedDocument, renewAt: Int64)?>(nil)

    init(configuration: Configuration, key: WorkerKey, source: Source, meter: TokenMeter, adverts: AdvertBook, admitted: AdmittedGateways,
         http: HTTPClient, logger: Logger) {
        self.configuration = configuration
        self.key = key
        self.source = source
        self.meter = meter
        self.adverts = adverts
        self.admitted = admitted
        self.http = http
        self.logger = logger
        for gatewayKey in configuration.gatewayKeys { admitted.admit(gatewayKey) }
    }

    func run() async throws {
        // Adverts name the models' digests, known once they are loaded, and the bound port.
        var waiting = true
        while waiting {
            if source.models() != nil, source.endpoint() != nil { waiting = false } else {
                try? await Task.sleep(for: .milliseconds(50))
                if Task.isCancelled { return }
            }
        }
        logger.info("worker \(key.id): advertising to \(configuration.gateways.joined(separator: ", "))")
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for gateway in self.configuration.gateways {
                    group.addTask { await self.serve(gateway) }
                }
            }
        }
    }

    /// The current signed advert, renewed halfway through its life.
    func advert() throws -> SignedDocument {
        let now = Interaction.now()
        if let held = current.withLock({ $0 }), now < held.renewAt { return held.document }
        let lifetime = configuration.advertLifetime.milliseconds
        let models = source.models() ?? []
        let advert = Advert(worker: key.id, endpoint: source.endpoint() ?? "", tlsSPKISHA256: configuration.tlsSPKISHA256,
                            tlsCertificate: configuration.tlsCertificate, models: models, hardware: configuration.hardware,
                            provider: configuration.provider, pricePerHourMicros: configuration.pricePerHourMicros,
                            currency: configuration.currency, region: configuration.region, capacity: configuration.capacity,
                            version: Self.version, issuedMilliseconds: now, expiresMilliseconds: now + lifetime)
        let document = try advert.sign(with: key)
        adverts.issued(document.hash)
        current.withLock { $0 = (document, now + lifetime / 2) }
        return document
    }

    static let version = ResponseShape.engineVersion

    /// One gateway: key, advert, heartbeats, forever (until shutdown).
    private func serve(_ gateway: String) async {
        var backoff: Duration = .milliseconds(500)
        var sent: Data?
        var lastRefusal: String?
        var keyKnown = !configuration.gatewayKeys.isEmpty
        while !Task.isCancelled {
            do {
                if !keyKnown {
                    try await learnKey(gateway)
                    keyKnown = true
                }
                let document = try advert()
                if sent != document.hash {
                    try await post(gateway, "/v1/workers/adverts", advertBody(document))
                    sent = document.hash
                    lastRefusal = nil
                    logger.info("worker \(key.id): advert accepted by \(gateway)")
                }
                backoff = .milliseconds(500)
                try await Task.sleep(for: configuration.heartbeatInterval)
                let load = source.load()
                let beat = Heartbeat(worker: key.id, sentMilliseconds: Interaction.now(), active: load.active, queued: load.queued,
                                     tokensPerSecond: meter.rate(), advertHash: sent ?? Data())
                do {
                    try await post(gateway, "/v1/workers/heartbeats", beat.sign(with: key).jsonData())
                } catch let refusal as Refusal where refusal.status == 404 {
                    // The gateway forgot this worker (it restarted): advertise again.
                    logger.info("worker \(key.id): \(gateway) no longer knows this worker; advertising again")
                    sent = nil
                }
            } catch is CancellationError {
                return
            } catch {
                let reason = "\(error)"
                if reason != lastRefusal { logger.warning("worker \(key.id): \(gateway): \(reason)") }
                lastRefusal = reason
                sent = nil
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(30))
            }
        }
    }

    private func advertBody(_ document: SignedDocument) -> Data {
        var body: [(String, JSON)] = [("advert", document.json)]
        if let token = configuration.joinToken { body.append(("join_token", .string(token))) }
        return Data(JSON.object(body).serialized().utf8)
    }

    /// Learns (and admits) the key the gateway signs jobs with.
    private func learnKey(_ gateway: String) async throws {
        let response = try await request(gateway, "/v1/workers/gateway-key", body: nil)
        guard let text = try JSON.parse(response)["public_key"]?.stringValue, let key = Data(base64Encoded: text), key.count == 32 else {
            throw Refusal(status: 200, message: "\(gateway) answered /v1/workers/gateway-key without an Ed25519 key")
        }
        admitted.admit(key)
    }

    private func post(_ gateway: String, _ path: String, _ body: Data) async throws {
        _ = try await request(gateway, path, body: body)
    }

    /// A gateway's answer, or a ``Refusal`` with its status and message.
    private func request(_ gateway: String, _ path: String, body: Data?) async throws -> Data {
        var request = HTTPClientRequest(url: gateway.trimmingSuffix("/") + path)
        if let body {
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await http.execute(request, timeout: .seconds(10))
        let data = Data(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status == .ok else {
            let message = (try? JSON.parse(data))?["error"]?["message"]?.stringValue ?? String(decoding: data.prefix(300), as: UTF8.self)
            throw Refusal(status: Int(response.status.code), message: message)
        }
        return data
    }

    /// A gateway's refusal.
    struct Refusal: Error, CustomStringConvertible {
        var status: Int
        var message: String
        var description: String { "HTTP \(status): \(message)" }
    }
}
