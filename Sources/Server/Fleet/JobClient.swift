import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Node

/// Sends a gateway's jobs to workers, and a worker's jobs to an external engine: the request as
/// given, signed (`Verity-Job-Signature`, `Verity-Request-Id`) when a key is set, with a bound on
/// how long the response's head may take (failover happens before the first byte, so the head
/// decides). The body of the response streams as the worker writes it; cancelling the caller's
/// task cancels the request, which the worker sees as a client that left.
// swift-crypto 3.x does not mark its immutable key types Sendable (4.x does); the key is never
// mutated, so sharing it across tasks is safe.
struct JobClient: @unchecked Sendable {
    let http: HTTPClient
    /// The gateway's key (nil: unsigned, for an external engine).
    let key: Curve25519.Signing.PrivateKey?
    /// Extra headers on every request (an external engine's API key).
    var headers: [(String, String)] = []

    /// A job sent and its response's head received.
    /// - Throws: `HTTPClientError` (refused, reset, deadline), or ``JobClientError/headTimeout``.
    /// `tls`: the connection's TLS configuration (a worker's pinned certificate), else the client's.
    func send(base: String, path: String, method: HTTPMethod = .POST, body: Data?, requestID: String?, tls: TLSConfiguration? = nil,
              extraHeaders: [(String, String)] = [], headTimeout: Duration, totalTimeout: Duration) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: base.trimmingSuffix("/") + path)
        request.method = method
        request.tlsConfiguration = tls
        if body != nil { request.headers.add(name: "Content-Type", value: "application/json") }
        for (name, value) in headers + extraHeaders { request.headers.add(name: name, value: value) }
        let payload = body ?? Data()
        if let key, let requestID {
            let signature = try JobSignature.sign(method: method.rawValue, path: path, requestID: requestID, body: payload, key: key,
                                                  now: Int64((Date().timeIntervalSince1970 * 1000).rounded()))
            request.headers.add(name: JobSignature.header, value: signature)
            request.headers.add(name: JobSignature.requestIDHeader, value: requestID)
        }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let http = self.http
        let prepared = request
        let deadline = NIODeadline.now() + .milliseconds(totalTimeout.milliseconds)
        return try await withThrowingTaskGroup(of: HTTPClientResponse?.self) { group in
            group.addTask { try await http.execute(prepared, deadline: deadline) }
            group.addTask {
                try await Task.sleep(for: headTimeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let response = first else { throw JobClientError.headTimeout }
            return response
        }
    }
}

enum JobClientError: Error, CustomStringConvertible {
    case headTimeout

    var description: String {
        switch self {
        case .headTimeout: "no response head in time"
        }
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
