extension WorkerFleet {
    /// Picks the workers a request may go to, best first.
    ///
    /// Only the workers that serve `model` (with its pinned digest, or without a digest) are
    /// looked at. Each must serve `adapter` if one is asked for, stand (advert not expired), have
    /// been heard from within the silence timeout, have a breaker that is not open (a half-open
    /// one is a probe candidate unless its probe is out), and meet every constraint. The rest are
    /// ranked by `policy` (see ``RoutingPolicy``), ties broken by load, price and worker id. The
    /// worker that last served `affinityKey` goes first if it qualifies and its load is below
    /// ``FleetConfiguration/affinityMaxLoad``. At most ``FleetConfiguration/maxCandidates`` are returned.
    /// - Parameters:
    ///   - model: The model id requested.
    ///   - adapter: The adapter id requested, if any.
    ///   - constraints: The request's constraints (with the account's defaults already applied).
    ///   - policy: How to rank.
    ///   - affinityKey: A hash of the conversation's prefix (for example of its earlier messages), or nil.
    ///   - now: The gateway's clock.
    /// - Returns: The candidates, or ``NoWorker`` saying which workers serve the model and what
    ///   excluded each.
    public func candidates(model: String, adapter: String? = nil, constraints: RoutingConstraints = RoutingConstraints(),
                           policy: RoutingPolicy = .cheapest, affinityKey: String? = nil, now: Int64) -> Result<[Candidate], NoWorker> {
        let prepared = RoutingConstraints.Prepared(constraints)
        let silence = configuration.silenceTimeout.milliseconds
        return state.withLock { state in
            let serving = state.byModel[model] ?? []
            var qualified: [Ranked] = []
            qualified.reserveCapacity(serving.count)
            for slot in serving {
                let check = Self.check(slot, in: state, model: model, adapter: adapter, prepared: prepared, now: now, silence: silence,
                                       naming: false)
                guard check.reason == nil else { continue }
                let v = state.vitals[slot]
                qualified.append(Ranked(slot: slot, score: 0, load: v.load, outstanding: max(v.reported, v.inFlight), price: v.price,
                                        rate: v.tokensPerSecond, probe: check.probe))
            }
            guard !qualified.isEmpty else {
                return .failure(Self.noWorker(model: model, adapter: adapter, constraints: constraints, serving: serving, in: state,
                                              prepared: prepared, now: now, silence: silence))
            }
            let affine = affinityKey.flatMap { state.affinity.worker(for: $0) }.flatMap { state.slots[$0] }
            let (best, promoted) = rank(&qualified, policy: policy, affine: affine, in: state)
            return .success(best.map { ranked in
                let entry = state.entry(ranked.slot)
                return Candidate(worker: entry.worker, advert: entry.advert.payload, advertHash: entry.advert.hash,
                                 model: entry.models[model]!, load: ranked.load, expectedTokensPerSecond: ranked.rate,
                                 score: ranked.score, isAffine: ranked.slot == promoted, isProbe: ranked.probe)
            })
        }
    }

    /// A qualified worker as the ranking sees it: numbers and a slot, nothing reference-counted.
    struct Ranked {
        var slot: Int
        var score: Double
        var load: Double
        var outstanding: Int
        var price: Int64
        var rate: Double
        var probe: Bool
    }

    /// Why the worker in `slot` may not take the request, or nil; reads the entry only for a
    /// constraint on names, an adapter, or (when `naming`, for a ``NoWorker``) to name the
    /// currency of a price it excludes.
    static func check(_ slot: Int, in state: FleetState, model: String, adapter: String?, prepared: RoutingConstraints.Prepared,
                      now: Int64, silence: Int64, naming: Bool = true) -> (reason: Exclusion?, probe: Bool) {
        let v = state.vitals[slot]
        let availability = v.availability(now: now, silence: silence)
        if let reason = availability.reason { return (reason, false) }
        if let maxPrice = prepared.maxPrice, v.price > maxPrice {
            let currency = naming ? state.entry(slot).advert.payload.currency : ""
            return (.maxPricePerHour(limitMicros: maxPrice, priceMicros: v.price, currency: currency), false)
        }
        if adapter != nil || prepared.constrainsNames {
            let entry = state.entry(slot)
            if let adapter, entry.models[model]?.adapters.contains(adapter) != true { return (.adapter(adapter), false) }
            if let reason = prepared.exclusion(entry) { return (reason, false) }
        }
        return (nil, availability.probe)
    }

