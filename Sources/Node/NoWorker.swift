/// A routing decision that found no worker: which workers serve the model, and what excluded
/// each of them, for the gateway's 503 (``message``) and its OpenAI error `param` (``constraints``).
///
/// It is the failure side of ``WorkerFleet/candidates(model:adapter:constraints:policy:affinityKey:now:)``'s
/// `Result`, an outcome rather than a fault of the fleet.
public struct NoWorker: Error, Sendable, CustomStringConvertible {
    /// The model requested.
    public var model: String
    /// The adapter requested, if any.
    public var adapter: String?
    /// How many workers currently advertise the model (with an accepted digest).
    public var serving: Int
    /// Each of them and what excluded it, ordered by worker id.
    public var excluded: [(worker: WorkerID, reason: Exclusion)]
    /// Workers that advertise the model with a digest other than the pinned one (never routed to).
    public var conflicting: [(worker: WorkerID, conflict: FleetError.DigestConflict)]
    /// The request constraints that excluded at least one worker, in the order
    /// `max_price_per_hour`, `providers`, `gpus`, `regions`.
    public var constraints: [String]
    /// The request's constraints, to quote limits in the message.
    public var requested: RoutingConstraints

    /// How many workers to name per reason before summarizing the rest.
    static let namedPerReason = 3

    /// One sentence for the client, such as
    /// "2 workers serve llama-3.2-1b; max_price_per_hour 1.5 excluded worker 4ag… (2/h USD); …".
    public var message: String {
        let modelName = adapter.map { "\(model) with adapter \($0)" } ?? model
        guard serving > 0 || !conflicting.isEmpty else { return "No worker serves model \(model)." }
        var parts: [String] = []
        if serving == 0 {
            parts.append("no worker serves model \(model) with its pinned digest")
        } else {
            parts.append("\(serving) worker\(serving == 1 ? "" : "s") serve\(serving == 1 ? "s" : "") \(modelName)")
        }
        var groups: [(String, [(WorkerID, Exclusion)])] = []
        for (worker, reason) in excluded {
            let key = label(reason)
            if let i = groups.firstIndex(where: { $0.0 == key }) { groups[i].1.append((worker, reason)) } else { groups.append((key, [(worker, reason)])) }
        }
        for (key, members) in groups {
            var names = members.prefix(Self.namedPerReason).map { "\($0.0) (\($0.1))" }
            if members.count > Self.namedPerReason { names.append("\(members.count - Self.namedPerReason) more") }
            parts.append("\(key) excluded worker\(members.count == 1 ? "" : "s") \(names.joined(separator: ", "))")
        }
        if !conflicting.isEmpty {
            let names = conflicting.prefix(Self.namedPerReason).map { "\($0.worker)" }
                + (conflicting.count > Self.namedPerReason ? ["\(conflicting.count - Self.namedPerReason) more"] : [])
            parts.append("a digest other than the pinned \(conflicting[0].conflict.expected) excluded \(names.joined(separator: ", "))")
        }
        return parts.joined(separator: "; ") + "."
    }

    /// The heading of an exclusion group: the constraint with its limit, or the availability reason.
    private func label(_ reason: Exclusion) -> String {
        switch reason {
        case .maxPricePerHour(let limit, _, _): "max_price_per_hour \(Exclusion.units(limit))"
        case .provider: "providers \(requested.providers?.joined(separator: ",") ?? "")"
        case .gpu: "gpus \(requested.gpus?.joined(separator: ",") ?? "")"
        case .region: "regions \(requested.regions?.joined(separator: ",") ?? "")"
        case .adapter: "the adapter"
        case .expired: "an expired advert"
        case .silent: "silence"
        case .breakerOpen, .probeInFlight: "the circuit breaker"
        }
    }

    public var description: String { message }
}
