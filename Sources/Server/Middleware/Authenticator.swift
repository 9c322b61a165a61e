import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Ledger
import Node

/// Bearer-key authentication against the `--api-key` keys and the accounts' keys.
///
/// A key is required once either set is non-empty (checked per request, so the first key issued
/// with `verity keys create` protects a running server, and a revoked key stops working at once).
struct Authenticator: Sendable {
    let staticKeys: Set<String>
    let registry: AccountRegistry
    /// Rate limits for keys that set none of their own (and for keyless requests).
    let defaultLimits: RateLimits

    /// Who sent the request, and the quota it counts against: an account key's own (its limits
    /// over the defaults), a static key's, or one shared by keyless requests.
    func authenticate(_ request: Request) throws(APIError) -> (Caller, RateLimiter.Quota) {
        // A bearer token, or (as Anthropic's SDKs send it) `x-api-key` when there is none.
        let token = request.headers[.authorization].map { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : $0 }
            ?? request.headers[Self.apiKeyHeader]
        if let token {
            // Compare against every static key in full, so timing says nothing about how much matched.
            var found = false
            for key in staticKeys where Self.constantTimeEqual(Array(key.utf8), Array(token.utf8)) { found = true }
            if found {
                let id = SHA256.hash(data: Data(token.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
                return (.anonymous, RateLimiter.Quota(key: "static:" + id, limits: defaultLimits))
            }
            if let (account, key) = try lookUp(token) {
                return (.account(account), RateLimiter.Quota(key: key.keyID, limits: key.limits.over(defaultLimits)))
            }
        }
        let keyless = (Caller.anonymous, RateLimiter.Quota(key: "keyless", limits: defaultLimits))
        guard try required() else { return keyless }
        guard token != nil else {
            throw APIError.unauthorized("You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.")
        }
        throw APIError.unauthorized("Incorrect API key provided.")
    }

    /// Whether a request must carry a key: some static key is configured, or some account key is
    /// active.
    func required() throws(APIError) -> Bool {
        if !staticKeys.isEmpty { return true }
        do { return try registry.hasActiveKeys() } catch {
            throw APIError.server("The account registry cannot be read: \(error)")
        }
    }

    private func lookUp(_ token: String) throws(APIError) -> (AccountRegistry.RegisteredAccount, AccountRegistry.KeyInfo)? {
        do { return try registry.key(token) } catch {
            throw APIError.server("The account registry cannot be read: \(error)")
        }
    }

    static let apiKeyHeader = HTTPField.Name("x-api-key")!

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) { diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0) }
        return diff == 0
    }
}
