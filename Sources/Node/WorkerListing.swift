import Foundation

/// One worker as `GET /v1/workers` and `verity workers list` show it: its advert, how it was
/// last heard from, its breaker, and whether a request could go to it now, and if not, why.
public struct WorkerListing: Sendable {
    /// The worker.
    public var worker: WorkerID
    /// Its current advert and the advert's hash.
    public var advert: Advert
    public var advertHash: Data
    /// The models it is routed for (ids, sorted); a model without a digest is matched by id alone.
    public var models: [Advert.Model]
    /// Its models skipped because their digest differs from the pinned one.
    public var skipped: [FleetError.DigestConflict]
    /// Its last heartbeat, if any, and when the gateway received it.
    public var lastHeartbeat: Heartbeat?
    public var lastHeartbeatReceivedMilliseconds: Int64?
    /// The last time it was heard from (advert or heartbeat).
    public var lastContactMilliseconds: Int64
    /// Its breaker.
    public var breaker: BreakerState
    /// The gateway's requests in flight to it.
    public var inFlight: Int
    /// Why no request can go to it now; nil when it is routable.
    public var unavailable: Exclusion?

    /// Whether a request could go to it now (for a model it serves, within no constraints).
    public var routable: Bool { unavailable == nil }

    /// The listing as JSON: `worker`, `endpoint`, `tls_spki_sha256` and `tls_certificate` (base64 or null), `provider`,
    /// `region`, `price_per_hour` (currency units), `price_per_hour_micros`, `currency`,
    /// `hardware` {`gpu`, `gpu_count`, `gpu_memory_mib`, `cpu`}, `capacity`, `version`,
    /// `advert_sha256` (base64), `issued_ms`, `expires_ms`, `models` [{`id`, `source`, `digest`,
    /// `context_length`, `adapters`, `matched_by_id_only`}], `skipped_models` [{`model`,
    /// `pinned_digest`, `advertised_digest`}], `last_heartbeat` ({`sent_ms`, `received_ms`,
    /// `active`, `queued`, `tokens_per_second`} or null), `last_contact_ms`, `in_flight`,
    /// `breaker` {`state`: closed|open|half_open, `consecutive_failures` or `open_until_ms` or
    /// `probing`}, `routable`, `not_routable_because` (a sentence or null).
    public var json: JSON {
        let models: [JSON] = models.map { model in
            ["id": .string(model.id), "source": .string(model.source), "digest": .optional(model.digest),
             "context_length": .int(model.contextLength), "adapters": .array(model.adapters.map(JSON.string)),
             "matched_by_id_only": .bool(model.digest == nil)]
        }
        let skipped: [JSON] = skipped.map {
            ["model": .string($0.model), "pinned_digest": .string($0.expected), "advertised_digest": .string($0.got)]
        }
        let heartbeat: JSON = lastHeartbeat.map { h in
            ["sent_ms": .int(Int(h.sentMilliseconds)), "received_ms": lastHeartbeatReceivedMilliseconds.map { .int(Int($0)) } ?? .null,
             "active": .int(h.active), "queued": .int(h.queued), "tokens_per_second": .double(h.tokensPerSecond)]
        } ?? .null
        var breakerJSON: [(String, JSON)] = [("state", .string(breaker.name))]
        switch breaker {
        case .closed(let failures): breakerJSON.append(("consecutive_failures", .int(failures)))
        case .open(let until): breakerJSON.append(("open_until_ms", .int(Int(until))))
        case .halfOpen(let probing): breakerJSON.append(("probing", .bool(probing)))
        }
        let hardware: JSON = ["gpu": .string(advert.hardware.gpu), "gpu_count": .int(advert.hardware.gpuCount),
                              "gpu_memory_mib": .int(advert.hardware.gpuMemoryMiB), "cpu": .string(advert.hardware.cpu)]
        return .object([
            ("worker", .string(worker.description)), ("endpoint", .string(advert.endpoint)),
            ("tls_spki_sha256", .optional(advert.tlsSPKISHA256?.base64EncodedString())),
            ("tls_certificate", .optional(advert.tlsCertificate?.base64EncodedString())),
            ("provider", .string(advert.provider)), ("region", .string(advert.region)),
            ("price_per_hour", .double(Double(advert.pricePerHourMicros) / 1_000_000)),
            ("price_per_hour_micros", .int(Int(advert.pricePerHourMicros))), ("currency", .string(advert.currency)),
            ("hardware", hardware), ("capacity", .int(advert.capacity)), ("version", .string(advert.version)),
            ("advert_sha256", .string(advertHash.base64EncodedString())),
            ("issued_ms", .int(Int(advert.issuedMilliseconds))), ("expires_ms", .int(Int(advert.expiresMilliseconds))),
            ("models", .array(models)), ("skipped_models", .array(skipped)), ("last_heartbeat", heartbeat),
            ("last_contact_ms", .int(Int(lastContactMilliseconds))), ("in_flight", .int(inFlight)),
            ("breaker", .object(breakerJSON)), ("routable", .bool(routable)),
            ("not_routable_because", .optional(unavailable?.description)),
        ])
    }
}

extension WorkerFleet {
    /// Every worker the fleet holds, ordered by worker id.
    /// - Parameter now: The gateway's clock (for expiry, silence and breakers).
    public func listing(now: Int64) -> [WorkerListing] {
        let silence = configuration.silenceTimeout.milliseconds
        return state.withLock { state in
            state.occupied.map { slot in
                let entry = state.entry(slot), vitals = state.vitals[slot]
                return WorkerListing(worker: entry.worker, advert: entry.advert.payload, advertHash: entry.advert.hash,
                                     models: entry.models.values.sorted { $0.id < $1.id }, skipped: entry.skipped,
                                     lastHeartbeat: entry.heartbeat, lastHeartbeatReceivedMilliseconds: entry.heartbeatReceived,
                                     lastContactMilliseconds: vitals.lastContact, breaker: vitals.breaker.state(now: now),
                                     inFlight: vitals.inFlight, unavailable: vitals.availability(now: now, silence: silence).reason)
            }
        }.sorted { $0.worker < $1.worker }
    }
}
