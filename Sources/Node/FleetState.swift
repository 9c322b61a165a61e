/// What ``WorkerFleet`` keeps behind its lock, laid out for routing.
///
/// Each worker has a slot: its rich ``Entry`` (the advert and what was accepted from it) and its
/// ``Vitals`` (plain numbers: price, capacity, expiry, last contact, load, rate, breaker) in two
/// arrays at the same index. The per-model index maps a model id to slots, so a routing decision
/// reads only the vitals of the workers serving the model, with no hashing of worker ids and no
/// reference counting, and touches an entry only for a constraint on names or to build one of the
/// few candidates it returns. Freed slots are reused.
struct FleetState {
    /// One worker's advert and what the catalog made of it.
    struct Entry {
        var worker: WorkerID
        var advert: VerifiedAdvert
        /// Accepted models by id.
        var models: [String: Advert.Model]
        /// Models skipped for a digest conflict.
        var skipped: [FleetError.DigestConflict]
        /// Lowercased once, for the case-insensitive constraints.
        var lowercasedProvider: String
        var lowercasedGPU: String
        var lowercasedRegion: String
        var heartbeat: Heartbeat?
        var heartbeatReceived: Int64?

        init(_ advert: VerifiedAdvert, models: [String: Advert.Model], skipped: [FleetError.DigestConflict]) {
            let payload = advert.payload
            worker = payload.worker
            self.advert = advert
            self.models = models
            self.skipped = skipped
            lowercasedProvider = payload.provider.lowercased()
            lowercasedGPU = payload.hardware.gpu.lowercased()
            lowercasedRegion = payload.region.lowercased()
        }
    }

    /// One worker's numbers, all a routing decision reads for a worker that qualifies.
    struct Vitals {
        var price: Int64
        var capacity: Int
        var expires: Int64
        /// The last time the worker was heard from (advert or heartbeat).
        var lastContact: Int64
        /// Active + queued sequences in the last heartbeat.
        var reported = 0
        /// Tokens per second in the last heartbeat (0: unknown).
        var tokensPerSecond = 0.0
        /// The gateway's own requests in flight to the worker.
        var inFlight = 0
        var breaker: CircuitBreaker

        /// (active + queued) / capacity, or the gateway's own count in flight when it is higher.
        var load: Double { Double(max(reported, inFlight)) / Double(capacity) }

        /// Why the worker cannot take a request now (advert expired, silent, breaker open or its
        /// probe out), or nil if it can; `probe` when the request would be its half-open probe.
        func availability(now: Int64, silence: Int64) -> (reason: Exclusion?, probe: Bool) {
            if expires <= now { return (.expired(atMilliseconds: expires), false) }
            if lastContact < now - silence { return (.silent(sinceMilliseconds: lastContact), false) }
            switch breaker.state(now: now) {
            case .open(let until): return (.breakerOpen(untilMilliseconds: until), false)
            case .halfOpen(probing: true): return (.probeInFlight, false)
            case .halfOpen(probing: false): return (nil, true)
            case .closed: return (nil, false)
            }
        }
    }

    private(set) var entries: [Entry?] = []
    var vitals: [Vitals] = []
    private var free: [Int] = []
    private(set) var slots: [WorkerID: Int] = [:]
    /// Model id → the slots of the workers routed for it.
    private(set) var byModel: [String: Set<Int>] = [:]
    /// Model id → the slots of the workers that advertise it with a conflicting digest.
    private(set) var conflicting: [String: Set<Int>] = [:]
    /// Digests pinned by first adverts (the configuration's pins take precedence).
    var learnedPins: [String: String] = [:]
    var affinity: AffinityMap

    init(affinityCapacity: Int) {
        affinity = AffinityMap(capacity: affinityCapacity)
    }

    /// How many workers are held.
    var count: Int { slots.count }

    /// The entry in a slot that is in use.
    func entry(_ slot: Int) -> Entry { entries[slot]! }

    /// Every worker's slot.
    var occupied: Dictionary<WorkerID, Int>.Values { slots.values }

    /// Makes `entry` its worker's current one, in the worker's slot or a free one, and indexes it.
    mutating func put(_ entry: Entry, vitals newVitals: Vitals) {
        remove(entry.worker)
        let slot: Int
        if let reused = free.popLast() {
            slot = reused
            entries[slot] = entry
            vitals[slot] = newVitals
        } else {
            slot = entries.count
            entries.append(entry)
            vitals.append(newVitals)
        }
        slots[entry.worker] = slot
        for id in entry.models.keys { byModel[id, default: []].insert(slot) }
        for conflict in entry.skipped { conflicting[conflict.model, default: []].insert(slot) }
    }

    /// Records a heartbeat in a slot.
    mutating func record(_ heartbeat: Heartbeat, at now: Int64, slot: Int) {
        entries[slot]!.heartbeat = heartbeat
        entries[slot]!.heartbeatReceived = now
        vitals[slot].lastContact = max(vitals[slot].lastContact, now)
        vitals[slot].reported = heartbeat.active + heartbeat.queued
        vitals[slot].tokensPerSecond = heartbeat.tokensPerSecond
    }

    /// Removes a worker and its index entries, freeing its slot.
    mutating func remove(_ worker: WorkerID) {
        guard let slot = slots.removeValue(forKey: worker), let entry = entries[slot] else { return }
        for model in entry.models.keys { Self.drop(slot, model, from: &byModel) }
        for conflict in entry.skipped { Self.drop(slot, conflict.model, from: &conflicting) }
        entries[slot] = nil
        free.append(slot)
    }

    private static func drop(_ slot: Int, _ model: String, from index: inout [String: Set<Int>]) {
        index[model]?.remove(slot)
        if index[model]?.isEmpty == true { index[model] = nil }
    }
}
