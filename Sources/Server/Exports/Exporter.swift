import Hummingbird
import Node

/// Who asks the exports API: the operator (the admin key, which may export anything served and
/// sees every job), or a caller with a key the other `/v1` routes accept (an account's key, an
/// `--api-key` key, or none on a server without keys), who may export only what the operator
/// marked exportable and sees only its own jobs.
enum Exporter: Sendable {
    case admin
    case caller(Caller, quota: String)

    var isAdmin: Bool {
        if case .admin = self { return true }
        return false
    }

    /// Whose jobs these are: the admin's, an account's (any of its keys), or one static key's (or
    /// all keyless callers').
    var owner: String {
        switch self {
        case .admin: "admin"
        case .caller(.account(let account), _): "account:" + account.address.description
        case .caller(.anonymous, let quota): "key:" + quota
        }
    }

    /// The sender the ledger record names: the account, or anonymous (sealed to the operator).
    var caller: Caller {
        switch self {
        case .admin: .anonymous
        case .caller(let caller, _): caller
        }
    }

    /// Whether this exporter may see (and download, cancel, delete) `record`.
    func sees(_ record: ExportRecord) -> Bool { isAdmin || record.owner == owner }

    /// The exporter of a request: the admin key (compared in constant time with each), else the
    /// keys the `/v1` routes accept, with one request taken from the key's rate limit.
    static func identify(_ request: Request, adminKeys: Set<String>, authenticator: Authenticator,
                         limiter: RateLimiter) throws(APIError) -> Exporter {
        if let header = request.headers[.authorization] {
            let token = Array((header.hasPrefix("Bearer ") ? String(header.dropFirst(7)) : header).utf8)
            var admitted = false
            for key in adminKeys where Authenticator.constantTimeEqual(Array(key.utf8), token) { admitted = true }
            if admitted { return .admin }
        }
        let (caller, quota) = try authenticator.authenticate(request)
        do { try limiter.admitRequest(quota) } catch { throw APIError.rateLimited(error) }
        return .caller(caller, quota: quota.key)
    }
}
