import Export
import Foundation
import Logging
import ModelFormats
import Node
import ServiceLifecycle

/// The server's export jobs: one runs at a time, on its own thread (an export is minutes of
/// blocking CPU work, which must not hold a thread of Swift's cooperative pool), the rest wait in
/// a bounded queue. A job that succeeds is recorded in the ledger (``LedgerAppender/recordExport(_:sender:)``)
/// before it is marked succeeded; a recording failure fails it and keeps its files.
///
/// Each job lives in the data directory: `exports/<id>/` holds its files, `exports/<id>.json` its
/// ``ExportRecord``, so finished jobs (and their downloads) survive a restart; a job that was
/// queued or running when the server stopped is marked failed at the next start and its partial
/// files removed.
///
/// As a service of the server's group it shuts down first: the running export is cancelled
/// (GGUF exports stop within a tensor; others are waited for up to ``shutdownGrace``) and the
/// queued ones are marked failed.
final class ExportJobs: Service, @unchecked Sendable {
    /// What a queued job runs: the export, its opened source and adapter, and who the record names.
    struct Work: Sendable {
        var job: ExportJob
        var model: GGUFFile
        var adapter: LoRAFile?
        var sender: Caller
    }

    /// Why a job was asked to stop.
    enum StopReason: Sendable { case cancelled, shutdown }

    /// The running job's stop request, which the export polls between tensors.
    final class StopFlag: @unchecked Sendable {
        private let lock = NSLock()
        private var reason: StopReason?
        func stop(_ why: StopReason) { lock.withLock { if reason == nil { reason = why } } }
        var stopped: StopReason? { lock.withLock { reason } }
    }

    private struct Entry {
        var record: ExportRecord
        var work: Work?
        let flag = StopFlag()
    }

    /// How long shutdown waits for an export that does not stop when asked.
    static let shutdownGrace: TimeInterval = 10

    let directory: String
    let configuration: ExportConfiguration
    let threads: Int
    let ledger: LedgerAppender
    let logger: Logger
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var queue: [String] = []
    private var running: String?
    private var stopping = false
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    /// Opens (creating) `exports/` in the ledger's data directory and takes up the jobs kept there.
    init(configuration: ExportConfiguration, threads: Int, ledger: LedgerAppender, logger: Logger) throws {
        self.configuration = configuration
        self.threads = threads
        self.ledger = ledger
        self.logger = logger
        directory = ledger.configuration.dataDirectory.path + "/exports"
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        recover()
    }

    /// The folder of job `id`'s files.
    func folder(_ id: String) -> String { directory + "/" + id }

    private func recordPath(_ id: String) -> String { directory + "/" + id + ".json" }

