import Foundation
import Synchronization

/// How much one API key may ask for: requests per minute and tokens (prompt plus completion) per
/// minute; nil is no limit.
public struct RateLimits: Sendable, Hashable {
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?

    public init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
    }

    /// These limits, with `defaults` where these set none.
    public func over(_ defaults: RateLimits) -> RateLimits {
        RateLimits(requestsPerMinute: requestsPerMinute ?? defaults.requestsPerMinute,
                   tokensPerMinute: tokensPerMinute ?? defaults.tokensPerMinute)
    }

    public var isUnlimited: Bool { requestsPerMinute == nil && tokensPerMinute == nil }
}

/// Per-key token buckets: each limit is a bucket holding up to a minute's allowance, refilled
/// continuously. A request takes one from the requests bucket when it arrives; a completion takes
/// its prompt tokens when it is admitted (it must fit what the bucket holds, or the whole bucket
/// for a prompt larger than a minute's allowance) and its completion tokens when it ends, which
/// may leave the bucket in debt: the next request then waits.
public final class RateLimiter: Sendable {
    /// Who is limited, and by how much.
    public struct Quota: Sendable, Hashable {
        /// The bucket's key: an API key's id, or a name for keyless callers.
        public var key: String
        public var limits: RateLimits

        public init(key: String, limits: RateLimits) {
            self.key = key
            self.limits = limits
        }
    }

    /// A refusal: try again after this many seconds (at least 1).
    public struct Refusal: Error, Sendable {
        public var retryAfter: Int
        public var message: String
    }

    private struct Bucket {
        var requests: Double
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let buckets = Mutex<[String: Bucket]>([:])

    public init() {}

    /// Takes one request from the quota's bucket, or refuses.
    public func admitRequest(_ quota: Quota) throws(Refusal) {
        guard let limit = quota.limits.requestsPerMinute else { return }
        try update(quota) { bucket throws(Refusal) in
            guard bucket.requests >= 1 else {
                throw Refusal(retryAfter: Self.wait(for: 1 - bucket.requests, perMinute: limit),
                              message: "Rate limit reached: \(limit) requests per minute for this key.")
            }
            bucket.requests -= 1
        }
    }

    /// Takes a completion's prompt tokens, or refuses.
    public func admitTokens(_ quota: Quota, prompt: Int) throws(Refusal) {
        guard let limit = quota.limits.tokensPerMinute else { return }
        try update(quota) { bucket throws(Refusal) in
            let needed = Double(min(prompt, limit))
            guard bucket.tokens >= needed else {
                throw Refusal(retryAfter: Self.wait(for: needed - bucket.tokens, perMinute: limit),
                              message: "Rate limit reached: \(limit) tokens per minute for this key.")
            }
            bucket.tokens -= Double(prompt)
        }
    }

    /// Takes the tokens a completion generated.
    public func charge(_ quota: Quota, completion: Int) {
        guard quota.limits.tokensPerMinute != nil, completion > 0 else { return }
        try? update(quota) { bucket throws(Refusal) in bucket.tokens -= Double(completion) }
    }

    private func update(_ quota: Quota, _ body: (inout Bucket) throws(Refusal) -> Void) throws(Refusal) {
        let now = ContinuousClock.now
        let requestCap = Double(quota.limits.requestsPerMinute ?? 0), tokenCap = Double(quota.limits.tokensPerMinute ?? 0)
        try buckets.withLock { (all: inout [String: Bucket]) throws(Refusal) in
            var bucket = all[quota.key] ?? Bucket(requests: requestCap, tokens: tokenCap, updated: now)
            let elapsed = (now - bucket.updated).seconds
            bucket.requests = min(requestCap, bucket.requests + elapsed * requestCap / 60)
            bucket.tokens = min(tokenCap, bucket.tokens + elapsed * tokenCap / 60)
            bucket.updated = now
            defer {
                all[quota.key] = bucket
                if all.count > 100_000 { Self.prune(&all, now: now) }
            }
            try body(&bucket)
        }
    }

    /// Forgets buckets untouched for over a minute: they are full again.
    private static func prune(_ all: inout [String: Bucket], now: ContinuousClock.Instant) {
        all = all.filter { now - $0.value.updated < .seconds(60) }
    }

    private static func wait(for amount: Double, perMinute limit: Int) -> Int {
        max(1, Int((amount * 60 / Double(limit)).rounded(.up)))
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
