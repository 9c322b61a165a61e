import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Requests to the hub over async-http-client, with redirects followed here rather than by the
/// client so that the bearer token goes only to the endpoint's own origin (a CDN that an LFS file
/// redirects to never sees it, as with huggingface_hub).
struct HubTransport: Sendable {
    let http: HTTPClient
    let environment: HubEnvironment

    enum Redirects {
        /// Follow redirects within the current origin; stop at one that leaves it and return the 3xx
        /// (huggingface_hub's HEAD: its `Location` is where the file is downloaded from).
        case sameOrigin
        /// Follow every redirect.
        case all
    }

    /// Connection settings: connect within 10 s, and a read that stalls for 60 s fails (and is resumed).
    static func configuration() -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(60))
        configuration.decompression = .disabled
        return configuration
    }

    /// Sends `method url` with `headers` (plus user-agent, and the token on the endpoint's origin),
    /// following redirects per `redirects`.
    /// - Returns: the response (body not yet read) and the URL that answered it.
    /// - Throws: ``HubError/Code-swift.struct/network`` when the connection fails; server for a bad redirect.
    func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], redirects: Redirects) async throws(HubError)
        -> (HTTPClientResponse, String)
    {
        var current = url
        for _ in 0...HubHTTP.maxRedirects {
            var request = HTTPClientRequest(url: current)
            request.method = method
            request.headers.add(name: "User-Agent", value: Hub.userAgent)
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let token = environment.token, HubHTTP.sameOrigin(current, environment.endpoint) {
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
            }
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, deadline: .distantFuture)
            } catch {
                throw Self.networkError(error, url: current)
            }
            guard (300..<400).contains(response.status.code), response.status != .notModified,
                  let location = response.headers.first(name: "Location")
            else { return (response, current) }
            guard let next = HubHTTP.resolveRedirect(location, against: current) else {
                throw HubError(.server, "\(current) redirected to an invalid location: \(location)")
            }
            if redirects == .sameOrigin && !HubHTTP.sameOrigin(next, current) { return (response, current) }
            _ = try? await response.body.collect(upTo: 1 << 20)
            current = next
        }
        throw HubError(.server, "too many redirects from \(url)")
    }

    static func networkError(_ error: any Error, url: String) -> HubError {
        if let hub = error as? HubError { return hub }
        if error is CancellationError { return HubError(.network, "cancelled: \(url)", cause: error) }
        return HubError(.network, "cannot reach \(url): \(error)", cause: error)
    }

    /// A small response body (an API answer or an error page), at most `limit` bytes.
    static func collect(_ response: HTTPClientResponse, limit: Int, url: String) async throws(HubError) -> Data {
        do {
            let buffer = try await response.body.collect(upTo: limit)
            return Data(buffer.readableBytesView)
        } catch {
            throw networkError(error, url: url)
        }
    }

    /// The revision endpoint (`GET /api/models/{repo}/revision/{revision}?blobs=true`): the commit and
    /// every file with its size and, for LFS files, its sha256.
    func revisionInfo(repo: String, revision: String) async throws(HubError) -> HubRepoInfo {
        let url = environment.endpoint + "/api/models/" + repo + "/revision/" + HubHTTP.encodeSegment(revision) + "?blobs=true"
        let (response, answered) = try await send(.GET, url, headers: [("Accept", "application/json")], redirects: .all)
        guard response.status == .ok else {
            _ = try? await Self.collect(response, limit: 1 << 16, url: answered)
            throw HubHTTP.error(status: response.status, headers: response.headers, repo: repo, what: "\(repo)@\(revision)",
                                isFile: false, environment: environment)
        }
        let body = try await Self.collect(response, limit: 64 << 20, url: answered)
        return try HubRepoInfo.decode(body, repo: repo, revision: revision, endpoint: environment.endpoint)
    }
}

/// The revision endpoint's answer: `{"sha": "<commit>", "siblings": [{"rfilename", "size", "blobId", "lfs": {"sha256", "size"}}]}`.
struct HubRepoInfo: Sendable, Equatable {
    struct File: Sendable, Equatable {
        var path: String
        var size: Int64?
        var lfsSHA256: String?
    }

    var commit: String
    var files: [File]

    private struct Wire: Decodable {
        struct Sibling: Decodable {
            struct LFS: Decodable {
                var sha256: String?
                var size: Int64?
            }
            var rfilename: String
            var size: Int64?
            var lfs: LFS?
        }
        var sha: String?
        var siblings: [Sibling]?
    }

    /// Decodes and checks the answer: a 40-hex commit, file names that are paths inside the repo,
    /// LFS hashes that are 64 hex digits.
    static func decode(_ data: Data, repo: String, revision: String, endpoint: String) throws(HubError) -> HubRepoInfo {
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: data)
        } catch {
            throw HubError(.server, "\(endpoint) did not answer the revision API for \(repo)@\(revision) with the hub's JSON: \(error)", cause: error)
        }
        guard let sha = wire.sha?.lowercased(), HubModelReference.isCommitHash(sha) else {
            throw HubError(.server, "\(endpoint) gave no commit hash (sha) for \(repo)@\(revision)")
        }
        var files: [File] = []
        for sibling in wire.siblings ?? [] {
            guard HubPath.isSafeRelative(sibling.rfilename) else {
                throw HubError(.server, "\(endpoint) listed a file of \(repo) that is not a path inside the repo: \(sibling.rfilename)")
            }
            let lfs = sibling.lfs?.sha256?.lowercased()
            if let hash = lfs, !HubHTTP.isHex(hash, count: 64) {
                throw HubError(.server, "\(endpoint) gave \(repo)/\(sibling.rfilename) an LFS sha256 that is not 64 hex digits: \(hash)")
            }
            files.append(File(path: sibling.rfilename, size: sibling.lfs?.size ?? sibling.size, lfsSHA256: lfs))
        }
        return HubRepoInfo(commit: sha, files: files)
    }
}
