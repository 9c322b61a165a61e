extension WorkerFleet {
    /// Claims a worker for one request, just before sending it: false if its breaker is open, or
    /// half-open with its one probe already out (then try the next candidate). A true answer must
    /// be followed by exactly one of ``recordSuccess(_:affinityKey:now:)``,
    /// ``recordFailure(_:now:)`` or ``recordAbandoned(_:now:)``; until then the request counts in
    /// the worker's load.
    /// - Parameters:
    ///   - worker: The candidate's worker.
    ///   - now: The gateway's clock.
    /// - Returns: Whether the request may go to it (false also for a worker that left the fleet).
    public func beginAttempt(_ worker: WorkerID, now: Int64) -> Bool {
        state.withLock { state in
            guard let slot = state.slots[worker], state.vitals[slot].breaker.begin(now: now) else { return false }
            state.vitals[slot].inFlight += 1
            return true
        }
    }

    /// The worker answered: its breaker closes, and it becomes the affine worker of `affinityKey`.
    /// - Parameters:
    ///   - worker: The worker that answered.
    ///   - affinityKey: The conversation prefix's key that the request was routed with, if any.
    ///   - now: The gateway's clock.
    public func recordSuccess(_ worker: WorkerID, affinityKey: String? = nil, now: Int64) {
        state.withLock { state in
            guard let slot = state.slots[worker] else { return }
            state.vitals[slot].breaker.success()
            state.vitals[slot].inFlight.decrement()
            if let affinityKey { state.affinity.set(affinityKey, worker) }
        }
    }

    /// The worker failed before answering (refused, 5xx, timeout) or broke off mid-answer: after
    /// ``FleetConfiguration/breakerThreshold`` failures in a row (or a failed probe) its breaker
    /// opens for ``FleetConfiguration/breakerOpenDuration``.
    public func recordFailure(_ worker: WorkerID, now: Int64) {
        state.withLock { state in
            guard let slot = state.slots[worker] else { return }
            state.vitals[slot].breaker.failure(now: now)
            state.vitals[slot].inFlight.decrement()
        }
    }

    /// The request ended for a reason that says nothing about the worker (the client left, the
    /// gateway gave up): it stops counting in the load, and a probe it carried is released.
    public func recordAbandoned(_ worker: WorkerID, now: Int64) {
        state.withLock { state in
            guard let slot = state.slots[worker] else { return }
            state.vitals[slot].breaker.abandoned()
            state.vitals[slot].inFlight.decrement()
        }
    }

    /// The worker's breaker state, or nil for a worker the fleet does not hold.
    public func breakerState(_ worker: WorkerID, now: Int64) -> BreakerState? {
        state.withLock { state in state.slots[worker].map { state.vitals[$0].breaker.state(now: now) } }
    }
}

extension Int {
    /// Subtracts one, not below zero.
    fileprivate mutating func decrement() { self = Swift.max(0, self - 1) }
}
