import Crypto
import Foundation

/// A JSON payload signed by a worker, as it travels between workers and gateways:
///
/// ```json
/// {"payload": "<base64 of the payload's JSON bytes>",
///  "signature": "<base64 of the 64-byte Ed25519 signature of exactly those bytes>",
///  "worker": "<WorkerID>"}
/// ```
///
/// The signature covers the payload bytes as sent, so nobody has to re-serialize JSON the same
/// way to check it (no canonicalization). The document's ``hash`` is the SHA-256 of the payload
/// bytes; a heartbeat names its advert, and a ledger record its advert, by that hash.
///
/// This type checks only the wrapper's shape; ``SignedPayload/verify(_:)`` checks the signature
/// and decodes the payload.
public struct SignedDocument: Sendable, Hashable {
    /// The most bytes a document may have, wrapper included (an advert with hundreds of models
    /// fits easily).
    public static let maxBytes = 1 << 20

    /// The payload's JSON bytes, exactly as signed.
    public let payload: Data
    /// The Ed25519 signature of ``payload`` by ``worker``'s key.
    public let signature: Data
    /// The worker that claims to have signed it.
    public let worker: WorkerID
    /// SHA-256 of ``payload``: the document's identity.
    public let hash: Data

    /// A document from its parts (no check is made here).
    public init(payload: Data, signature: Data, worker: WorkerID) {
        self.payload = payload
        self.signature = signature
        self.worker = worker
        self.hash = Data(SHA256.hash(data: payload))
    }

    private struct Wire: Codable {
        var payload: Data
        var signature: Data
        var worker: WorkerID
    }

    /// Parses the wrapper's JSON.
    /// - Parameter jsonData: The wrapper as received (at most ``maxBytes``).
    /// - Throws: ``FleetError/Code/malformed`` for oversized input, JSON that is not the wrapper,
    ///   base64 that does not decode, a signature that is not 64 bytes, or a bad worker id.
    public init(jsonData: Data) throws(FleetError) {
        guard jsonData.count <= Self.maxBytes else {
            throw FleetError(.malformed, "a signed document has at most \(Self.maxBytes) bytes, this one \(jsonData.count)")
        }
        let wire: Wire
        do { wire = try JSONDecoder().decode(Wire.self, from: jsonData) } catch let error as FleetError {
            throw error
        } catch {
            throw FleetError(.malformed, "not a signed document ({\"payload\", \"signature\", \"worker\"}): \(Self.describe(error))",
                             cause: error)
        }
        guard wire.signature.count == 64 else {
            throw FleetError(.malformed, "the signature of a document from \(wire.worker) has \(wire.signature.count) bytes, not 64")
        }
        self.init(payload: wire.payload, signature: wire.signature, worker: wire.worker)
    }

    /// The wrapper's JSON bytes, keys sorted.
    public func jsonData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Two byte strings and a string always encode.
        return (try? encoder.encode(Wire(payload: payload, signature: signature, worker: worker))) ?? Data()
    }

    /// The wrapper as a ``JSON`` value, to embed in a larger response.
    public var json: JSON {
        ["payload": .string(payload.base64EncodedString()), "signature": .string(signature.base64EncodedString()),
         "worker": .string(worker.description)]
    }

    /// Checks the signature under the claimed worker's key.
    /// - Throws: ``FleetError/Code/badSignature`` if it does not verify.
    public func checkSignature() throws(FleetError) {
        guard worker.isValidSignature(signature, for: payload) else {
            throw FleetError(.badSignature, "the signature of a document (sha256 \(hash.hex.prefix(16))…) does not verify under worker \(worker)")
        }
    }

    /// A decoding error in a few words: the field path and what was wrong.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let p = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "" : "\(p): "
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context))missing field \(key.stringValue)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(path(context))\(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

extension Data {
    /// Lowercase hex.
    var hex: String {
        var out = ""
        out.reserveCapacity(count * 2)
        for byte in self {
            out.append(Character(Unicode.Scalar(Self.hexDigits[Int(byte >> 4)])))
            out.append(Character(Unicode.Scalar(Self.hexDigits[Int(byte & 0x0f)])))
        }
        return out
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}
