import AsyncHTTPClient
import Foundation

/// Pulls models from the Hugging Face hub (or any endpoint that speaks its API) into huggingface_hub's
/// cache, which Python tools share.
///
/// A pull resolves the revision with the revision API (`/api/models/{repo}/revision/{rev}?blobs=true`:
/// the commit, the files, their sizes and LFS sha256), picks the files (``HubFileSelector``), and
/// downloads those the snapshot lacks, at most `maxParallelDownloads` at once: a HEAD on
/// `/{repo}/resolve/{commit}/{path}` gives the ETag (`X-Linked-Etag` for LFS files: their sha256),
/// `X-Repo-Commit`, `X-Linked-Size` and the redirect to the file's storage; the GET streams into
/// `blobs/<etag>.incomplete` under the lock huggingface_hub takes, resumes with `Range` after an
/// interruption, is checked against the hub's sha256 (or git blob id), and is renamed into `blobs/`
/// and linked from `snapshots/<commit>/`.
///
/// When the endpoint cannot be reached (or answers 401/403 or 5xx), a pull uses the cached snapshot
/// of the revision, as huggingface_hub does; with HF_HUB_OFFLINE it uses only the cache.
public final class HubClient: Sendable {
    public let environment: HubEnvironment
    public let progress: HubProgressStyle
    public let maxParallelDownloads: Int
    public var cache: HubCache { HubCache(root: environment.cacheDirectory) }

    /// Connection attempts after an interrupted transfer before a pull gives up (the `.incomplete`
    /// file stays, and the next pull resumes it).
    let maxRetries = 4

    /// - Parameters:
    ///   - environment: endpoint, token, cache and offline mode (default: from the process environment).
    ///   - progress: how downloads are reported.
    ///   - maxParallelDownloads: files downloaded at once (at least 1).
    public init(environment: HubEnvironment = .current(), progress: HubProgressStyle = .automatic, maxParallelDownloads: Int = 4) {
        self.environment = environment
        self.progress = progress
        self.maxParallelDownloads = max(1, maxParallelDownloads)
    }

    /// Makes `reference` available in the cache and returns its snapshot.
    ///
    /// Online: resolves the revision, picks the files, downloads what is missing. Offline
    /// (HF_HUB_OFFLINE), or when the hub cannot be reached: the cached snapshot of the revision.
    /// - Throws: ``HubError`` — repoNotFound, unauthorized, revisionNotFound, noMatchingFile (listing
    ///   the files), checksumMismatch, diskFull, offline, network, io, server.
    public func pull(_ reference: HubModelReference) async throws(HubError) -> HubSnapshot {
        let reporter = HubProgress(progress)
        if environment.offline {
            if let snapshot = try cachedSnapshot(reference) {
                reporter.done(snapshot)
                return snapshot
            }
            throw HubError(.offline, "HF_HUB_OFFLINE is set and \(reference.repo)@\(reference.revision) is not in the cache at "
                + "\(cache.repoDirectory(reference.repo)); unset HF_HUB_OFFLINE to download it")
        }
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: HubTransport.configuration())
        let transport = HubTransport(http: http, environment: environment)
        let result: Result<HubSnapshot, HubError>
        do {
            result = .success(try await pull(reference, transport: transport, reporter: reporter))
        } catch {
            result = .failure(error)
        }
        try? await http.shutdown()
        switch result {
        case .success(let snapshot):
            reporter.done(snapshot)
            return snapshot
        case .failure(let error):
            reporter.failed()
            throw error
        }
    }

    /// The cached snapshot of `reference` (no network): nil when the revision is not cached or its
    /// snapshot lacks the files the reference needs (the GGUF file(s) for the tag; or config.json and
    /// every safetensors shard).
    public func cachedSnapshot(_ reference: HubModelReference) throws(HubError) -> HubSnapshot? {
        let cache = self.cache
        guard let commit = cache.commit(reference.repo, revision: reference.revision) else { return nil }
        let files = cache.snapshotFiles(reference.repo, commit: commit)
        guard !files.isEmpty, let plan = try? HubFileSelector.plan(files: files, tag: reference.tag, repo: reference.repo) else { return nil }
        let directory = cache.snapshotDirectory(reference.repo, commit: commit)
        switch plan {
        case .gguf(let ggufs):
            return HubSnapshot(repo: reference.repo, commit: commit, directory: directory, kind: .gguf(files: ggufs.map { directory + "/" + $0 }))
        case .safetensors(_, let index):
            if let index {
                guard let data = FileManager.default.contents(atPath: directory + "/" + index),
                      let shards = try? HubFileSelector.shards(fromIndex: data, repo: reference.repo, indexPath: index),
                      shards.allSatisfy({ HubCache.fileExists(directory + "/" + $0) })
                else { return nil }
            }
            return HubSnapshot(repo: reference.repo, commit: commit, directory: directory, kind: .safetensors)
        }
    }

    /// Nothing to release: each pull opens and closes its own connections. Kept so that callers
    /// need not know.
    public func shutdown() async {}

    private func pull(_ reference: HubModelReference, transport: HubTransport, reporter: HubProgress) async throws(HubError) -> HubSnapshot {
        let repo = reference.repo
        let info: HubRepoInfo
        do {
            info = try await transport.revisionInfo(repo: repo, revision: reference.revision)
        } catch {
            guard error.code == .network || error.code == .server || error.code == .unauthorized else { throw error }
            if let snapshot = try cachedSnapshot(reference) {
                reporter.note("warning: \(error.message); using the cached snapshot \(snapshot.commit) of \(repo)@\(reference.revision)")
                return snapshot
            }
            if error.code == .network {
                throw HubError(.network, "\(error.message); and \(repo)@\(reference.revision) is not in the cache at \(cache.repoDirectory(repo))",
                               cause: error.cause)
            }
            throw error
        }
        let byPath = Dictionary(info.files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        let plan = try HubFileSelector.plan(files: info.files.map(\.path), tag: reference.tag, repo: repo)
        let job = DownloadJob(repo: repo, revision: reference.revision, commit: info.commit, cache: cache, transport: transport,
                              reporter: reporter, maxParallel: maxParallelDownloads, maxRetries: maxRetries)
        let directory = cache.snapshotDirectory(repo, commit: info.commit)
        let kind: HubSnapshot.Kind
        switch plan {
        case .gguf(let files):
            try await job.fetch(files.map { byPath[$0]! })
            kind = .gguf(files: files.map { directory + "/" + $0 })
        case .safetensors(let files, let index):
            // Small files first, then the weights: an interrupted pull never leaves weights without their config.
            try await job.fetch(files.filter { $0 != HubFileSelector.safetensorsSingle }.map { byPath[$0]! })
            var weights = files.filter { $0 == HubFileSelector.safetensorsSingle }
            if let index {
                guard let data = FileManager.default.contents(atPath: directory + "/" + index) else {
                    throw HubError(.io, "cannot read \(directory)/\(index)")
                }
                weights = try HubFileSelector.shards(fromIndex: data, repo: repo, indexPath: index)
                let missing = weights.filter { byPath[$0] == nil }
                guard missing.isEmpty else {
                    throw HubError(.noMatchingFile, "\(repo)/\(index) names shards the repo does not have: \(missing.joined(separator: ", "))")
                }
            }
            try await job.fetch(weights.map { byPath[$0]! })
            kind = .safetensors
        }
        try cache.writeRef(repo, revision: reference.revision, commit: info.commit)
        return HubSnapshot(repo: repo, commit: info.commit, directory: directory, kind: kind)
    }
}
