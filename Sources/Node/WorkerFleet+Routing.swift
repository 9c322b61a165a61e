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
            var qualified: [Candidate] = []
            qualified.reserveCapacity(serving.count)
            var excluded: [(worker: WorkerID, reason: Exclusion)] = []
            for worker in serving {
                guard let entry = state.workers[worker], let served = entry.models[model] else { continue }
                let advert = entry.advert.payload
                let availability = entry.availability(now: now, silence: silence)
                var reason = availability.reason
                if let adapter, !served.adapters.contains(adapter) {
                    reason = .adapter(adapter)
                } else if reason == nil {
                    reason = prepared.exclusion(advert, lowercasedGPU: entry.lowercasedGPU)
                }
                if let reason {
                    excluded.append((worker, reason))
                    continue
                }
                let perSecond = entry.heartbeat?.tokensPerSecond ?? 0
                qualified.append(Candidate(worker: worker, advert: advert, advertHash: entry.advert.hash, model: served,
                                           load: entry.load, expectedTokensPerSecond: perSecond, score: 0,
                                           isAffine: false, isProbe: availability.probe))
            }
            guard !qualified.isEmpty else {
                excluded.sort { $0.worker < $1.worker }
                let conflicting = (state.conflicting[model] ?? []).sorted().compactMap { worker in
                    state.workers[worker]?.skipped.first { $0.model == model }.map { (worker: worker, conflict: $0) }
                }
                let names = ["max_price_per_hour", "providers", "gpus", "regions"]
                let used = Set(excluded.compactMap(\.reason.constraint))
                return .failure(NoWorker(model: model, adapter: adapter, serving: serving.count, excluded: excluded,
                                         conflicting: conflicting, constraints: names.filter(used.contains), requested: constraints))
            }
            var affine: WorkerID?
            if let affinityKey, let worker = state.affinity.worker(for: affinityKey) { affine = worker }
            return .success(rank(qualified, policy: policy, affine: affine))
        }
    }

    /// Scores and orders the qualified candidates, keeping the best ``FleetConfiguration/maxCandidates``.
    func rank(_ qualified: [Candidate], policy: RoutingPolicy, affine: WorkerID?) -> [Candidate] {
        let known = qualified.map(\.expectedTokensPerSecond).filter { $0 > 0 }.sorted()
        let neutral = known.isEmpty ? 1 : known[known.count / 2]
        var scored = qualified
        for i in scored.indices {
            if scored[i].expectedTokensPerSecond <= 0 { scored[i].expectedTokensPerSecond = neutral }
            let c = scored[i]
            switch policy {
            case .cheapest: scored[i].score = Double(c.advert.pricePerHourMicros) / c.expectedTokensPerSecond
            case .fastest:
                let active = Double(max(1, c.load * Double(c.advert.capacity)))
                scored[i].score = -(c.expectedTokensPerSecond / active)
            case .leastLoaded: scored[i].score = c.load
            }
        }
        let limit = max(1, configuration.maxCandidates)
        var best: [Candidate] = []
        best.reserveCapacity(limit + 1)
        // Partial selection: O(n × limit) comparisons at worst, about O(n) in practice.
        for candidate in scored {
            if best.count == limit, let last = best.last, !Self.precedes(candidate, last) { continue }
            let at = best.firstIndex { Self.precedes(candidate, $0) } ?? best.endIndex
            best.insert(candidate, at: at)
            if best.count > limit { best.removeLast() }
        }
        if let affine, let i = scored.firstIndex(where: { $0.worker == affine }), scored[i].load < configuration.affinityMaxLoad {
            var first = scored[i]
            first.isAffine = true
            best.removeAll { $0.worker == affine }
            best.insert(first, at: 0)
            if best.count > limit { best.removeLast() }
        }
        return best
    }

    /// The ranking order: score, then load, then price, then worker id.
    static func precedes(_ a: Candidate, _ b: Candidate) -> Bool {
        if a.score != b.score { return a.score < b.score }
        if a.load != b.load { return a.load < b.load }
        if a.advert.pricePerHourMicros != b.advert.pricePerHourMicros { return a.advert.pricePerHourMicros < b.advert.pricePerHourMicros }
        return a.worker < b.worker
    }
}
