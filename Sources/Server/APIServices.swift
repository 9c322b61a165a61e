import Logging
import Node

/// What the API's controllers share: the served models, the metrics, the request limits, the
/// ledger and the rate limiter.
struct APIServices: Sendable {
    let host: ModelHost
    let metrics: ServerMetrics
    let limits: RequestLimits
    let ledger: LedgerAppender
    let limiter: RateLimiter
    let logger: Logger
}