    /// A new job id: `exp_` and 24 random hex digits.
    static func newID() -> String {
        "exp_" + (0..<12).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    // MARK: - Submitting

    /// Throws 429 when the queue is full (and 503 while shutting down), before any work is done
    /// for a request; ``submit(_:work:)`` checks again.
    func checkRoom() throws(APIError) {
        lock.lock()
        defer { lock.unlock() }
        try roomLocked()
    }

    private func roomLocked() throws(APIError) {
        if stopping { throw APIError.unavailable("The server is shutting down; no export is started.") }
        if running != nil, queue.count >= configuration.maxQueued {
            throw APIError.overloaded("\(queue.count) export\(queue.count == 1 ? "" : "s") already wait\(queue.count == 1 ? "s" : "") behind the running one; retry when one has finished.",
                                      retryAfter: 30)
        }
    }

    /// Queues a job (its folder already made); returns it as the API shows it.
    func submit(_ record: ExportRecord, work: Work) throws(APIError) -> JSON {
        lock.lock()
        do {
            try roomLocked()
        } catch {
            lock.unlock()
            throw error
        }
        entries[record.id] = Entry(record: record, work: work)
        queue.append(record.id)
        persist(record)
        let position: Int? = running == nil && queue.count == 1 ? nil : queue.count
        lock.unlock()
        wake.yield()
        logger.info("export \(record.id): queued \(record.format) \(record.type ?? "default") of \(record.model) for \(record.owner)")
        return record.json(queuePosition: position)
    }

    // MARK: - Reading

    /// The job `id` as `exporter` may see it (nil: unknown, or another's).
    func job(_ id: String, for exporter: Exporter) -> JSON? {
        lock.withLock {
            guard let entry = entries[id], exporter.sees(entry.record) else { return nil }
            return entry.record.json(queuePosition: queue.firstIndex(of: id).map { $0 + 1 })
        }
    }

    /// The jobs `exporter` may see, newest first.
    func jobs(for exporter: Exporter) -> [JSON] {
        lock.withLock {
            entries.values.map(\.record).filter(exporter.sees).sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
                .map { $0.json(queuePosition: queue.firstIndex(of: $0.id).map { $0 + 1 }) }
        }
    }

    /// The path and entry of file `name` of job `id`, if `exporter` may see the job and the file is
    /// one the job wrote; nil otherwise.
    func file(_ id: String, named name: String, for exporter: Exporter) -> (path: String, file: ExportRecord.File)? {
        lock.withLock {
            guard let record = entries[id]?.record, exporter.sees(record), let file = record.files.first(where: { $0.name == name })
            else { return nil }
            return (folder(id) + "/" + file.name, file)
        }
    }

    /// The only file of job `id` (nil when it wrote several, or none yet).
    func onlyFile(_ id: String, for exporter: Exporter) -> (path: String, file: ExportRecord.File)?? {
        lock.withLock {
            guard let record = entries[id]?.record, exporter.sees(record) else { return nil }
            guard record.files.count == 1 else { return .some(nil) }
            return (folder(id) + "/" + record.files[0].name, record.files[0])
        }
    }

    // MARK: - Cancelling and deleting

    enum Removal { case notFound, cancelled(JSON), deleted }

    /// Cancels a queued or running job (waiting up to `wait` for a running one to stop), or deletes
    /// a finished one's files and forgets it. Its ledger record, if any, stays.
    func remove(_ id: String, for exporter: Exporter, wait: Duration = .seconds(5)) async -> Removal {
        enum Step { case missing, waitFor, deleted, cancelledQueued(JSON) }
        let step: Step = lock.withLock {
            guard var entry = entries[id], exporter.sees(entry.record) else { return Step.missing }
            if entry.record.status.isFinished {
                entries[id] = nil
                try? FileManager.default.removeItem(atPath: folder(id))
                try? FileManager.default.removeItem(atPath: recordPath(id))
                return .deleted
            }
            if let index = queue.firstIndex(of: id) {
                queue.remove(at: index)
                entry.record.status = .cancelled
                entry.record.finishedAt = Self.now()
                entry.work = nil
                entries[id] = entry
                try? FileManager.default.removeItem(atPath: folder(id))
                persist(entry.record)
                return .cancelledQueued(entry.record.json())
            }
            entry.flag.stop(.cancelled)
            return .waitFor
        }
        switch step {
        case .missing: return .notFound
        case .deleted:
            logger.info("export \(id): deleted")
            return .deleted
        case .cancelledQueued(let json):
            logger.info("export \(id): cancelled while queued")
            return .cancelled(json)
        case .waitFor:
            logger.info("export \(id): cancelling")
            let deadline = ContinuousClock.now + wait
            while ContinuousClock.now < deadline, lock.withLock({ entries[id]?.record.status.isFinished == false }) {
                try? await Task.sleep(for: .milliseconds(25))
            }
            return lock.withLock { entries[id].map { Removal.cancelled($0.record.json()) } } ?? .notFound
        }
    }

    // MARK: - Running

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await _ in self.wakeups {
                while !Task.isCancelled, let id = self.takeNext() {
                    await self.execute(id)
                }
                if Task.isCancelled { break }
            }
        }
        stopQueued()
    }

    /// The next queued job, now running.
    private func takeNext() -> String? {
        lock.withLock {
            guard !stopping, running == nil, !queue.isEmpty else { return nil }
            let id = queue.removeFirst()
            running = id
            entries[id]?.record.status = .running
            entries[id]?.record.startedAt = Self.now()
            if let record = entries[id]?.record { persist(record) }
            return id
        }
    }

    private func execute(_ id: String) async {
        guard let started = lock.withLock({ entries[id].flatMap { e in e.work.map { ($0, e.flag) } } }) else {
            finish(id) { $0.status = .failed; $0.error = .init(code: "internal", message: "the job lost its source") }
            return
        }
        let (work, flag) = started
        logger.info("export \(id): running")
        let handoff = Handoff<Result<ExportOutcome, ExportError>?>()
        let thread = Thread { [self] in
            let result: Result<ExportOutcome, ExportError>
            do throws(ExportError) {
                result = .success(try ModelExport.run(work.job, model: work.model, adapter: work.adapter, cancelled: { flag.stopped != nil },
                                                      progress: { self.report(id, $0) }))
            } catch {
                result = .failure(error)
            }
            handoff.put(result)
        }
        thread.name = "verity-export"
        thread.stackSize = 8 << 20
        let finished = await withTaskCancellationHandler {
            thread.start()
            return await handoff.value()
        } onCancel: {
            flag.stop(.shutdown)
            DispatchQueue.global().asyncAfter(deadline: .now() + Self.shutdownGrace) { handoff.put(nil) }
        }
        let root = folder(id)
        switch finished {
        case nil:
            logger.warning("export \(id): still running \(Self.shutdownGrace) s after shutdown began; left to the next start to clean up")
            finish(id, clean: false) { $0.status = .failed; $0.error = .init(code: "interrupted", message: "The server stopped while the export ran.") }
        case .failure(let error)?:
            let stop = flag.stopped
            logger.info("export \(id): \(stop == .cancelled ? "cancelled" : "failed: \(error.message)")")
            finish(id, clean: true) { record in
                if error.code == .cancelled || stop != nil {
                    record.status = stop == .shutdown ? .failed : .cancelled
                    if stop == .shutdown { record.error = .init(code: "interrupted", message: "The server stopped while the export ran.") }
                } else {
                    record.status = .failed
                    record.error = .init(code: Self.code(error.code), message: error.message)
                }
            }
        case .success(let outcome)?:
            if flag.stopped == .cancelled {
                // An export that does not poll for cancellation (safetensors, LoRA) ran to the end.
                logger.info("export \(id): cancelled")
                finish(id, clean: true) { $0.status = .cancelled }
                return
            }
            let files = outcome.files.map { ExportRecord.File(name: Self.relative($0.path, to: root), sha256: $0.sha256, bytes: $0.bytes) }
            update(id) { record in
                record.type = outcome.type
                record.files = files
                record.notes = outcome.notes
                record.progress = .init(stage: "recording", done: 0, total: 1, item: nil)
            }
            let job = work.job
            let provenance = ExportProvenance(
                format: outcome.format.rawValue, type: outcome.type, source: job.source, sourceDigest: job.sourceDigest,
                adapter: job.adapterSource, adapterDigest: job.adapterDigest, adapterScale: job.adapterSource != nil ? Double(job.adapterScale) : nil,
                merged: job.merge, tool: job.tool, files: files.map { ExportProvenance.File(name: $0.name, sha256: $0.sha256, bytes: $0.bytes) })
            // Not cancelled with the service: a record half-way in is finished.
            let recording = Task { [ledger] in try await ledger.recordExport(provenance, sender: work.sender) }
            do {
                let (recordID, receipt) = try await recording.value
                logger.info("export \(id): succeeded, \(files.count) file(s), recorded as \(recordID)")
                finish(id, clean: false) { record in
                    record.status = .succeeded
                    record.recordID = recordID
                    record.receipt = receipt
                    record.progress = .init(stage: "done", done: 1, total: 1, item: nil)
                }
            } catch {
                logger.error("export \(id): written but not recorded: \(error)")
                finish(id, clean: false) { record in
                    record.status = .failed
                    record.error = .init(code: "recording_failed",
                                         message: "The export was written, but recording it in the ledger failed: \(error). Its files are kept.")
                }
            }
        }
    }

    /// Records the export's progress (called on the export's threads).
    private func report(_ id: String, _ progress: ExportProgress) {
        update(id) { $0.progress = .init(stage: progress.stage, done: progress.done, total: progress.total, item: progress.item) }
    }

    private func update(_ id: String, _ change: (inout ExportRecord) -> Void) {
        lock.withLock { if entries[id] != nil { change(&entries[id]!.record) } }
    }

    /// Ends the running job: applies `change`, stamps the time, keeps the record, frees the slot;
    /// `clean` removes the job's files.
    private func finish(_ id: String, clean: Bool = false, _ change: (inout ExportRecord) -> Void) {
        lock.withLock {
            if entries[id] != nil {
                change(&entries[id]!.record)
                entries[id]!.record.finishedAt = Self.now()
                entries[id]!.work = nil
                if clean {
                    entries[id]!.record.files = []
                    try? FileManager.default.removeItem(atPath: folder(id))
                }
                persist(entries[id]!.record)
            }
            if running == id { running = nil }
        }
    }

    /// At shutdown: the queued jobs will not run.
    private func stopQueued() {
        lock.withLock {
            stopping = true
            for id in queue {
                guard entries[id] != nil else { continue }
                entries[id]!.record.status = .failed
                entries[id]!.record.finishedAt = Self.now()
                entries[id]!.record.error = .init(code: "interrupted", message: "The server stopped before the export started.")
                entries[id]!.work = nil
                try? FileManager.default.removeItem(atPath: folder(id))
                persist(entries[id]!.record)
            }
            queue = []
        }
        wake.finish()
    }

    /// Takes up the jobs kept in `exports/`: those that were queued or running failed with the
    /// server; the folders of jobs that wrote nothing are removed.
    private func recover() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasSuffix(".json") {
            guard var record = ExportRecord.read(directory + "/" + name), name == record.id + ".json" else {
                logger.warning("exports: \(directory)/\(name) is not an export job record; left alone")
                continue
            }
            if !record.status.isFinished {
                record.status = .failed
                record.finishedAt = record.finishedAt ?? Self.now()
                record.error = .init(code: "interrupted", message: "The server stopped while the export \(record.startedAt == nil ? "waited" : "ran").")
                record.files = []
            }
            if record.files.isEmpty { try? FileManager.default.removeItem(atPath: folder(record.id)) }
            persist(record)
            entries[record.id] = Entry(record: record, work: nil)
        }
        if !entries.isEmpty { logger.info("exports: \(entries.count) job(s) kept in \(directory)") }
    }

    private func persist(_ record: ExportRecord) {
        do { try record.write(to: recordPath(record.id)) } catch {
            logger.error("export \(record.id): cannot keep its record in \(recordPath(record.id)): \(error)")
        }
    }

    static func now() -> Int { Int(Date().timeIntervalSince1970) }

    static func relative(_ path: String, to root: String) -> String {
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : URL(fileURLWithPath: path).lastPathComponent
    }

    static func code(_ code: ExportError.Code) -> String {
        switch code {
        case .invalidSource: "invalid_source"
        case .invalidOption: "invalid_option"
        case .unsupported: "unsupported"
        case .io: "io_error"
        case .cancelled: "cancelled"
        }
    }
}

/// A value handed from a thread to one waiting task: the first `put` wins, later ones are dropped.
final class Handoff<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [Value] = []   // at most one
    private var continuation: CheckedContinuation<Value, Never>?
    private var taken = false

    func put(_ value: Value) {
        lock.lock()
        guard !taken, stored.isEmpty else { lock.unlock(); return }
        if let continuation {
            self.continuation = nil
            taken = true
            lock.unlock()
            continuation.resume(returning: value)
        } else {
            stored = [value]
            lock.unlock()
        }
    }

    func value() async -> Value {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let value = stored.first {
                taken = true
                lock.unlock()
                continuation.resume(returning: value)
            } else {
                self.continuation = continuation
                lock.unlock()
            }
        }
    }
}