    /// The failure of a decision: every serving worker with what excluded it, and the workers
    /// whose digest for the model conflicts with the pinned one.
    static func noWorker(model: String, adapter: String?, constraints: RoutingConstraints, serving: Set<Int>, in state: FleetState,
                         prepared: RoutingConstraints.Prepared, now: Int64, silence: Int64) -> NoWorker {
        let excluded = serving.compactMap { slot in
            check(slot, in: state, model: model, adapter: adapter, prepared: prepared, now: now, silence: silence).reason
                .map { (worker: state.entry(slot).worker, reason: $0) }
        }.sorted { $0.worker < $1.worker }
        let conflicting = (state.conflicting[model] ?? []).compactMap { slot in
            let entry = state.entry(slot)
            return entry.skipped.first { $0.model == model }.map { (worker: entry.worker, conflict: $0) }
        }.sorted { $0.worker < $1.worker }
        let used = Set(excluded.compactMap(\.reason.constraint))
        return NoWorker(model: model, adapter: adapter, serving: serving.count, excluded: excluded, conflicting: conflicting,
                        constraints: ["max_price_per_hour", "providers", "gpus", "regions"].filter(used.contains), requested: constraints)
    }

    /// Scores the qualified workers and returns the best ``FleetConfiguration/maxCandidates`` in
    /// order, with the affine worker first if it qualified and is not too loaded (then also
    /// returned as `promoted`).
    func rank(_ qualified: inout [Ranked], policy: RoutingPolicy, affine: Int?, in state: FleetState) -> (best: [Ranked], promoted: Int?) {
        var known = qualified.compactMap { $0.rate > 0 ? $0.rate : nil }
        let neutral = known.isEmpty ? 1 : Self.median(&known)
        for i in qualified.indices {
            if qualified[i].rate <= 0 { qualified[i].rate = neutral }
            let r = qualified[i]
            switch policy {
            case .cheapest: qualified[i].score = Double(r.price) / r.rate
            case .fastest: qualified[i].score = -(r.rate / Double(max(1, r.outstanding)))
            case .leastLoaded: qualified[i].score = r.load
            }
        }
        func precedes(_ a: Ranked, _ b: Ranked) -> Bool {
            if a.score != b.score { return a.score < b.score }
            if a.load != b.load { return a.load < b.load }
            if a.price != b.price { return a.price < b.price }
            return state.entry(a.slot).worker < state.entry(b.slot).worker
        }
        let limit = max(1, configuration.maxCandidates)
        var best: [Ranked] = []
        best.reserveCapacity(limit + 1)
        // Partial selection: about one comparison per worker, at most `limit`.
        for candidate in qualified {
            if best.count == limit, !precedes(candidate, best[limit - 1]) { continue }
            let at = best.firstIndex { precedes(candidate, $0) } ?? best.endIndex
            best.insert(candidate, at: at)
            if best.count > limit { best.removeLast() }
        }
        if let affine, let first = qualified.first(where: { $0.slot == affine }), first.load < configuration.affinityMaxLoad {
            best.removeAll { $0.slot == affine }
            best.insert(first, at: 0)
            if best.count > limit { best.removeLast() }
            return (best, affine)
        }
        return (best, nil)
    }

    /// The median of non-empty values (the upper one of an even count), in O(n) on average
    /// (quickselect); reorders `values`.
    static func median(_ values: inout [Double]) -> Double {
        let k = values.count / 2
        var low = 0, high = values.count - 1
        while low < high {
            let pivot = values[(low + high) / 2]
            var i = low, j = high
            while i <= j {
                while values[i] < pivot { i += 1 }
                while values[j] > pivot { j -= 1 }
                if i <= j {
                    values.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if k <= j { high = j } else if k >= i { low = i } else { return values[k] }
        }
        return values[k]
    }
}
