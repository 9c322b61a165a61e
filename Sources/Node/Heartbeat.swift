import Foundation

/// A worker's load, signed and sent to each gateway every few seconds. A gateway routes only to
/// workers it heard from within its silence timeout, and ranks them by this load.
///
/// JSON (signed as a ``SignedDocument``; `type` is `"verity.heartbeat.v1"`):
/// ```
/// {"type": "verity.heartbeat.v1", "worker": "<WorkerID>", "sent_ms": 1767225600000,
///  "active": 3, "queued": 0, "tokens_per_second": 812.5, "advert_sha256": "<base64 of 32 bytes>"}
/// ```
/// `advert_sha256` is the ``SignedDocument/hash`` of the advert the worker currently stands by;
/// a gateway holding another advert answers that the worker must advertise again.
public struct Heartbeat: SignedPayload, Hashable {
    public static let documentType = "verity.heartbeat.v1"

    /// The worker.
    public var worker: WorkerID
    /// When it was sent, in ms since the Unix epoch (each heartbeat must be later than the last).
    public var sentMilliseconds: Int64
    /// Sequences being generated now.
    public var active: Int
    /// Sequences waiting for a slot.
    public var queued: Int
    /// Tokens generated per second recently (all sequences together); 0 when idle.
    public var tokensPerSecond: Double
    /// SHA-256 of the payload of the advert this heartbeat belongs to.
    public var advertHash: Data

    /// Creates a heartbeat; see the properties.
    public init(worker: WorkerID, sentMilliseconds: Int64, active: Int, queued: Int, tokensPerSecond: Double, advertHash: Data) {
        self.worker = worker
        self.sentMilliseconds = sentMilliseconds
        self.active = active
        self.queued = queued
        self.tokensPerSecond = tokensPerSecond
        self.advertHash = advertHash
    }

    enum CodingKeys: String, CodingKey {
        case worker, active, queued
        case sentMilliseconds = "sent_ms"
        case tokensPerSecond = "tokens_per_second"
        case advertHash = "advert_sha256"
    }

    /// Checks the counts (0 to 10⁷), the rate (finite, 0 to 10⁹) and the hash (32 bytes).
    /// - Throws: ``FleetError/Code/malformed`` naming the field.
    public func validate() throws(FleetError) {
        try FieldCheck.range(sentMilliseconds, "sent_ms", 0...Int64.max)
        try FieldCheck.range(active, "active", 0...10_000_000)
        try FieldCheck.range(queued, "queued", 0...10_000_000)
        guard tokensPerSecond.isFinite, (0...1e9).contains(tokensPerSecond) else {
            throw FleetError(.malformed, "tokens_per_second is \(tokensPerSecond), outside 0...1e9")
        }
        try FieldCheck.sha256(advertHash, "advert_sha256")
    }

    /// Verifies a signed heartbeat (``SignedPayload/verify(_:)``) and that it is recent at `now`.
    /// - Parameters:
    ///   - document: The signed heartbeat.
    ///   - now: The verifier's clock, in ms since the Unix epoch.
    ///   - maxAge: How old it may be (a gateway passes its silence timeout).
    ///   - maxClockSkew: How far in the future `sent_ms` may be.
    /// - Throws: As ``SignedPayload/verify(_:)``; ``FleetError/Code/expired`` if it was sent more
    ///   than `maxAge` before `now`; ``FleetError/Code/notYetValid`` if more than `maxClockSkew` after.
    public static func verify(_ document: SignedDocument, now: Int64, maxAge: Duration,
                              maxClockSkew: Duration = .seconds(60)) throws(FleetError) -> VerifiedHeartbeat {
        let verified = try verify(document)
        let sent = verified.payload.sentMilliseconds
        guard sent >= now - maxAge.milliseconds else {
            throw FleetError(.expired, "a heartbeat from worker \(verified.worker) was sent \(now - sent) ms ago "
                             + "(at most \(maxAge.milliseconds) ms)")
        }
        guard sent <= now + maxClockSkew.milliseconds else {
            throw FleetError(.notYetValid, "a heartbeat from worker \(verified.worker) is sent \(sent - now) ms in the future "
                             + "(allowed skew \(maxClockSkew.milliseconds) ms): check the worker's clock")
        }
        return verified
    }
}
