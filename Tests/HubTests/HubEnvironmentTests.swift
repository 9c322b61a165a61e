import Foundation
import Testing
@testable import Hub

@Suite("Hub environment, as huggingface_hub reads it")
struct HubEnvironmentTests {
    @Test("defaults: huggingface.co, ~/.cache/huggingface/hub, online, no token")
    func defaults() {
        let env = HubEnvironment.current(["HOME": "/home/u"])
        #expect(env.endpoint == "https://huggingface.co")
        #expect(env.cacheDirectory == "/home/u/.cache/huggingface/hub")
        #expect(env.offline == false)
        #expect(env.token == nil)
    }

    @Test("HF_HOME, XDG_CACHE_HOME, HF_HUB_CACHE and the legacy HUGGINGFACE_HUB_CACHE")
    func cacheLocation() {
        #expect(HubEnvironment.current(["HOME": "/h", "XDG_CACHE_HOME": "/xdg"]).cacheDirectory == "/xdg/huggingface/hub")
        #expect(HubEnvironment.current(["HOME": "/h", "HF_HOME": "/hf"]).cacheDirectory == "/hf/hub")
        #expect(HubEnvironment.current(["HOME": "/h", "HF_HOME": "~/hf"]).cacheDirectory == "/h/hf/hub")
        #expect(HubEnvironment.current(["HOME": "/h", "HF_HOME": "/hf", "HF_HUB_CACHE": "/c"]).cacheDirectory == "/c")
        #expect(HubEnvironment.current(["HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/legacy"]).cacheDirectory == "/legacy")
        #expect(HubEnvironment.current(["HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/legacy", "HF_HUB_CACHE": "/new"]).cacheDirectory == "/new")
    }

    @Test("HF_ENDPOINT loses its trailing slash")
    func endpoint() {
        #expect(HubEnvironment.current(["HOME": "/h", "HF_ENDPOINT": "http://127.0.0.1:9/"]).endpoint == "http://127.0.0.1:9")
    }

    @Test("HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE: 1, ON, YES, TRUE in any case",
          arguments: [("1", true), ("true", true), ("YES", true), ("on", true), ("0", false), ("false", false), ("", false), ("no", false)])
    func offline(_ value: String, _ expected: Bool) {
        #expect(HubEnvironment.current(["HOME": "/h", "HF_HUB_OFFLINE": value]).offline == expected)
        #expect(HubEnvironment.current(["HOME": "/h", "TRANSFORMERS_OFFLINE": value]).offline == expected)
    }

    @Test("the token: HF_TOKEN, else HF_TOKEN_PATH, else $HF_HOME/token (trimmed)")
    func token() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hub-env-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "hf_file_token\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        try "  hf_other \n".write(toFile: dir + "/other", atomically: true, encoding: .utf8)

        let fromHome = HubEnvironment.current(["HOME": "/nowhere", "HF_HOME": dir])
        #expect(fromHome.token == "hf_file_token")
        #expect(fromHome.tokenSource == dir + "/token")
        #expect(HubEnvironment.current(["HOME": "/nowhere", "HF_HOME": dir, "HF_TOKEN_PATH": dir + "/other"]).token == "hf_other")
        let fromVariable = HubEnvironment.current(["HOME": "/nowhere", "HF_HOME": dir, "HF_TOKEN": "hf_env"])
        #expect(fromVariable.token == "hf_env")
        #expect(fromVariable.tokenSource == "HF_TOKEN")
        #expect(HubEnvironment.current(["HOME": "/nowhere", "HF_HOME": dir, "HUGGING_FACE_HUB_TOKEN": "hf_legacy"]).token == "hf_legacy")
        #expect(HubEnvironment.current(["HOME": "/nowhere", "HF_HOME": dir + "/missing"]).token == nil)
    }
}
