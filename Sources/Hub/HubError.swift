/// The error type of the hub client: a ``Code`` to switch on and a message a user can act on
/// (it names the repo, revision or file, and what the hub said).
public struct HubError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        public var description: String { raw }

        /// A model reference, revision or path that is not a valid hub spelling.
        public static let invalidReference = Code("invalidReference")
        /// The hub has no such repository (or hides a private one from an unauthenticated caller).
        public static let repoNotFound = Code("repoNotFound")
        /// 401/403: a gated or private repository and no token, or a token the hub refused.
        public static let unauthorized = Code("unauthorized")
        /// The repository exists but the branch, tag or commit does not.
        public static let revisionNotFound = Code("revisionNotFound")
        /// No file in the repository matches the request (the message lists the files there are).
        public static let noMatchingFile = Code("noMatchingFile")
        /// A downloaded file's SHA-256 (or git blob id) differs from the hub's.
        public static let checksumMismatch = Code("checksumMismatch")
        /// Not enough free space for the download, or ENOSPC while writing.
        public static let diskFull = Code("diskFull")
        /// HF_HUB_OFFLINE is set and the model is not in the cache.
        public static let offline = Code("offline")
        /// The endpoint cannot be reached (and the model is not cached).
        public static let network = Code("network")
        /// A file system failure in the cache.
        public static let io = Code("io")
        /// The endpoint answered with something that is not the hub's API (bad status, JSON or headers).
        public static let server = Code("server")
    }

    /// What kind of failure this is.
    public let code: Code
    /// A one-paragraph explanation for the user.
    public let message: String
    /// The underlying error, if any (a transport or file-system error).
    public let cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}
