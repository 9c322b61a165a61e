import Logging
import Node

/// What the API's controllers share: the served models, the metrics, the request limits, the
/// ledger and the rate limiter.
struct APIServices: Sendable {
    let host: ModelHost
    let metrics: ServerMetrics
    let limits: RequestLimits
    /// The ledger, where this server keeps one (not on a worker: its gateway does).
    let ledger: LedgerAppender?
    let limiter: RateLimiter
    let logger: Logger
    /// Where answers are recorded: the ledger (`serve`), or signed usage statements (a worker).
    var recorder: any AnswerRecorder

    /// With a ledger, answers are recorded in it unless `recorder` says otherwise.
    init(host: ModelHost, metrics: ServerMetrics, limits: RequestLimits, ledger: LedgerAppender, limiter: RateLimiter, logger: Logger) {
        self.init(host: host, metrics: metrics, limits: limits, ledger: ledger, limiter: limiter, logger: logger,
                  recorder: LedgerRecorder(ledger: ledger, metrics: metrics))
    }

    init(host: ModelHost, metrics: ServerMetrics, limits: RequestLimits, ledger: LedgerAppender?, limiter: RateLimiter, logger: Logger,
         recorder: any AnswerRecorder) {
        self.host = host
        self.metrics = metrics
        self.limits = limits
        self.ledger = ledger
        self.limiter = limiter
        self.logger = logger
        self.recorder = recorder
    }
}
