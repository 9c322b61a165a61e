import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// The downloads of one pull: files of one commit, fetched concurrently (at most `maxParallel`) into
/// the cache, each verified before it enters `blobs/`.
struct DownloadJob: Sendable {
    let repo: String
    let revision: String
    let commit: String
    let cache: HubCache
    let transport: HubTransport
    let reporter: HubProgress
    let maxParallel: Int
    let maxRetries: Int

    /// Fetches `files` that the snapshot lacks.
    func fetch(_ files: [HubRepoInfo.File]) async throws(HubError) {
        var missing: [HubRepoInfo.File] = []
        for file in files {
            let path = cache.snapshotPath(repo, commit: commit, file: file.path)
            if HubCache.fileExists(path) {
                reporter.cached(file.path, bytes: file.size)
            } else {
                missing.append(file)
            }
        }
        guard !missing.isEmpty else { return }
        try checkSpace(for: missing)
        reporter.begin(repo: repo, revision: revision, commit: commit, files: missing.count, bytes: missing.reduce(0) { $0 + ($1.size ?? 0) })
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var queue = missing.makeIterator()
                for _ in 0..<maxParallel {
                    guard let file = queue.next() else { break }
                    group.addTask { try await self.fetch(file) }
                }
                while try await group.next() != nil {
                    if let file = queue.next() { group.addTask { try await self.fetch(file) } }
                }
            }
        } catch let error as HubError {
            throw error
        } catch {
            throw HubTransport.networkError(error, url: "\(repo)@\(commit)")
        }
    }

    /// statvfs against the bytes still to come (sizes from the revision API, less what `.incomplete`
    /// files already hold).
    func checkSpace(for files: [HubRepoInfo.File]) throws(HubError) {
        let blobs = cache.blobsDirectory(repo)
        try HubFiles.createDirectories(blobs)
        var needed: Int64 = 0
        for file in files {
            guard let size = file.size else { continue }
            if let sha = file.lfsSHA256, HubCache.fileExists(cache.blobPath(repo, etag: sha)) { continue }
            let partial = file.lfsSHA256.flatMap { try? FileManager.default.attributesOfItem(atPath: cache.blobPath(repo, etag: $0) + ".incomplete")[.size] as? Int64 } ?? 0
            needed += max(0, size - partial)
        }
        if let free = BlobFile.freeBytes(at: blobs), needed > free {
            throw HubError(.diskFull, "not enough disk space for \(repo): \(HubProgress.size(needed)) to download, \(HubProgress.size(free)) free in \(blobs)")
        }
    }

    /// One file: HEAD for its metadata, then (under the blob's lock) download, verify, link.
    func fetch(_ file: HubRepoInfo.File) async throws(HubError) {
        let url = transport.environment.endpoint + "/" + repo + "/resolve/" + commit + "/" + HubHTTP.encodePath(file.path)
        let what = "\(repo)@\(commit.prefix(12)): \(file.path)"
        let (head, answered) = try await transport.send(.HEAD, url, headers: [("Accept-Encoding", "identity")], redirects: .sameOrigin)
        let isRedirect = (300..<400).contains(head.status.code)
        guard (200..<300).contains(head.status.code) || isRedirect else {
            throw HubHTTP.error(status: head.status, headers: head.headers, repo: repo, what: what, isFile: true, environment: transport.environment)
        }
        guard let servedCommit = head.headers.first(name: HubHTTP.repoCommitHeader) else {
            throw HubError(.server, "\(answered) has no \(HubHTTP.repoCommitHeader) header: it does not look like a Hugging Face hub endpoint (check HF_ENDPOINT)")
        }
        guard servedCommit.lowercased() == commit else {
            throw HubError(.server, "\(answered) served commit \(servedCommit), not \(commit)")
        }
        guard let etag = HubHTTP.normalizeETag(head.headers.first(name: HubHTTP.linkedETagHeader) ?? head.headers.first(name: "ETag")) else {
            throw HubError(.server, "\(answered) has no ETag: the file cannot be stored in the cache")
        }
        guard HubHTTP.isSafeETag(etag) else { throw HubError(.server, "\(answered) sent an ETag that is not a file name: \(etag)") }
        let size = head.headers.first(name: HubHTTP.linkedSizeHeader).flatMap { Int64($0) }
            ?? (isRedirect ? nil : head.headers.first(name: "Content-Length").flatMap { Int64($0) })
            ?? file.size
        let location = isRedirect ? head.headers.first(name: "Location").flatMap { HubHTTP.resolveRedirect($0, against: answered) } ?? answered : answered
        let sha256 = file.lfsSHA256 ?? (HubHTTP.isHex(etag, count: 64) ? etag.lowercased() : nil)
        let gitBlob = sha256 == nil && HubHTTP.isHex(etag, count: 40) ? etag.lowercased() : nil

        let lock = try await FileLock.acquire(cache.lockPath(repo, etag: etag)) {
            reporter.note("waiting for another download of \(file.path) (\(cache.lockPath(repo, etag: etag)))")
        }
        defer { lock.release() }
        let blob = cache.blobPath(repo, etag: etag)
        if HubCache.fileExists(blob) {
            reporter.cached(file.path, bytes: size)
        } else {
            let start = DispatchTime.now().uptimeNanoseconds
            let bytes = try await download(location, to: blob, path: file.path, size: size, sha256: sha256, gitBlob: gitBlob)
            reporter.finished(file.path, bytes: bytes, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        try cache.link(repo, commit: commit, file: file.path, etag: etag)
    }

    /// Streams `location` into `<blob>.incomplete` (resuming what is there), verifies it, renames it
    /// to `blob`. Returns the file's size.
    func download(_ location: String, to blob: String, path: String, size: Int64?, sha256: String?, gitBlob: String?) async throws(HubError) -> Int64 {
        let file = try BlobFile(path: blob + ".incomplete")
        defer { file.close() }
        var hasher = SHA256()
        if let size, file.size > size { try file.truncate() }
        if file.size > 0 {
            try file.hashExisting(into: &hasher)
            reporter.resumed(file.size)
        }
        var failures = 0
        while size == nil || file.size < size! {
            let resumeAt = file.size
            var headers = [("Accept-Encoding", "identity")]
            if resumeAt > 0 { headers.append(("Range", "bytes=\(resumeAt)-")) }
            let response: HTTPClientResponse
            do {
                (response, _) = try await transport.send(.GET, location, headers: headers, redirects: .all)
            } catch where error.code == .network && failures < maxRetries && !Task.isCancelled {
                failures += 1
                try await backOff(failures, path: path, error: error)
                continue
            }
            switch response.status.code {
            case 200:
                if resumeAt > 0 {
                    // The server ignored Range: start over.
                    reporter.advance(-resumeAt)
                    try file.truncate()
                    hasher = SHA256()
                }
            case 206:
                guard Self.contentRangeStart(response.headers.first(name: "Content-Range")) == resumeAt else {
                    _ = try? await HubTransport.collect(response, limit: 1 << 16, url: location)
                    reporter.advance(-resumeAt)
                    try file.truncate()
                    hasher = SHA256()
                    failures += 1
                    guard failures <= maxRetries else { throw HubError(.server, "\(location) answered a Range request with the wrong range") }
                    continue
                }
            case 416 where resumeAt > 0:
                // Nothing after resumeAt: with an unknown size the file is complete; else start over.
                if size == nil { break }
                reporter.advance(-resumeAt)
                try file.truncate()
                hasher = SHA256()
                continue
            case 500..<600 where failures < maxRetries:
                failures += 1
                _ = try? await HubTransport.collect(response, limit: 1 << 16, url: location)
                try await backOff(failures, path: path, error: HubError(.server, "HTTP \(response.status.code)"))
                continue
            default:
                _ = try? await HubTransport.collect(response, limit: 1 << 16, url: location)
                throw HubHTTP.error(status: response.status, headers: response.headers, repo: repo, what: "\(repo): \(path)",
                                    isFile: true, environment: transport.environment)
            }
            if response.status.code == 416 { break }
            do {
                for try await chunk in response.body {
                    try chunk.withUnsafeReadableBytes { (bytes) throws(HubError) in
                        try file.write(bytes)
                        hasher.update(bufferPointer: bytes)
                    }
                    reporter.advance(Int64(chunk.readableBytes))
                    if let size, file.size > size {
                        file.discard()
                        throw HubError(.server, "\(location) sent more than the \(size) bytes of \(path); the download was discarded")
                    }
                }
            } catch let error as HubError {
                throw error
            } catch {
                guard failures < maxRetries, !Task.isCancelled else {
                    throw HubError(.network, "the download of \(repo)/\(path) was interrupted at \(HubProgress.size(file.size)) (\(error)); "
                        + "run the pull again to resume it", cause: error)
                }
                failures += 1
                try await backOff(failures, path: path, error: HubTransport.networkError(error, url: location))
                continue
            }
            if size == nil { break }
            if file.size < size! {
                guard failures < maxRetries else {
                    throw HubError(.network, "the download of \(repo)/\(path) ended at \(file.size) of \(size!) bytes; run the pull again to resume it")
                }
                failures += 1
                try await backOff(failures, path: path, error: HubError(.network, "short body"))
            }
        }
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        if let sha256, digest != sha256 {
            file.discard()
            throw HubError(.checksumMismatch, "\(repo)/\(path) failed verification: the hub's sha256 is \(sha256), the downloaded file's is \(digest); "
                + "the download was discarded, run the pull again")
        }
        if let gitBlob {
            var sha1 = Insecure.SHA1()
            sha1.update(data: Data("blob \(file.size)\u{0}".utf8))
            try file.readAll { sha1.update(bufferPointer: $0) }
            let id = sha1.finalize().map { String(format: "%02x", $0) }.joined()
            if id != gitBlob {
                file.discard()
                throw HubError(.checksumMismatch, "\(repo)/\(path) failed verification: the hub's git blob id is \(gitBlob), the downloaded file's is \(id); "
                    + "the download was discarded, run the pull again")
            }
        }
        let bytes = file.size
        try file.commit(to: blob)
        return bytes
    }

    private func backOff(_ failures: Int, path: String, error: HubError) async throws(HubError) {
        reporter.note("\(repo)/\(path): \(error.message); retrying (\(failures)/\(maxRetries))")
        do {
            try await Task.sleep(for: .milliseconds(250 << min(failures - 1, 4)))
        } catch {
            throw HubError(.network, "cancelled", cause: error)
        }
    }

    /// The first byte of `Content-Range: bytes START-END/TOTAL`.
    static func contentRangeStart(_ header: String?) -> Int64? {
        guard let header, header.lowercased().hasPrefix("bytes ") else { return nil }
        let range = header.dropFirst(6)
        guard let dash = range.firstIndex(of: "-") else { return nil }
        return Int64(range[..<dash].trimmingCharacters(in: .whitespaces))
    }
}
