import Crypto
import Engine
import Foundation
import Node
import Synchronization

/// A worker's answers are recorded by its gateway, not here: each answer ends with the worker's
/// signed usage statement (`verity_usage`), which the gateway checks and seals in its ledger.
struct UsageStatementSigner: AnswerRecorder {
    let key: WorkerKey
    /// The worker's adverts: a statement names the one its gateway routed by, if it is one of
    /// them, else the current one.
    let adverts: AdvertBook
    let gpu: String
    let provider: String
    let pricePerHourMicros: Int64
    let currency: String
    /// Counts the tokens this worker generates, for its heartbeats' tokens per second.
    let meter: TokenMeter

    var progressInterval: Duration { .seconds(3600) }

    func begin(_ interaction: Interaction, promptTokens: Int) async throws(APIError) -> AnswerHandle {
        AnswerHandle(entry: nil, startedMilliseconds: Interaction.now())
    }

    func progress(_ handle: AnswerHandle, _ interaction: Interaction, response: String, promptTokens: Int, completionTokens: Int) {}

    func discard(_ handle: AnswerHandle) {}

    func complete(_ handle: AnswerHandle, _ interaction: Interaction, response: String,
                  summary: GenerationSummary) async throws(APIError) -> (key: String, value: JSON) {
        meter.add(summary.completionTokens)
        return try sign(handle, interaction, response: response, promptTokens: summary.promptTokens, completionTokens: summary.completionTokens)
    }

    /// The `verity_usage` field: the statement for an answer, signed with the worker's key. An
    /// interaction without a model digest (an external engine's) states none.
    func sign(_ handle: AnswerHandle, _ interaction: Interaction, response: String, promptTokens: Int,
              completionTokens: Int) throws(APIError) -> (key: String, value: JSON) {
        let statement = UsageStatement(
            requestID: interaction.recordID, worker: key.id, advertHash: adverts.hash(routed: interaction.routedAdvert),
            modelID: interaction.modelID, modelDigest: interaction.modelDigest.isEmpty ? nil : interaction.modelDigest,
            promptSHA256: interaction.bodyDigest, responseSHA256: Data(SHA256.hash(data: Data(response.utf8))), promptTokens: promptTokens,
            completionTokens: completionTokens, startedMilliseconds: handle.startedMilliseconds, finishedMilliseconds: Interaction.now(),
            gpu: gpu, provider: provider, pricePerHourMicros: pricePerHourMicros, currency: currency)
        do {
            return ("verity_usage", try statement.sign(with: key).json)
        } catch {
            throw APIError.server("The worker could not sign its usage statement: \(error.message)")
        }
    }

    func abandon(_ handle: AnswerHandle, _ interaction: Interaction, response: String, promptTokens: Int, completionTokens: Int) async {
        meter.add(completionTokens)
    }
}

/// Tokens generated recently: the rate a worker's heartbeat reports.
final class TokenMeter: Sendable {
    private let state = Mutex<(count: Int, since: ContinuousClock.Instant, last: Double)>((0, .now, 0))

    func add(_ tokens: Int) { state.withLock { $0.count += tokens } }

    /// Tokens per second over the interval that ended at the last call at least a second after
    /// the one before, which starts a new interval; a call sooner (a heartbeat to another gateway
    /// in the same round) gets the same figure rather than a sliver of an interval.
    func rate() -> Double {
        state.withLock { s in
            let now = ContinuousClock.now
            let seconds = (now - s.since).seconds
            guard seconds >= 1 else { return s.last }
            s = (0, now, Double(s.count) / seconds)
            return s.last
        }
    }
}

/// A worker's recent adverts' hashes. An advert is renewed before it expires, so a request routed
/// by the previous one may finish under the new one: its statement still names the advert its
/// gateway routed it by.
final class AdvertBook: Sendable {
    private let hashes = Mutex<[Data]>([])

    /// The current advert's hash (empty before the first).
    var current: Data { hashes.withLock { $0.last ?? Data() } }

    /// A new advert is current; the last few stay known.
    func issued(_ hash: Data) {
        hashes.withLock { h in
            h.append(hash)
            if h.count > 4 { h.removeFirst(h.count - 4) }
        }
    }

    /// `routed` if it is one of this worker's recent adverts, else the current one.
    func hash(routed: Data?) -> Data {
        hashes.withLock { h in
            if let routed, h.contains(routed) { return routed }
            return h.last ?? Data()
        }
    }
}
