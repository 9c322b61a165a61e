import Foundation
import Ledger

extension WorkerFleet {
    /// Verifies a signed advert and makes it the worker's current one.
    ///
    /// In order: the signature, the payload's fields, the validity period (``FleetError/Code/expired``;
    /// ``FleetError/Code/notYetValid`` beyond the clock skew; an advert standing longer than
    /// ``FleetConfiguration/maxAdvertLifetime`` is ``FleetError/Code/malformed``), admission (a
    /// valid `joinToken` admits an unadmitted key and is spent), then the catalog: each model with
    /// a digest must match the digest pinned for its id, or pins it if none is; a model that does
    /// not match is skipped for this worker (``Acceptance/skipped``), the rest are accepted. A model
    /// without a digest (`upstream:`) neither pins nor conflicts; it is matched by id alone.
    ///
    /// An advert replaces the worker's earlier one only if it was issued later (re-sending the
    /// same advert is accepted and changes nothing). The worker's heartbeat, breaker and requests
    /// in flight carry over.
    /// - Parameters:
    ///   - document: The signed advert.
    ///   - joinToken: A join token sent with it, if any.
    ///   - now: The gateway's clock.
    /// - Returns: What was accepted and skipped.
    /// - Throws: ``FleetError`` with code `badSignature`, `workerMismatch`, `malformed`, `expired`,
    ///   `notYetValid`, `notAdmitted`, `invalidJoinToken`, `stale` (an older advert than the
    ///   current one), `digestConflict` (every model conflicts; ``FleetError/conflict`` names the
    ///   first, and the worker's earlier advert is dropped, since it no longer stands by it), or
    ///   `storage` (the admission table failed).
    @discardableResult
    public func ingest(advert document: SignedDocument, joinToken: String? = nil, now: Int64) throws(FleetError) -> Acceptance {
        let verified = try Advert.verify(document, now: now, maxClockSkew: configuration.maxClockSkew)
        let advert = verified.payload, worker = advert.worker
        try configuration.advertCheck?(advert)
        let lifetime = advert.expiresMilliseconds - advert.issuedMilliseconds
        guard lifetime <= configuration.maxAdvertLifetime.milliseconds else {
            throw FleetError(.malformed, "the advert of worker \(worker) stands for \(lifetime / 1000) s, longer than the "
                             + "\(configuration.maxAdvertLifetime.milliseconds / 1000) s allowed")
        }
        let admittedByToken = try admit(worker, joinToken: joinToken, now: now)

        return try state.withLock { (state: inout FleetState) throws(FleetError) -> Acceptance in
            let slot = state.slots[worker]
            let previous = slot.map { state.entry($0) }, previousVitals = slot.map { state.vitals[$0] }
            if let previous {
                if previous.advert.hash == verified.hash {
                    return Acceptance(worker: worker, advertHash: verified.hash, accepted: previous.models.keys.sorted(),
                                      skipped: previous.skipped, replaced: false, admittedByJoinToken: admittedByToken)
                }
                guard advert.issuedMilliseconds > previous.advert.payload.issuedMilliseconds else {
                    throw FleetError(.stale, "the advert of worker \(worker) issued at \(advert.issuedMilliseconds) ms is not newer than "
                                     + "its current one (issued at \(previous.advert.payload.issuedMilliseconds) ms)")
                }
            }
            var models: [String: Advert.Model] = [:], skipped: [FleetError.DigestConflict] = [], newPins: [String: String] = [:]
            for model in advert.models {
                guard let digest = model.digest else {
                    models[model.id] = model
                    continue
                }
                if let pinned = configuration.pinnedDigests[model.id] ?? state.learnedPins[model.id] {
                    guard pinned == digest else {
                        skipped.append(FleetError.DigestConflict(model: model.id, expected: pinned, got: digest))
                        continue
                    }
                } else {
                    newPins[model.id] = digest
                }
                models[model.id] = model
            }
            state.remove(worker)
            guard !models.isEmpty else {
                throw FleetError(.digestConflict, "every model of worker \(worker) conflicts with a pinned digest: "
                                 + skipped.map(\.description).joined(separator: "; "), conflict: skipped.first)
            }
            state.learnedPins.merge(newPins) { old, _ in old }
            var entry = FleetState.Entry(verified, models: models, skipped: skipped)
            entry.heartbeat = previous?.heartbeat
            entry.heartbeatReceived = previous?.heartbeatReceived
            var vitals = FleetState.Vitals(
                price: advert.pricePerHourMicros, capacity: advert.capacity, expires: advert.expiresMilliseconds,
                lastContact: max(now, previousVitals?.lastContact ?? .min),
                breaker: previousVitals?.breaker ?? CircuitBreaker(threshold: configuration.breakerThreshold,
                                                                   openFor: configuration.breakerOpenDuration.milliseconds))
            if let previousVitals {
                vitals.reported = previousVitals.reported
                vitals.tokensPerSecond = previousVitals.tokensPerSecond
                vitals.inFlight = previousVitals.inFlight
            }
            state.put(entry, vitals: vitals)
            return Acceptance(worker: worker, advertHash: verified.hash, accepted: models.keys.sorted(), skipped: skipped,
                              replaced: previous != nil, admittedByJoinToken: admittedByToken)
        }
    }

