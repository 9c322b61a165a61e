import Foundation
import NIOHTTP1
import Testing
@testable import Hub

@Suite("The hub's HTTP conventions")
struct HubHTTPTests {
    @Test("ETags lose quotes and a weak W/ prefix, as huggingface_hub's _normalize_etag",
          arguments: [("\"abc\"", "abc"), ("W/\"abc\"", "abc"), ("abc", "abc"), ("\"\"", nil), (" \"d41d\" ", "d41d")] as [(String, String?)])
    func etags(_ raw: String, _ normalized: String?) {
        #expect(HubHTTP.normalizeETag(raw) == normalized)
    }

    @Test("an ETag must be a plain file name before it names a blob")
    func safeETags() {
        #expect(HubHTTP.isSafeETag(String(repeating: "a", count: 64)))
        for bad in ["../x", "a/b", "..", ".", "a b", String(repeating: "a", count: 129)] { #expect(!HubHTTP.isSafeETag(bad)) }
    }

    @Test("redirects: absolute, host-relative and path-relative locations",
          arguments: [
              ("https://cdn.example.com/x?sig=1", "http://127.0.0.1:8/o/n/resolve/main/f", "https://cdn.example.com/x?sig=1"),
              ("/api/models/new/name/revision/main", "http://127.0.0.1:8/api/models/old/name/revision/main", "http://127.0.0.1:8/api/models/new/name/revision/main"),
              ("../other/f", "http://h:1/o/n/resolve/main/f", "http://h:1/o/n/resolve/other/f"),
          ])
    func redirects(_ location: String, _ base: String, _ expected: String) {
        #expect(HubHTTP.resolveRedirect(location, against: base) == expected)
    }

    @Test("a redirect to a non-HTTP scheme is refused")
    func badRedirect() {
        #expect(HubHTTP.resolveRedirect("file:///etc/passwd", against: "http://h/x") == nil)
        #expect(HubHTTP.resolveRedirect("ftp://h/x", against: "http://h/x") == nil)
    }

    @Test("origins: scheme, host and port decide where the token may go")
    func origins() {
        #expect(HubHTTP.sameOrigin("https://huggingface.co/a", "https://huggingface.co:443/b"))
        #expect(HubHTTP.sameOrigin("http://127.0.0.1:8/a", "http://127.0.0.1:8"))
        #expect(!HubHTTP.sameOrigin("http://127.0.0.1:8/a", "http://127.0.0.1:9/a"))
        #expect(!HubHTTP.sameOrigin("https://huggingface.co/a", "https://cdn-lfs.huggingface.co/a"))
        #expect(!HubHTTP.sameOrigin("http://huggingface.co/a", "https://huggingface.co/a"))
    }

    @Test("paths keep their slashes, revisions are encoded whole")
    func encoding() {
        #expect(HubHTTP.encodePath("sub dir/model Q4.gguf") == "sub%20dir/model%20Q4.gguf")
        #expect(HubHTTP.encodeSegment("refs/pr/1") == "refs%2Fpr%2F1")
    }

    @Test("Content-Range's first byte")
    func contentRange() {
        #expect(DownloadJob.contentRangeStart("bytes 100-199/200") == 100)
        #expect(DownloadJob.contentRangeStart("bytes */200") == nil)
        #expect(DownloadJob.contentRangeStart(nil) == nil)
    }

    @Test("the hub's error codes become HubError codes with its message",
          arguments: [(404, "RepoNotFound", HubError.Code.repoNotFound), (404, "RevisionNotFound", .revisionNotFound),
                      (404, "EntryNotFound", .noMatchingFile), (401, "GatedRepo", .unauthorized), (403, "", .unauthorized),
                      (401, "", .unauthorized), (404, "", .repoNotFound), (500, "", .server)])
    func errors(_ status: Int, _ code: String, _ expected: HubError.Code) {
        var headers = HTTPHeaders([("X-Error-Message", "the hub says no")])
        if !code.isEmpty { headers.add(name: "X-Error-Code", value: code) }
        let env = HubEnvironment(endpoint: "http://h", cacheDirectory: "/c")
        let error = HubHTTP.error(status: HTTPResponseStatus(statusCode: status), headers: headers, repo: "o/n", what: "o/n@main",
                                  isFile: false, environment: env)
        #expect(error.code == expected)
        #expect(error.message.contains("the hub says no"))
        if expected == .unauthorized { #expect(error.message.contains("HF_TOKEN") && error.message.contains("huggingface-cli login")) }
    }

    @Test("the revision API's answer: commit and files checked")
    func repoInfo() throws {
        let sha = String(repeating: "a", count: 40)
        let lfs = String(repeating: "b", count: 64)
        let good = #"{"sha": "\#(sha)", "siblings": [{"rfilename": "config.json", "size": 10}, {"rfilename": "m.gguf", "size": 5, "lfs": {"sha256": "\#(lfs)", "size": 7}}]}"#
        let info = try HubRepoInfo.decode(Data(good.utf8), repo: "o/n", revision: "main", endpoint: "e")
        #expect(info.commit == sha)
        #expect(info.files == [.init(path: "config.json", size: 10, lfsSHA256: nil), .init(path: "m.gguf", size: 7, lfsSHA256: lfs)])
        for bad in [#"{"siblings": []}"#, #"{"sha": "main"}"#, #"{"sha": "\#(sha)", "siblings": [{"rfilename": "../x"}]}"#,
                    #"{"sha": "\#(sha)", "siblings": [{"rfilename": "x", "lfs": {"sha256": "zz"}}]}"#, "<html>"] {
            #expect(throws: HubError.self) { try HubRepoInfo.decode(Data(bad.utf8), repo: "o/n", revision: "main", endpoint: "e") }
        }
    }
}
