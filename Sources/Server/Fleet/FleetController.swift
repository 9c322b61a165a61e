import Foundation
import Hummingbird
import Logging
import Node

/// A gateway's door for its workers, and its operator's view of them:
/// - `GET /v1/workers/gateway-key` (public): the key the gateway signs jobs with, which workers admit;
/// - `POST /v1/workers/adverts` (public, signed): `{"advert": <signed advert>, "join_token"?}`;
/// - `POST /v1/workers/heartbeats` (public, signed): a signed heartbeat;
/// - `GET /v1/workers` (keyed): the fleet as the gateway sees it.
///
/// Adverts and heartbeats need no API key: their signatures, and the operator's admission of the
/// worker's key (`verity workers admit`, or a join token), are what let a worker in. Every refusal
/// is logged with its reason, and answered with it.
struct FleetController {
    let fleet: WorkerFleet
    let gatewayKey: GatewayKey
    let logger: Logger

    /// Adverts and heartbeats are small; a larger body is refused unread.
    static let maxDocumentBytes = SignedDocument.maxBytes + 4096

    func addRoutes(open: RouterGroup<VerityRequestContext>, keyed: RouterGroup<VerityRequestContext>) {
        open.get("gateway-key") { _, _ in
            Response.json(["public_key": .string(gatewayKey.publicKey.base64EncodedString()), "algorithm": "ed25519"])
        }
        open.post("adverts", use: advert)
        open.post("heartbeats", use: heartbeat)
        keyed.get("workers") { _, _ in
            let now = WorkerFleet.now()
            return Response.json(["object": "list", "data": .array(fleet.listing(now: now).map(\.json))])
        }
    }

    @Sendable func advert(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let body = try await RequestBody.read(request, limit: Self.maxDocumentBytes)
        let parsed: (document: SignedDocument, joinToken: String?)
        do {
            let json = try JSON.parse(body)
            guard let advert = json["advert"] else { throw FleetError(.malformed, "the body has no \"advert\"") }
            let document = try SignedDocument(jsonData: Data(advert.serialized().utf8))
            parsed = (document, json["join_token"]?.stringValue)
        } catch {
            logger.warning("refused an advert: \(error)")
            throw APIError.invalidRequest("The advert is not a signed document: \(error).", param: "advert", code: "invalid_advert")
        }
        do {
            let acceptance = try fleet.ingest(advert: parsed.document, joinToken: parsed.joinToken, now: WorkerFleet.now())
            for conflict in acceptance.skipped {
                logger.warning("worker \(acceptance.worker): skipped model \(conflict.model): the catalog pins \(conflict.expected), the advert says \(conflict.got)")
            }
            let how = acceptance.admittedByJoinToken ? " (admitted by join token)" : ""
            logger.info("worker \(acceptance.worker) advertises \(acceptance.accepted.joined(separator: ", "))\(how), advert \(acceptance.advertHash.base64EncodedString().prefix(12))…")
            return .json([
                "worker": .string(acceptance.worker.description), "advert_sha256": .string(acceptance.advertHash.base64EncodedString()),
                "accepted": .array(acceptance.accepted.map(JSON.string)),
                "skipped": .array(acceptance.skipped.map { ["model": .string($0.model), "pinned_digest": .string($0.expected),
                                                            "advertised_digest": .string($0.got)] }),
            ])
        } catch {
            logger.warning("refused an advert from \(parsed.document.worker): \(error.message)")
            throw Self.apiError(error, what: "advert")
        }
    }

    @Sendable func heartbeat(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let body = try await RequestBody.read(request, limit: Self.maxDocumentBytes)
        let document: SignedDocument
        do { document = try SignedDocument(jsonData: body) } catch {
            logger.warning("refused a heartbeat: \(error.message)")
            throw APIError.invalidRequest("The heartbeat is not a signed document: \(error.message)", code: "invalid_heartbeat")
        }
        do {
            try fleet.heartbeat(document, now: WorkerFleet.now())
            return .json(["ok": true])
        } catch {
            if error.code != .unknownAdvert { logger.warning("refused a heartbeat from \(document.worker): \(error.message)") }
            throw Self.apiError(error, what: "heartbeat")
        }
    }

    /// A fleet refusal as an API error: 400 for a document that does not verify, 403 for a worker
    /// that is not admitted, 404 for a heartbeat without a current advert (advertise again), 409
    /// for an advert older than the current one or whose every model conflicts with the catalog.
    static func apiError(_ error: FleetError, what: String) -> APIError {
        let status: HTTPResponse.Status
        switch error.code {
        case .notAdmitted, .invalidJoinToken: status = .forbidden
        case .unknownAdvert: status = .notFound
        case .stale, .digestConflict: status = .conflict
        case .storage: status = .internalServerError
        default: status = .badRequest
        }
        let type = status == .internalServerError ? "server_error" : "invalid_request_error"
        return APIError(status: status, message: "The \(what) was refused: \(error.message)", type: type, param: nil,
                        code: Self.snakeCase(error.code.description))
    }

    static func snakeCase(_ camel: String) -> String {
        var out = ""
        for c in camel {
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
        return out
    }
}
