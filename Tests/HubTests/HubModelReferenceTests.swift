import Testing
@testable import Hub

@Suite("Hub model references")
struct HubModelReferenceTests {
    @Test("org/name with and without a tag, and the prefixes Ollama and llama-server accept",
          arguments: [
              ("org/name", "org/name", nil),
              ("org/name:Q4_K_M", "org/name", "Q4_K_M"),
              ("hf:org/name:q8_0", "org/name", "q8_0"),
              ("hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M", "bartowski/SmolLM2-135M-Instruct-GGUF", "Q4_K_M"),
              ("huggingface.co/org/name", "org/name", nil),
              ("https://huggingface.co/org/name", "org/name", nil),
              ("hf:hf.co/org/model.v1_2", "org/model.v1_2", nil),
              ("org/name:model-Q4_K_M.gguf", "org/name", "model-Q4_K_M.gguf"),
              ("org/name:Q4_K_M/model-00001-of-00002.gguf", "org/name", "Q4_K_M/model-00001-of-00002.gguf"),
          ] as [(String, String, String?)])
    func parses(_ spec: String, _ repo: String, _ tag: String?) throws {
        let reference = try HubModelReference(parsing: spec)
        #expect(reference.repo == repo)
        #expect(reference.tag == tag)
        #expect(reference.revision == "main")
    }

    @Test("hostile or malformed spellings are refused with invalidReference",
          arguments: ["", " ", "name", "a/b/c", "../x", "org/..", "./x", "org/na me", "org /name", "org/name:", "/org/name",
                      "org/name/", "org//name", "-org/name", "org/name-", ".org/name", "org/name.", "or--g/name", "org/na..me",
                      "org/name:../../etc/passwd", "org/name:/abs.gguf", "org/name:a//b.gguf", "org/näme", "org/name\n",
                      "org/" + String(repeating: "a", count: 97), "org/name:dir\\x.gguf"])
    func refuses(_ spec: String) {
        #expect {
            try HubModelReference(parsing: spec)
        } throws: { error in
            (error as? HubError)?.code == .invalidReference
        }
    }

    @Test("96 characters per part is the limit")
    func partLength() throws {
        let name = String(repeating: "a", count: 96)
        #expect(try HubModelReference(parsing: "org/" + name).repo == "org/" + name)
    }

    @Test("revisions: default main, branches with slashes and commits; hostile ones refused")
    func revisions() throws {
        #expect(try HubModelReference(parsing: "org/name", revision: nil).revision == "main")
        #expect(try HubModelReference(parsing: "org/name", revision: "").revision == "main")
        #expect(try HubModelReference(parsing: "org/name", revision: "refs/pr/1").revision == "refs/pr/1")
        let commit = String(repeating: "ab", count: 20)
        #expect(try HubModelReference(parsing: "org/name", revision: commit).revision == commit)
        #expect(HubModelReference.isCommitHash(commit))
        #expect(!HubModelReference.isCommitHash("main"))
        #expect(!HubModelReference.isCommitHash(String(repeating: "AB", count: 20)))
        for bad in ["../main", "a b", "main/", "/main", "a/../b", "x\u{0}y", "a\\b"] {
            #expect(throws: HubError.self) { try HubModelReference(parsing: "org/name", revision: bad) }
        }
    }
}
