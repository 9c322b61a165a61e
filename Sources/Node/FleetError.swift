/// The error type of the fleet: worker keys, signed documents, and the gateway's ``WorkerFleet``.
///
/// Shaped like `LedgerError`: an extensible ``Code`` to switch on, a message that names the worker,
/// model or field at fault (what a server logs), and an optional underlying ``cause``. A digest
/// conflict also carries its ``conflict``.
public struct FleetError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        public var description: String { raw }

        /// Bytes that do not parse as the document, key or identifier they claim to be, or a
        /// document whose fields are out of range.
        public static let malformed = Code("malformed")
        /// A signature that does not verify under the worker key the document names.
        public static let badSignature = Code("badSignature")
        /// The payload's own `worker` field differs from the worker the wrapper names.
        public static let workerMismatch = Code("workerMismatch")
        /// An advert past its expiry, or a heartbeat older than the silence timeout.
        public static let expired = Code("expired")
        /// A document issued further in the future than the allowed clock skew.
        public static let notYetValid = Code("notYetValid")
        /// A worker key the operator has not admitted (or has revoked), with no valid join token.
        public static let notAdmitted = Code("notAdmitted")
        /// Every model of an advert conflicts with the catalog's pinned digests (see ``conflict``).
        public static let digestConflict = Code("digestConflict")
        /// An advert or heartbeat older than the one already accepted from the same worker (a replay).
        public static let stale = Code("stale")
        /// A heartbeat from a worker with no current advert, or one that names another advert.
        public static let unknownAdvert = Code("unknownAdvert")
        /// A usage statement that does not match the request it claims to account for.
        public static let usageMismatch = Code("usageMismatch")
        /// A join token that is unknown, used or expired.
        public static let invalidJoinToken = Code("invalidJoinToken")
        /// A worker, token or key that does not exist.
        public static let notFound = Code("notFound")
        /// The admission database or a key file failed.
        public static let storage = Code("storage")
    }

    /// A model whose advertised digest differs from the digest the catalog pins for its id.
    public struct DigestConflict: Sendable, Hashable, CustomStringConvertible {
        /// The model id.
        public var model: String
        /// The digest the catalog pins (by configuration or by the first advert).
        public var expected: String
        /// The digest the advert claims.
        public var got: String

        public init(model: String, expected: String, got: String) {
            self.model = model
            self.expected = expected
            self.got = got
        }

        public var description: String { "model \(model) is pinned to \(expected), the advert says \(got)" }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A human-readable explanation naming what failed.
    public var message: String
    /// The conflicting model, for ``Code/digestConflict``.
    public var conflict: DigestConflict?
    /// The underlying error, if any.
    public var cause: (any Error)?

    /// Creates an error.
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: What failed, naming the worker, model or field.
    ///   - conflict: The digest conflict, for ``Code/digestConflict``.
    ///   - cause: The underlying error, if any.
    public init(_ code: Code, _ message: String, conflict: DigestConflict? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.conflict = conflict
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(code): \(message) (cause: \(cause))" }
        return "\(code): \(message)"
    }
}