    /// Checks that a worker is admitted, spending a join token on it if it is not.
    /// - Returns: Whether the token admitted it.
    private func admit(_ worker: WorkerID, joinToken: String?, now: Int64) throws(FleetError) -> Bool {
        do {
            if try registry.isAdmitted(worker) { return false }
            guard let joinToken else {
                throw FleetError(.notAdmitted, "worker \(worker) is not admitted: run `verity workers admit \(worker)` "
                                 + "on the gateway, or start the worker with a join token")
            }
            try registry.redeemJoinToken(joinToken, for: worker, now: now)
            return true
        } catch let error as FleetError {
            throw error
        } catch let error as LedgerError where error.code == .notFound {
            throw FleetError(.invalidJoinToken, "worker \(worker) is not admitted and its join token is unknown, spent or expired",
                             cause: error)
        } catch {
            throw FleetError(.storage, "cannot read the admission of worker \(worker)", cause: error)
        }
    }

    /// Verifies a signed heartbeat and records the worker's load.
    /// - Parameters:
    ///   - document: The signed heartbeat.
    ///   - now: The gateway's clock.
    /// - Returns: The verified heartbeat.
    /// - Throws: ``FleetError`` with code `badSignature`, `workerMismatch`, `malformed`; `expired`
    ///   (sent longer ago than the silence timeout), `notYetValid` (beyond the clock skew);
    ///   `unknownAdvert` (no current advert from this worker, or the heartbeat names another one:
    ///   the worker should advertise again); `stale` (not sent after the last one accepted).
    @discardableResult
    public func heartbeat(_ document: SignedDocument, now: Int64) throws(FleetError) -> VerifiedHeartbeat {
        let verified = try Heartbeat.verify(document, now: now, maxAge: configuration.silenceTimeout, maxClockSkew: configuration.maxClockSkew)
        let heartbeat = verified.payload
        try state.withLock { (state: inout FleetState) throws(FleetError) in
            guard let slot = state.slots[heartbeat.worker] else {
                throw FleetError(.unknownAdvert, "worker \(heartbeat.worker) has no current advert here: advertise first")
            }
            let entry = state.entry(slot)
            guard entry.advert.hash == heartbeat.advertHash else {
                throw FleetError(.unknownAdvert, "a heartbeat from worker \(heartbeat.worker) names advert \(heartbeat.advertHash.hex.prefix(16))…, "
                                 + "the current one is \(entry.advert.hash.hex.prefix(16))…: advertise again")
            }
            if let last = entry.heartbeat, heartbeat.sentMilliseconds <= last.sentMilliseconds {
                throw FleetError(.stale, "a heartbeat from worker \(heartbeat.worker) sent at \(heartbeat.sentMilliseconds) ms is not newer "
                                 + "than the last one (\(last.sentMilliseconds) ms)")
            }
            state.record(heartbeat, at: now, slot: slot)
        }
        return verified
    }

    /// Revokes a worker's admission and drops it from the fleet at once.
    /// - Throws: ``FleetError/Code/notFound`` if it was not admitted; ``FleetError/Code/storage``.
    public func revoke(_ worker: WorkerID, now: Int64) throws(FleetError) {
        do { try registry.revokeWorker(worker, now: now) } catch let error as LedgerError where error.code == .notFound {
            throw FleetError(.notFound, "worker \(worker) is not admitted", cause: error)
        } catch {
            throw FleetError(.storage, "cannot revoke worker \(worker)", cause: error)
        }
        state.withLock { $0.remove(worker) }
    }

    /// Drops the workers whose admission was revoked elsewhere (by `verity workers revoke` on the
    /// same database); a server calls this every few seconds.
    /// - Returns: The workers dropped.
    /// - Throws: ``FleetError/Code/storage`` if the admission table cannot be read.
    @discardableResult
    public func reconcileAdmissions() throws(FleetError) -> [WorkerID] {
        let admitted: Set<WorkerID>
        do { admitted = Set(try registry.admittedWorkers().filter { $0.revokedMilliseconds == nil }.map(\.worker)) } catch {
            throw FleetError(.storage, "cannot read the admitted workers", cause: error)
        }
        return state.withLock { state in
            let gone = state.slots.keys.filter { !admitted.contains($0) }
            for worker in gone { state.remove(worker) }
            return gone.sorted()
        }
    }
}
