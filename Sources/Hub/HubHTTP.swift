import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The hub's HTTP conventions (huggingface_hub `file_download.py`, `utils/_http.py`): its headers,
/// ETag normalization, redirects, and its error codes.
enum HubHTTP {
    static let repoCommitHeader = "X-Repo-Commit"
    static let linkedETagHeader = "X-Linked-Etag"
    static let linkedSizeHeader = "X-Linked-Size"
    static let errorCodeHeader = "X-Error-Code"
    static let errorMessageHeader = "X-Error-Message"
    static let maxRedirects = 10

    /// huggingface_hub `_normalize_etag`: without a weak `W/` prefix and surrounding quotes.
    static func normalizeETag(_ etag: String?) -> String? {
        guard var value = etag?.trimmingCharacters(in: .whitespaces) else { return nil }
        if value.hasPrefix("W/") { value.removeFirst(2) }
        value = value.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        return value.isEmpty ? nil : value
    }

    /// An ETag usable as a file name in `blobs/`: `[A-Za-z0-9._-]`, not `.` or `..`, at most 128 characters.
    static func isSafeETag(_ etag: String) -> Bool {
        etag.utf8.count <= 128 && etag != "." && etag != ".." && etag.unicodeScalars.allSatisfy(HubModelReference.isRepoCharacter)
    }

    static func isHex(_ s: String, count: Int) -> Bool {
        s.utf8.count == count && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }
    }

    /// `location` (absolute, or relative to `base`) as an absolute http(s) URL, or nil.
    static func resolveRedirect(_ location: String, against base: String) -> String? {
        guard let baseURL = URL(string: base), let url = URL(string: location, relativeTo: baseURL)?.absoluteURL,
              let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil
        else { return nil }
        return url.absoluteString
    }

    /// Scheme, host and port of a URL (ports defaulted), for deciding whether a redirect leaves the hub.
    static func origin(_ url: String) -> String? {
        guard let u = URL(string: url), let scheme = u.scheme?.lowercased(), let host = u.host?.lowercased() else { return nil }
        let port = u.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(host):\(port)"
    }

    static func sameOrigin(_ a: String, _ b: String) -> Bool {
        guard let x = origin(a), let y = origin(b) else { return false }
        return x == y
    }

    /// Percent-encodes a path inside a repo (slashes kept), as huggingface_hub's `quote(filename)`.
    static func encodePath(_ path: String) -> String {
        path.addingPercentEncoding(withAllowedCharacters: pathAllowed) ?? path
    }

    /// Percent-encodes a revision with nothing kept (`refs/pr/1` → `refs%2Fpr%2F1`), as `quote(revision, safe="")`.
    static func encodeSegment(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: segmentAllowed) ?? segment
    }

    private static let segmentAllowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    private static let pathAllowed = segmentAllowed.union(CharacterSet(charactersIn: "/"))

    /// What a non-success status from the hub means, in the user's terms.
    /// - Parameters:
    ///   - what: the thing asked for (`org/name@main`, or `org/name@main: config.json`).
    ///   - isFile: a `resolve` request (404 without a code means the file is missing).
    static func error(status: HTTPResponseStatus, headers: HTTPHeaders, repo: String, what: String, isFile: Bool,
                      environment: HubEnvironment) -> HubError {
        let code = headers.first(name: errorCodeHeader) ?? ""
        let hubMessage = headers.first(name: errorMessageHeader).map { ": \($0)" } ?? ""
        let tokenAdvice = environment.token == nil
            ? "set HF_TOKEN or log in with `huggingface-cli login`"
            : "the token from \(environment.tokenSource ?? "HF_TOKEN") was refused; check that it is valid and has access (set HF_TOKEN or log in with `huggingface-cli login`)"
        switch (status.code, code) {
        case (_, "RevisionNotFound"):
            return HubError(.revisionNotFound, "revision not found: \(what) (HTTP \(status.code)\(hubMessage))")
        case (_, "EntryNotFound"):
            return HubError(.noMatchingFile, "file not found: \(what) (HTTP \(status.code)\(hubMessage))")
        case (_, "GatedRepo"), (403, _):
            return HubError(.unauthorized, "access to \(repo) denied (HTTP \(status.code)\(hubMessage)); it is gated or private: \(tokenAdvice)")
        case (_, "RepoNotFound"):
            return HubError(.repoNotFound, "repository \(repo) not found at \(environment.endpoint) (HTTP \(status.code)\(hubMessage)); "
                + "check the name; if it is private or gated, \(tokenAdvice)")
        case (401, _):
            return HubError(.unauthorized, "access to \(repo) denied (HTTP 401\(hubMessage)); it is gated or private: \(tokenAdvice)")
        case (404, _):
            return isFile
                ? HubError(.noMatchingFile, "file not found: \(what) (HTTP 404\(hubMessage))")
                : HubError(.repoNotFound, "repository \(repo) not found at \(environment.endpoint) (HTTP 404\(hubMessage))")
        default:
            return HubError(.server, "\(environment.endpoint) answered HTTP \(status.code) for \(what)\(hubMessage)")
        }
    }
}
