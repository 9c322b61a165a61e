import Foundation

/// A document a worker signs: ``Advert``, ``Heartbeat`` or ``UsageStatement``.
///
/// Its JSON is the type's own fields plus `"type"` (``documentType``, for example
/// `"verity.advert.v1"`), so that a signed heartbeat can never be passed off as an advert or a
/// usage statement. Unknown fields are ignored when reading (a newer worker may add some).
public protocol SignedPayload: Codable, Sendable {
    /// The payload's `type` field.
    static var documentType: String { get }
    /// The worker that signs it; must equal the signed document's `worker`.
    var worker: WorkerID { get }
    /// Checks the payload's fields (lengths, ranges, formats); times are checked by the caller,
    /// who knows the clock.
    /// - Throws: ``FleetError/Code/malformed`` naming the field at fault.
    func validate() throws(FleetError)
}

/// A signed document whose signature verified and whose payload decoded and validated.
public struct Verified<Payload: SignedPayload>: Sendable {
    /// The decoded payload.
    public let payload: Payload
    /// The document as received (keep it to forward or record it).
    public let document: SignedDocument

    /// SHA-256 of the payload bytes.
    public var hash: Data { document.hash }
    /// The worker that signed it.
    public var worker: WorkerID { document.worker }
}

/// An advert whose signature, fields and validity period were checked.
public typealias VerifiedAdvert = Verified<Advert>
/// A heartbeat whose signature and fields were checked.
public typealias VerifiedHeartbeat = Verified<Heartbeat>
/// A usage statement whose signature and fields were checked.
public typealias VerifiedUsageStatement = Verified<UsageStatement>

extension SignedPayload {
    /// Serializes the payload (keys sorted) and signs the bytes.
    /// - Parameter key: The worker's key; it must be the key of ``worker``.
    /// - Throws: ``FleetError/Code/workerMismatch`` if `key` is another worker's;
    ///   ``FleetError/Code/malformed`` if the payload does not validate.
    public func sign(with key: WorkerKey) throws(FleetError) -> SignedDocument {
        guard key.id == worker else {
            throw FleetError(.workerMismatch, "a \(Self.documentType) for worker \(worker) cannot be signed with the key of \(key.id)")
        }
        try validate()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let payload: Data
        do { payload = try encoder.encode(Tagged(payload: self)) } catch {
            throw FleetError(.malformed, "cannot encode a \(Self.documentType)", cause: error)
        }
        return SignedDocument(payload: payload, signature: try key.signature(for: payload), worker: key.id)
    }

    /// Verifies a signed document and decodes it as this payload type: the signature under the
    /// claimed worker's key, the payload's `type`, its fields, and that its `worker` field is the
    /// signer. Times are not checked here (see ``Advert/verify(_:now:maxClockSkew:)``).
    /// - Throws: ``FleetError/Code/badSignature``, ``FleetError/Code/malformed`` (not JSON, wrong
    ///   `type`, a field missing or out of range), ``FleetError/Code/workerMismatch``.
    public static func verify(_ document: SignedDocument) throws(FleetError) -> Verified<Self> {
        try document.checkSignature()
        let decoder = JSONDecoder()
        let type: String
        do { type = try decoder.decode(TypeField.self, from: document.payload).type } catch {
            throw FleetError(.malformed, "the payload signed by \(document.worker) has no \"type\": \(SignedDocument.describe(error))",
                             cause: error)
        }
        guard type == documentType else {
            throw FleetError(.malformed, "the document signed by \(document.worker) is a \"\(type)\", not a \"\(documentType)\"")
        }
        let payload: Self
        do { payload = try decoder.decode(Self.self, from: document.payload) } catch let error as FleetError {
            throw FleetError(.malformed, "a \(documentType) from \(document.worker): \(error.message)", cause: error)
        } catch {
            throw FleetError(.malformed, "a \(documentType) from \(document.worker): \(SignedDocument.describe(error))", cause: error)
        }
        guard payload.worker == document.worker else {
            throw FleetError(.workerMismatch, "a \(documentType) signed by \(document.worker) names worker \(payload.worker)")
        }
        do { try payload.validate() } catch {
            throw FleetError(.malformed, "a \(documentType) from \(document.worker): \(error.message)", cause: error)
        }
        return Verified(payload: payload, document: document)
    }
}

/// Encodes a payload's fields and its `type` into one JSON object.
private struct Tagged<Payload: SignedPayload>: Encodable {
    var payload: Payload

    func encode(to encoder: any Encoder) throws {
        try payload.encode(to: encoder)
        var container = encoder.container(keyedBy: TypeField.CodingKeys.self)
        try container.encode(Payload.documentType, forKey: .type)
    }
}

/// The `type` field every payload has.
private struct TypeField: Decodable {
    var type: String
    enum CodingKeys: String, CodingKey { case type }
}

/// Field checks shared by the payload types.
enum FieldCheck {
    /// A non-empty string of at most `max` UTF-8 bytes without control characters.
    static func text(_ value: String, _ field: String, max: Int = 256, allowEmpty: Bool = false) throws(FleetError) {
        guard allowEmpty || !value.isEmpty else { throw FleetError(.malformed, "\(field) is empty") }
        guard value.utf8.count <= max else { throw FleetError(.malformed, "\(field) is longer than \(max) bytes") }
        guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw FleetError(.malformed, "\(field) contains a control character")
        }
    }

    /// A model digest: `sha256:` and 64 lowercase hex digits.
    static func digest(_ value: String, _ field: String) throws(FleetError) {
        let hex = value.utf8.dropFirst(7)
        guard value.hasPrefix("sha256:"), hex.count == 64, hex.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw FleetError(.malformed, "\(field) \"\(value.prefix(80))\" is not sha256:<64 lowercase hex digits>")
        }
    }

    /// An ISO 4217 code: three uppercase ASCII letters.
    static func currency(_ value: String) throws(FleetError) {
        guard value.utf8.count == 3, value.utf8.allSatisfy({ (0x41...0x5A).contains($0) }) else {
            throw FleetError(.malformed, "currency \"\(value.prefix(16))\" is not a three-letter ISO 4217 code")
        }
    }

    /// A SHA-256 value: 32 bytes.
    static func sha256(_ value: Data, _ field: String) throws(FleetError) {
        guard value.count == 32 else { throw FleetError(.malformed, "\(field) has \(value.count) bytes, not 32") }
    }

    /// An integer within a range.
    static func range<T: BinaryInteger>(_ value: T, _ field: String, _ range: ClosedRange<T>) throws(FleetError) {
        guard range.contains(value) else { throw FleetError(.malformed, "\(field) is \(value), outside \(range.lowerBound)...\(range.upperBound)") }
    }
}
