import Foundation
import Kernels
import Models
import Tokenizers

/// Continuous batching for one model: a scheduler thread owns the model's sequences (KV caches)
/// and advances every active completion together, one batched forward pass per step. Requests
/// join between steps; prompts are prefilled in chunks within a per-step token budget, so running
/// streams keep flowing while a long prompt is read; a finished sequence keeps its cache, and the
/// next request whose prompt shares a prefix with it (the next turn of a conversation) reuses it.
///
/// Every token's logits are bit-identical to evaluating its sequence alone (see
/// ``LanguageModel/forward(batch:workspace:)``), so with the same sampling parameters and seed a
/// completion does not depend on what else is running.
public final class BatchScheduler: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Sequences decoded at once (each holds a KV cache of `contextLength` positions).
        public var maxSequences = 8
        /// Positions per sequence: prompt plus completion.
        public var contextLength = 4096
        /// Compute threads (default: every core).
        public var threads = ThreadPool.defaultThreadCount
        /// Requests that may wait for a free sequence before ``submit(prompt:parameters:)`` refuses.
        public var maxQueue = 64
        /// Tokens per forward pass (decode tokens plus prefill chunks).
        public var stepTokens = 64
        /// While other sequences are generating (or a short prompt waits), a heavy prompt (see
        /// `heavyPromptTokens`) is read this many tokens per forward pass, so that a long document
        /// costs each generating sequence only a little per token (the document then takes more
        /// steps). Other prompts, and every prompt with nothing else running, go at `stepTokens`.
        public var prefillTokensWhileDecoding = 4
        /// A sequence with more prompt tokens than this to compute (beyond what its cache already
        /// holds) is *heavy*: a document rather than a turn of conversation, costly to prefill and
        /// then to attend over, and…
        public var heavyPromptTokens = 1024
        /// …while any lighter sequence is running, heavy sequences take part in one step of this
        /// many (least attained service: the long job waits, the conversation does not; it still
        /// advances, and runs at full speed whenever it is alone). 1: every step.
        public var heavyStepShare = 4
        public init() {}
    }

    /// A submitted request: its events, and a way to stop it (a client that went away).
    public final class Request: Sendable {
        public let events: AsyncStream<GenerationEvent>
        fileprivate let id: Int
        fileprivate let continuation: AsyncStream<GenerationEvent>.Continuation
        private let onCancel: @Sendable () -> Void

        fileprivate init(id: Int, scheduler: BatchScheduler) {
            self.id = id
            onCancel = { [weak scheduler] in scheduler?.cancel(id) }
            (events, continuation) = AsyncStream.makeStream(of: GenerationEvent.self, bufferingPolicy: .unbounded)
        }

        /// Stops generating; the sequence is freed before the next step. Idempotent.
        public func cancel() { onCancel() }
    }

    public struct Load: Sendable {
        public var active: Int
        public var queued: Int
    }

    public let model: LoadedModel
    public let configuration: Configuration
    /// Shared prefixes shorter than this are recomputed rather than copied from another sequence.
    static let minimumCopy = 8

    private struct Pending {
        let request: Request
        let prompt: [Int32]
        let parameters: GenerationParameters
        let adapter: ModelAdapter?
        /// The request whose prompt (the same) this one waits for, to copy its computed prefix
        /// rather than compute it again: another choice of the same request (`n` > 1).
        var leader: Int? = nil
    }

    /// A sequence slot: a KV cache and the tokens it holds (kept after its request ends, for reuse).
    private final class Slot {
        let sequence: any ModelContext
        var cached: [Int32] = []
        /// The adapter the cached keys and values were computed with: a prefix is shared only
        /// between sequences of the same adapter (or both of none). Weak, so that an unloaded
        /// adapter's memory is freed; once it is, the cache matches no one.
        weak var cachedAdapter: ModelAdapter?
        var cachedWithAdapter = false
        var lastUsed = 0
        var job: Job?
        init(sequence: any ModelContext) { self.sequence = sequence }

        /// How many of `prompt`'s first tokens this slot's cache holds for `adapter`.
        func reusablePrefix(of prompt: [Int32], adapter: ModelAdapter?) -> Int {
            let same = adapter == nil ? !cachedWithAdapter : cachedAdapter === adapter
            return same ? cached.reusablePrefix(of: prompt) : 0
        }
    }

    private struct Job {
        let request: Request
        let prompt: [Int32]
        let adapter: ModelAdapter?
        var completion: Completion
        var prefilled: Int          // prompt tokens in the cache
        let reused: Int
        var next: Int32?            // sampled, not yet in the cache
    }

    private let lock = NSCondition()
    private var queue: [Pending] = []
    private var cancelled: Set<Int> = []
    private var nextID = 0
    private var running = true
    private var activeCount = 0
    private var clock = 0
    /// Forward passes so far, for ``Configuration/heavyStepShare``.
    private var steps = 0
    private var slots: [Slot] = []
    private let workspace: any BatchWorkspace

    public init(model: LoadedModel, configuration: Configuration) throws(EngineError) {
        guard configuration.maxSequences > 0, configuration.contextLength > 1, configuration.stepTokens > 0,
              configuration.prefillTokensWhileDecoding > 0, configuration.heavyStepShare > 0 else {
            throw EngineError(.invalidParameter, "max sequences, context length, step tokens and prefill tokens must be positive")
        }
        self.model = model
        self.configuration = configuration
        do {
            workspace = try model.network.makeWorkspace(batch: max(configuration.stepTokens, configuration.maxSequences),
                                                        maxPositions: configuration.contextLength,
                                                        threads: configuration.threads)
            for _ in 0..<configuration.maxSequences {
                slots.append(Slot(sequence: try model.network.makeSequence(capacity: configuration.contextLength)))
            }
        } catch {
            throw EngineError(.model, error.message, cause: error)
        }
        // The thread holds the scheduler until shutdown() ends its loop.
        let thread = Thread { self.loop() }
        thread.name = "verity-scheduler"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Queues a completion of `prompt`. Throws `.overloaded` when `maxQueue` requests already wait,
    /// `.promptTooLong` when the prompt does not fit the context, `.shuttingDown` after ``shutdown()``.
    public func submit(prompt: [Int32], parameters: GenerationParameters, adapter: ModelAdapter? = nil) throws(EngineError) -> Request {
        try submit(prompt: prompt, choices: [parameters], adapter: adapter)[0]
    }

    /// Queues several completions of one `prompt` (the choices of a request with `n` > 1), each
    /// with its own parameters (its own seed). The first computes the prompt; the others wait
    /// until it has, then copy its keys and values (see ``admit(_:into:)``) and sample on their
    /// own, so the prompt is read once. Each choice's tokens are what it would be alone. All are
    /// queued or none is.
    public func submit(prompt: [Int32], choices: [GenerationParameters], adapter: ModelAdapter? = nil) throws(EngineError) -> [Request] {
        guard !choices.isEmpty else { throw EngineError(.invalidParameter, "no choices to generate") }
        guard !prompt.isEmpty else { throw EngineError(.invalidParameter, "the prompt is empty") }
        guard prompt.count < configuration.contextLength else {
            throw EngineError(.promptTooLong, "the prompt has \(prompt.count) tokens but the context holds \(configuration.contextLength)")
        }
        lock.lock()
        defer { lock.unlock() }
        guard running else { throw EngineError(.shuttingDown, "the server is shutting down") }
        guard queue.count + choices.count <= configuration.maxQueue else {
            throw EngineError(.overloaded, "\(queue.count) requests are already waiting for \(model.name); retry shortly")
        }
        var requests: [Request] = []
        for parameters in choices {
            nextID += 1
            let request = Request(id: nextID, scheduler: self)
            queue.append(Pending(request: request, prompt: prompt, parameters: parameters, adapter: adapter, leader: requests.first?.id))
            requests.append(request)
        }
        lock.signal()
        return requests
    }

    /// Sequences generating and requests waiting, now.
    public var load: Load {
        lock.lock()
        defer { lock.unlock() }
        return Load(active: activeCount, queued: queue.count)
    }

    /// Ends every queued and running request (finish reason `.cancelled`), refuses new ones and
    /// stops the scheduler thread once they are ended.
    public func shutdown() {
        lock.lock()
        running = false
        lock.signal()
        lock.unlock()
    }

    fileprivate func cancel(_ id: Int) {
        lock.lock()
        cancelled.insert(id)
        lock.signal()
        lock.unlock()
    }

    // MARK: The scheduler thread

    private func loop() {
        while true {
            lock.lock()
            // Drop cancelled requests still waiting.
            if !cancelled.isEmpty {
                queue.removeAll { pending in
                    guard cancelled.contains(pending.request.id) else { return false }
                    pending.request.continuation.yield(.finished(GenerationSummary(finishReason: .cancelled, tail: "",
                        promptTokens: pending.prompt.count, cachedPromptTokens: 0, completionTokens: 0)))
                    pending.request.continuation.finish()
                    return true
                }
            }
            let stopping = !running
            if stopping {
                for pending in queue {
                    pending.request.continuation.yield(.failed(EngineError(.shuttingDown, "the server is shutting down")))
                    pending.request.continuation.finish()
                }
                queue.removeAll()
            }
            let cancelledNow = cancelled
            cancelled.removeAll()
            while !stopping, let next = queue.firstIndex(where: { isAdmissible($0) }),
                  let slot = freeSlot(for: queue[next].prompt, adapter: queue[next].adapter) {
                admit(queue.remove(at: next), into: slot)
            }
            let idle = slots.allSatisfy { $0.job == nil }
            if idle && stopping { lock.unlock(); return }
            if idle && queue.isEmpty && cancelled.isEmpty {
                lock.wait()
                lock.unlock()
                continue
            }
            lock.unlock()

            for slot in slots {
                guard let job = slot.job else { continue }
                if stopping || cancelledNow.contains(job.request.id) { end(slot, reason: .cancelled) }
            }
            step()
        }
    }

    /// Whether a queued request may start now: in order, except that a choice waits while its
    /// leader (the request's first choice) is queued or still computing the shared prompt. Called
    /// with the lock held.
    private func isAdmissible(_ pending: Pending) -> Bool {
        guard let leader = pending.leader else { return true }
        if queue.contains(where: { $0.request.id == leader }) { return false }
        guard let job = slots.lazy.compactMap(\.job).first(where: { $0.request.id == leader }) else { return true }
        return job.prefilled >= pending.prompt.count - 1
    }

    /// The free slot whose cached tokens share the longest prefix with `prompt` (least recently
    /// used on ties), or nil when all are busy. Called with the lock held.
    private func freeSlot(for prompt: [Int32], adapter: ModelAdapter?) -> Slot? {
        var best: (slot: Slot, shared: Int)?
        for slot in slots where slot.job == nil {
            let shared = slot.reusablePrefix(of: prompt, adapter: adapter)
            if best == nil || shared > best!.shared || (shared == best!.shared && slot.lastUsed < best!.slot.lastUsed) {
                best = (slot, shared)
            }
        }
        return best?.slot
    }

    /// Called with the lock held.
    private func admit(_ pending: Pending, into slot: Slot) {
        var shared = slot.reusablePrefix(of: pending.prompt, adapter: pending.adapter)
        slot.sequence.truncate(to: shared)
        slot.cached.removeSubrange(shared...)
        slot.cachedAdapter = pending.adapter
        slot.cachedWithAdapter = pending.adapter != nil
        // Another sequence (running or not) may hold a longer prefix of this prompt, e.g. the same
        // system prompt: copying its KV entries costs a memory copy instead of a forward pass.
        let donors = slots.lazy.filter { $0 !== slot }.map { (slot: $0, shared: $0.reusablePrefix(of: pending.prompt, adapter: pending.adapter)) }
        if let (donor, longer) = donors.max(by: { $0.shared < $1.shared }) {
            if longer >= shared + Self.minimumCopy,
               (try? model.network.copyPrefix(from: donor.sequence, to: slot.sequence, count: longer)) != nil {
                slot.cached = Array(donor.cached[..<longer])
                shared = longer
            }
        }
        clock += 1
        slot.lastUsed = clock
        slot.job = Job(request: pending.request, prompt: pending.prompt, adapter: pending.adapter,
                       completion: Completion(prompt: pending.prompt, parameters: pending.parameters, tokenizer: model.tokenizer),
                       prefilled: shared, reused: shared, next: nil)
        activeCount += 1
        if slot.job!.completion.isExhausted { end(slot, reason: .length, locked: true) }
    }

    /// One forward pass: one token for every decoding sequence (heavy ones only on their turn,
    /// see ``Configuration/heavyStepShare``), then prompt chunks, shortest
    /// remaining prompt first (a short question is not held up behind a long document), while
    /// the step's `stepTokens` last. While any sequence decodes, or a short prompt (at most
    /// `stepTokens`) waits, a heavy prompt gets at most ``Configuration/prefillTokensWhileDecoding``
    /// of them: the long document waits, the conversation does not.
    private func step() {
        var entries: [BatchEntry] = []
        var owners: [(slot: Slot, count: Int, sampling: Bool)] = []
        var budget = configuration.stepTokens
        steps &+= 1
        // Heavy sequences sit out most steps while a lighter one runs.
        // Heavy: a long prompt to compute. A long conversation whose history is cached is not.
        let isHeavy = { (job: Job) in job.prompt.count - job.reused > self.configuration.heavyPromptTokens }
        let anyLight = slots.contains { $0.job.map { !isHeavy($0) } ?? false }
        let heavyTurn = !anyLight || steps % configuration.heavyStepShare == 0
        for slot in slots {
            guard let job = slot.job, let next = job.next, heavyTurn || !isHeavy(job) else { continue }
            if slot.sequence.count + 1 > slot.sequence.capacity { end(slot, reason: .length); continue }
            entries.append(BatchEntry(sequence: slot.sequence, tokens: [next], wantsLogits: true, adapter: job.adapter))
            owners.append((slot, 1, true))
            budget -= 1
        }
        let prefilling = slots.enumerated().compactMap { i, slot -> (slot: Slot, remaining: Int, order: Int)? in
            guard let job = slot.job, job.next == nil, heavyTurn || !isHeavy(job) else { return nil }
            return (slot, job.prompt.count - job.prefilled, i)
        }.sorted { $0.remaining < $1.remaining || ($0.remaining == $1.remaining && $0.order < $1.order) }
        // Someone is waiting for a token soon: a sequence decoding, or a short prompt about to.
        let interactive = !entries.isEmpty || prefilling.contains { $0.remaining <= configuration.stepTokens }
        for (slot, remaining, _) in prefilling where budget > 0 {
            guard let job = slot.job else { continue }
            let chunk = interactive && isHeavy(job) ? min(remaining, configuration.prefillTokensWhileDecoding) : remaining
            let count = min(budget, chunk)
            let last = job.prefilled + count == job.prompt.count
            entries.append(BatchEntry(sequence: slot.sequence, tokens: job.prompt[job.prefilled..<(job.prefilled + count)], wantsLogits: last,
                                      adapter: job.adapter))
            owners.append((slot, count, last))
            budget -= count
        }
        guard !entries.isEmpty else { return }
        let logits: UnsafeBufferPointer<Float>
        do {
            logits = try model.network.forward(batch: entries, workspace: workspace)
        } catch {
            // A failed pass leaves the caches unknown: fail its requests and forget their caches.
            for owner in owners {
                owner.slot.job?.request.continuation.yield(.failed(EngineError(.model, error.message, cause: error)))
                owner.slot.cached = []
                owner.slot.sequence.truncate(to: 0)
                end(owner.slot, reason: nil)
            }
            return
        }
        let vocab = model.network.vocabularySize
        var row = 0
        for (i, owner) in owners.enumerated() {
            let slot = owner.slot
            guard var job = slot.job else { continue }
            slot.cached.append(contentsOf: entries[i].tokens)
            if job.next != nil { job.next = nil } else { job.prefilled += owner.count }
            guard owner.sampling else { slot.job = job; continue }
            let step = job.completion.step(UnsafeBufferPointer(rebasing: logits[(row * vocab)..<((row + 1) * vocab)]))
            row += 1
            job.request.continuation.yield(.token(step))
            if let reason = step.finish {
                slot.job = job
                end(slot, reason: reason)
            } else {
                job.next = step.token
                slot.job = job
            }
        }
    }

    /// Finishes the slot's request (a nil reason: already failed) and frees the slot, keeping its cache.
    private func end(_ slot: Slot, reason: FinishReason?, locked: Bool = false) {
        guard var job = slot.job else { return }
        slot.job = nil
        // Count the sequence free before the request's stream ends, so that whoever sees the end
        // also sees the load without it.
        if !locked { lock.lock() }
        activeCount -= 1
        if !locked { lock.unlock() }
        if let reason {
            let (tail, tailLogprobs) = reason == .stop ? ("", []) : job.completion.finishWithLogprobs()
            var summary = GenerationSummary(finishReason: reason, tail: tail, promptTokens: job.prompt.count,
                                            cachedPromptTokens: job.reused, completionTokens: job.completion.tokens.count)
            summary.tailLogprobs = tailLogprobs
            summary.stopString = job.completion.stopString
        summary.stopString = job.completion.stopString
            job.request.continuation.yield(.finished(summary))
        }
        job.request.continuation.finish()
    }
}
