import Crypto
import Foundation

/// A gateway's signature on a job it sends a worker, carried in the `Verity-Job-Signature`
/// header, so that a worker computes answers only for the gateways its operator admitted:
///
///     Verity-Job-Signature: key=<base64 Ed25519 public key>, ts=<ms since epoch>, sig=<base64 signature>
///
/// The signature covers, each on its own line, `verity-job-v1`, the method, the path (with its
/// query), the time, the request id (`Verity-Request-Id`, the gateway's record id, which the
/// worker's usage statement repeats) and the hex SHA-256 of the body. A worker accepts a job
/// whose key it admits, whose time is within ``maxSkew`` of its clock, and whose signature it has
/// not seen before within that window (a replay).
public enum JobSignature {
    public static let header = "Verity-Job-Signature"
    public static let requestIDHeader = "Verity-Request-Id"
    /// How far a job's time may be from the worker's clock.
    public static let maxSkew: Int64 = 60_000

    /// The header value for a job.
    public static func sign(method: String, path: String, requestID: String, body: Data, key: Curve25519.Signing.PrivateKey,
                            now: Int64) throws -> String {
        let message = Self.message(method: method, path: path, timestamp: now, requestID: requestID, body: body)
        let signature = try key.signature(for: message)
        return "key=\(key.publicKey.rawRepresentation.base64EncodedString()), ts=\(now), sig=\(signature.base64EncodedString())"
    }

    /// The signing key of a valid header for this job, or why not.
    /// - Throws: ``FleetSignatureError`` naming what is wrong.
    public static func verify(_ value: String?, method: String, path: String, requestID: String?, body: Data, now: Int64,
                              admitted: (Data) -> Bool) throws(FleetSignatureError) -> Data {
        guard let value else { throw .missing }
        var fields: [String: String] = [:]
        for part in value.split(separator: ",") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { throw .malformed }
            fields[pair[0]] = pair[1]
        }
        guard let keyText = fields["key"], let keyBytes = Data(base64Encoded: keyText),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: keyBytes),
              let timestamp = fields["ts"].flatMap({ Int64($0) }), let signature = fields["sig"].flatMap({ Data(base64Encoded: $0) }),
              let requestID else { throw .malformed }
        guard admitted(keyBytes) else { throw .notAdmitted }
        guard abs(now - timestamp) <= maxSkew else { throw .stale }
        let message = Self.message(method: method, path: path, timestamp: timestamp, requestID: requestID, body: body)
        guard key.isValidSignature(signature, for: message) else { throw .badSignature }
        return keyBytes
    }

    static func message(method: String, path: String, timestamp: Int64, requestID: String, body: Data) -> Data {
        let digest = SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined()
        return Data("verity-job-v1\n\(method)\n\(path)\n\(timestamp)\n\(requestID)\n\(digest)\n".utf8)
    }
}

/// Why a job's signature was refused.
public enum FleetSignatureError: Error, Sendable, CustomStringConvertible {
    case missing, malformed, notAdmitted, stale, badSignature, replayed

    public var description: String {
        switch self {
        case .missing: "the job carries no Verity-Job-Signature header"
        case .malformed: "the Verity-Job-Signature header (or Verity-Request-Id) is malformed"
        case .notAdmitted: "the job is signed by a gateway key this worker does not admit"
        case .stale: "the job's time is more than 60 s from this worker's clock"
        case .badSignature: "the job's signature does not verify"
        case .replayed: "the job's signature was seen before (a replay)"
        }
    }
}
