import Testing
@testable import Node

@Suite("Rate limits: per-key token buckets")
struct RateLimiterTests {
    @Test("a key gets its requests per minute, then a refusal with a wait; another key is unaffected")
    func requests() throws {
        let limiter = RateLimiter()
        let alice = RateLimiter.Quota(key: "alice", limits: RateLimits(requestsPerMinute: 2))
        try limiter.admitRequest(alice)
        try limiter.admitRequest(alice)
        #expect { try limiter.admitRequest(alice) } throws: { (($0 as? RateLimiter.Refusal)?.retryAfter ?? 0) >= 1 }
        try limiter.admitRequest(RateLimiter.Quota(key: "bob", limits: RateLimits(requestsPerMinute: 2)))
        // No limit, no refusal.
        for _ in 0..<100 { try limiter.admitRequest(RateLimiter.Quota(key: "carol", limits: RateLimits())) }
    }

    @Test("prompts take tokens when admitted, completions when they end; a debt makes the next wait")
    func tokens() throws {
        let limiter = RateLimiter()
        let quota = RateLimiter.Quota(key: "k", limits: RateLimits(tokensPerMinute: 1000))
        try limiter.admitTokens(quota, prompt: 600)
        #expect(throws: RateLimiter.Refusal.self) { try limiter.admitTokens(quota, prompt: 500) }
        try limiter.admitTokens(quota, prompt: 300)
        limiter.charge(quota, completion: 500)   // 1400 of 1000 used: in debt
        #expect { try limiter.admitTokens(quota, prompt: 1) } throws: { (($0 as? RateLimiter.Refusal)?.retryAfter ?? 0) >= 24 }
    }

    @Test("a prompt larger than a minute's allowance is admitted on a full bucket only")
    func largePrompt() throws {
        let limiter = RateLimiter()
        let quota = RateLimiter.Quota(key: "k", limits: RateLimits(tokensPerMinute: 100))
        try limiter.admitTokens(quota, prompt: 5000)
        #expect(throws: RateLimiter.Refusal.self) { try limiter.admitTokens(quota, prompt: 5000) }
    }

    @Test("a key's own limits win over the defaults; unset ones take the defaults")
    func over() {
        let defaults = RateLimits(requestsPerMinute: 60, tokensPerMinute: 10_000)
        #expect(RateLimits(requestsPerMinute: 5).over(defaults) == RateLimits(requestsPerMinute: 5, tokensPerMinute: 10_000))
        #expect(RateLimits().over(defaults) == defaults)
    }
}
