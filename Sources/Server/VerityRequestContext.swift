import Foundation
import Hummingbird
import NIOCore
import Node

/// The request context: Hummingbird's core storage, the authenticated caller, and the connection
/// the request came on (to notice a client that goes away before its answer is ready).
struct VerityRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var caller = Caller.anonymous
    /// On a worker: the gateway's request id for this job (its record id), which the answer's
    /// ids and usage statement repeat (set by ``JobAuthMiddleware``).
    var jobRequestID: String?
    /// On a worker: the advert hash the gateway routed the job by (`Verity-Advert`, base64).
    var jobAdvertHash: Data?
    /// The rate-limit quota the caller's requests count against (set by ``AuthMiddleware``).
    var quota = RateLimiter.Quota(key: "keyless", limits: RateLimits())
    /// The connection (a test channel in the in-process router tests).
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
