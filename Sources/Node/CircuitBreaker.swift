/// Where a worker's circuit breaker stands.
public enum BreakerState: Sendable, Hashable, CustomStringConvertible {
    /// Requests go through; `failures` in a row so far.
    case closed(failures: Int)
    /// Skipped until the time given (ms since the Unix epoch).
    case open(untilMilliseconds: Int64)
    /// One probe request may go through; `probing` when it has been handed out and not yet reported.
    case halfOpen(probing: Bool)

    public var description: String {
        switch self {
        case .closed(let failures): failures == 0 ? "closed" : "closed (\(failures) failures in a row)"
        case .open(let until): "open until \(until) ms"
        case .halfOpen(let probing): probing ? "half-open (probe in flight)" : "half-open"
        }
    }

    /// `closed`, `open` or `half_open`.
    public var name: String {
        switch self {
        case .closed: "closed"
        case .open: "open"
        case .halfOpen: "half_open"
        }
    }
}

/// One worker's circuit breaker: after `threshold` failures in a row it opens for `openFor`
/// milliseconds (the worker is skipped); then it is half-open and lets one probe through; the
/// probe's success closes it, its failure opens it again. A probe that is never reported is given
/// up after another `openFor`, so a lost report cannot strand the worker.
struct CircuitBreaker: Sendable {
    let threshold: Int
    let openFor: Int64
    private(set) var consecutiveFailures = 0
    /// Set while open or half-open: the end of the open period.
    private var openUntil: Int64?
    /// When the half-open probe was handed out.
    private var probeSince: Int64?

    init(threshold: Int, openFor: Int64) {
        self.threshold = max(1, threshold)
        self.openFor = openFor
    }

    func state(now: Int64) -> BreakerState {
        guard let openUntil else { return .closed(failures: consecutiveFailures) }
        if now < openUntil { return .open(untilMilliseconds: openUntil) }
        if let probeSince, now - probeSince < openFor { return .halfOpen(probing: true) }
        return .halfOpen(probing: false)
    }

    /// Whether a request may go to the worker now; a half-open breaker hands out its one probe.
    mutating func begin(now: Int64) -> Bool {
        switch state(now: now) {
        case .closed: return true
        case .open, .halfOpen(probing: true): return false
        case .halfOpen(probing: false):
            probeSince = now
            return true
        }
    }

    mutating func success() {
        consecutiveFailures = 0
        openUntil = nil
        probeSince = nil
    }

    mutating func failure(now: Int64) {
        consecutiveFailures += 1
        probeSince = nil
        if openUntil != nil || consecutiveFailures >= threshold { openUntil = now + openFor }
    }

    /// A request that ended without saying anything about the worker (the client left): a probe
    /// it carried is released for the next request.
    mutating func abandoned() { probeSince = nil }
}
