import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Ledger
import Logging
import NIOCore
import Node
import ServiceLifecycle

/// `verity witness`: a C2SP tlog-witness over HTTP. `POST /add-checkpoint` is the spec's
/// endpoint (its submission prefix is the server's root); `GET /` gives the witness's verifier key
/// and the logs it witnesses.
public enum WitnessServer {
    /// The largest add-checkpoint body read: a checkpoint with 16 signatures and 63 proof lines
    /// is far below it.
    static let maxBodyBytes = 64 << 10

    /// The router, on its own (tests drive it in process).
    public static func router(_ witness: Witness, logs: [NoteVerifier]) -> Router<BasicRequestContext> {
        let router = Router()
        router.post("add-checkpoint") { request, _ -> Response in
            var body = ByteBuffer()
            do { body = try await request.body.collect(upTo: maxBodyBytes) } catch {
                return text(413, "text/plain; charset=utf-8", "the body is over \(maxBodyBytes) bytes\n")
            }
            let answer = witness.addCheckpoint(Data(buffer: body))
            return text(answer.status, answer.contentType, answer.body)
        }
        router.get("/") { _, _ -> Response in
            text(200, "text/plain; charset=utf-8",
                 "verity witness \(witness.signer.verifier.verifierKey)\n" + logs.map { "log \($0.verifierKey)\n" }.joined())
        }
        return router
    }

    private static func text(_ status: Int, _ contentType: String, _ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    /// Serves until SIGINT or SIGTERM.
    public static func run(_ witness: Witness, logs: [NoteVerifier], host: String, port: Int, logger: Logger) async throws {
        let app = Application(router: router(witness, logs: logs), configuration: .init(address: .hostname(host, port: port), serverName: "verity-witness"),
                              onServerRunning: { channel in
                                  logger.info("witness \(witness.signer.verifier.verifierKey) listening on http://\(host):\(channel.localAddress?.port ?? port) for \(logs.count) logs")
                              },
                              logger: logger)
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

/// A witness reached over HTTP at its submission prefix (`<url>/add-checkpoint`).
public struct HTTPWitness: CheckpointWitness {
    public let url: String
    public let verifier: CosignatureVerifier
    /// How long one request may take.
    public var timeout: TimeAmount = .seconds(10)

    public init(url: String, verifier: CosignatureVerifier) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.verifier = verifier
    }

    public func addCheckpoint(_ request: AddCheckpointRequest) async throws -> WitnessAnswer {
        var http = HTTPClientRequest(url: url + "/add-checkpoint")
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        http.body = .bytes(ByteBuffer(data: request.encoded))
        let response = try await HTTPClient.shared.execute(http, timeout: timeout)
        let text = String(buffer: try await response.body.collect(upTo: 64 << 10))
        switch response.status.code {
        case 200:
            // The body is note signature lines; parse them as a note's.
            return .cosigned(try SignedNote(parsing: "-\n\n" + text).signatures)
        case 409:
            guard text.hasSuffix("\n"), let size = UInt64(text.dropLast()) else {
                throw LedgerError(.malformed, "\(url): a 409 whose body is not a tree size")
            }
            return .conflict(latestSize: size)
        default:
            return .refused(status: Int(response.status.code), message: String(text.prefix(300)).trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}
