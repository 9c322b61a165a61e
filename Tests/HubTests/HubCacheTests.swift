import Foundation
import Testing
@testable import Hub

@Suite("huggingface_hub's cache layout")
struct HubCacheTests {
    let cache = HubCache(root: "/c/hub")
    let commit = String(repeating: "0123456789", count: 4)

    @Test("folder, blob, snapshot, ref and lock paths")
    func paths() {
        #expect(HubCache.repoFolderName("julien-c/EsperBERTo-small") == "models--julien-c--EsperBERTo-small")
        #expect(cache.repoDirectory("org/name") == "/c/hub/models--org--name")
        #expect(cache.blobPath("org/name", etag: "abc") == "/c/hub/models--org--name/blobs/abc")
        #expect(cache.snapshotPath("org/name", commit: commit, file: "sub/x.json") == "/c/hub/models--org--name/snapshots/\(commit)/sub/x.json")
        #expect(cache.refPath("org/name", revision: "refs/pr/1") == "/c/hub/models--org--name/refs/refs/pr/1")
        #expect(cache.lockPath("org/name", etag: "abc") == "/c/hub/.locks/models--org--name/abc.lock")
    }

    @Test("snapshot links are relative, one more ../ per folder",
          arguments: [("config.json", "../../blobs/e"), ("a/b.gguf", "../../../blobs/e"), ("a/b/c.bin", "../../../../blobs/e")])
    func linkTargets(_ file: String, _ target: String) {
        #expect(HubCache.blobLinkTarget(file: file, etag: "e") == target)
    }

    @Test("link, ref and lookup on disk: the link resolves to the blob, refs hold the commit without a newline")
    func onDisk() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hub-cache-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = HubCache(root: root)
        try FileManager.default.createDirectory(atPath: cache.blobsDirectory("o/n"), withIntermediateDirectories: true)
        try Data("hello".utf8).write(to: URL(fileURLWithPath: cache.blobPath("o/n", etag: "e1")))
        try cache.link("o/n", commit: commit, file: "sub/f.txt", etag: "e1")
        let link = cache.snapshotPath("o/n", commit: commit, file: "sub/f.txt")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "../../../blobs/e1")
        #expect(try String(contentsOfFile: link, encoding: .utf8) == "hello")
        // Relinking to another blob replaces the link.
        try Data("world".utf8).write(to: URL(fileURLWithPath: cache.blobPath("o/n", etag: "e2")))
        try cache.link("o/n", commit: commit, file: "sub/f.txt", etag: "e2")
        #expect(try String(contentsOfFile: link, encoding: .utf8) == "world")

        #expect(cache.commit("o/n", revision: "main") == nil)
        try cache.writeRef("o/n", revision: "main", commit: commit)
        #expect(try String(contentsOfFile: cache.refPath("o/n", revision: "main"), encoding: .utf8) == commit)
        #expect(cache.commit("o/n", revision: "main") == commit)
        #expect(cache.commit("o/n", revision: commit) == commit)
        #expect(cache.commit("o/n", revision: String(repeating: "f", count: 40)) == nil)
        try cache.writeRef("o/n", revision: commit, commit: commit)
        #expect(!FileManager.default.fileExists(atPath: cache.refPath("o/n", revision: commit)))
        #expect(cache.snapshotFiles("o/n", commit: commit) == ["sub/f.txt"])
        // A broken link is not a cached file.
        try FileManager.default.removeItem(atPath: cache.blobPath("o/n", etag: "e2"))
        #expect(cache.snapshotFiles("o/n", commit: commit) == [])
    }

    @Test("cachedSnapshot: offline lookup by ref and tag; nil when a shard or the tagged file is missing")
    func cachedSnapshot() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hub-snap-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let environment = HubEnvironment(endpoint: "http://127.0.0.1:9", cacheDirectory: root, offline: true)
        let client = HubClient(environment: environment, progress: .silent)
        let cache = client.cache
        func put(_ repo: String, _ file: String, _ content: String) throws {
            let etag = "e" + String(content.hashValue & 0xFFFFFF, radix: 16) + String(file.count)
            try FileManager.default.createDirectory(atPath: cache.blobsDirectory(repo), withIntermediateDirectories: true)
            try Data(content.utf8).write(to: URL(fileURLWithPath: cache.blobPath(repo, etag: etag)))
            try cache.link(repo, commit: commit, file: file, etag: etag)
        }
        try put("o/gguf", "m-Q8_0.gguf", "q8")
        try put("o/gguf", "m-Q4_K_M-00001-of-00002.gguf", "a")
        try cache.writeRef("o/gguf", revision: "main", commit: commit)
        #expect(try client.cachedSnapshot(HubModelReference(parsing: "o/gguf:Q8_0"))?.kind == .gguf(files: [cache.snapshotPath("o/gguf", commit: commit, file: "m-Q8_0.gguf")]))
        // The default picks Q4_K_M, whose second shard is not cached.
        #expect(try client.cachedSnapshot(HubModelReference(parsing: "o/gguf")) == nil)
        try put("o/gguf", "m-Q4_K_M-00002-of-00002.gguf", "b")
        let snapshot = try #require(try client.cachedSnapshot(HubModelReference(parsing: "o/gguf")))
        #expect(snapshot.commit == commit)
        #expect(snapshot.directory == cache.snapshotDirectory("o/gguf", commit: commit))
        #expect(snapshot.kind == .gguf(files: ["m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M-00002-of-00002.gguf"].map { cache.snapshotPath("o/gguf", commit: commit, file: $0) }))
        #expect(try client.cachedSnapshot(HubModelReference(parsing: "o/gguf", revision: "v2")) == nil)
        #expect(try client.cachedSnapshot(HubModelReference(parsing: "o/other")) == nil)

        try put("o/st", "config.json", "{}")
        try put("o/st", "model.safetensors.index.json", #"{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#)
        try put("o/st", "model-00001-of-00002.safetensors", "w1")
        try cache.writeRef("o/st", revision: "main", commit: commit)
        #expect(try client.cachedSnapshot(HubModelReference(parsing: "o/st")) == nil)
        try put("o/st", "model-00002-of-00002.safetensors", "w2")
        #expect(try client.cachedSnapshot(HubModelReference(parsing: "o/st"))?.kind == .safetensors)
    }
}
