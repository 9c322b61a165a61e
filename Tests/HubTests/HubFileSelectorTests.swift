import Foundation
import Testing
@testable import Hub

@Suite("Picking a repo's files by quant tag, as llama-server's -hf does")
struct HubFileSelectorTests {
    let quants = ["README.md", "model-Q2_K.gguf", "model-Q4_0.gguf", "model-Q4_K_M.gguf", "model-Q4_K_S.gguf", "model-Q8_0.gguf",
                  "mmproj-model-f16.gguf", "model.IQ4_XS.gguf"]

    func plan(_ files: [String], _ tag: String?) throws -> HubFileSelector.Plan {
        try HubFileSelector.plan(files: files, tag: tag, repo: "o/n")
    }

    @Test("a tag picks the file that contains it, case-insensitively",
          arguments: [("Q4_K_M", "model-Q4_K_M.gguf"), ("q8_0", "model-Q8_0.gguf"), ("iq4_xs", "model.IQ4_XS.gguf"),
                      ("Q4_K", "model-Q4_K_M.gguf"), ("Q4_0", "model-Q4_0.gguf"), ("model-Q2_K.gguf", "model-Q2_K.gguf")])
    func byTag(_ tag: String, _ file: String) throws {
        #expect(try plan(quants, tag) == .gguf([file]))
    }

    @Test("a tag bounded by separators beats one inside a longer quant name")
    func bounded() throws {
        #expect(try plan(["m-Q4_K_M_L.gguf", "m-Q4_K_M.gguf"], "Q4_K_M") == .gguf(["m-Q4_K_M.gguf"]))
        #expect(try plan(["m.q4_k_m.gguf"], "Q4_K_M") == .gguf(["m.q4_k_m.gguf"]))
    }

    @Test("no tag: Q4_K_M, else a Q4 file, else the first GGUF; mmproj never")
    func defaults() throws {
        #expect(try plan(quants, nil) == .gguf(["model-Q4_K_M.gguf"]))
        #expect(try plan(["b-Q8_0.gguf", "a-Q4_0.gguf"], nil) == .gguf(["a-Q4_0.gguf"]))
        #expect(try plan(["mmproj-Q8_0.gguf", "z-F16.gguf", "b-Q8_0.gguf"], nil) == .gguf(["b-Q8_0.gguf"]))
    }

    @Test("mmproj files are not models even when the tag matches them")
    func mmproj() {
        #expect(throws: HubError.self) { try plan(["mmproj-Q4_K_M.gguf", "x-Q8_0.gguf"], "Q4_K_M") }
    }

    @Test("a tag that matches nothing lists the GGUF files there are")
    func noMatch() {
        do {
            _ = try plan(quants, "Q5_K_M")
            Issue.record("expected noMatchingFile")
        } catch let error as HubError {
            #expect(error.code == .noMatchingFile)
            #expect(error.message.contains("Q5_K_M"))
            #expect(error.message.contains("model-Q4_K_M.gguf") && error.message.contains("model-Q8_0.gguf"))
            #expect(!error.message.contains("mmproj"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("a split model brings every shard in order, from any shard or the tag; a missing shard is an error")
    func shards() throws {
        let files = ["m-Q8_0.gguf", "Q4_K_M/m-Q4_K_M-00003-of-00003.gguf", "Q4_K_M/m-Q4_K_M-00001-of-00003.gguf",
                     "Q4_K_M/m-Q4_K_M-00002-of-00003.gguf"]
        let all = ["Q4_K_M/m-Q4_K_M-00001-of-00003.gguf", "Q4_K_M/m-Q4_K_M-00002-of-00003.gguf", "Q4_K_M/m-Q4_K_M-00003-of-00003.gguf"]
        #expect(try plan(files, "Q4_K_M") == .gguf(all))
        #expect(try plan(files, nil) == .gguf(all))
        #expect(try plan(files, "Q4_K_M/m-Q4_K_M-00002-of-00003.gguf") == .gguf(all))
        #expect(try plan(files, "q8_0") == .gguf(["m-Q8_0.gguf"]))
        #expect(throws: HubError.self) { try plan(Array(files.dropLast()), "Q4_K_M") }
        #expect(HubFileSelector.SplitName("x-00001-of-00003.gguf")?.count == 3)
        #expect(HubFileSelector.SplitName("x-1-of-3.gguf") == nil)
        #expect(HubFileSelector.SplitName("x-00004-of-00003.gguf") == nil)
    }

    @Test("a file tag must exist")
    func fileTag() {
        #expect(throws: HubError.self) { try plan(quants, "other.gguf") }
    }

    @Test("safetensors: config, the companions present, and the weights; the index's shards from weight_map")
    func safetensors() throws {
        let files = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors", "README.md",
                     "pytorch_model.bin", "chat_template.jinja"]
        #expect(try plan(files, nil) == .safetensors(files: ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                                               "chat_template.jinja", "model.safetensors"], index: nil))
        let sharded = ["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        #expect(try plan(sharded, nil) == .safetensors(files: ["config.json", "model.safetensors.index.json"], index: "model.safetensors.index.json"))
        let index = #"{"metadata": {"total_size": 1}, "weight_map": {"a": "model-00002-of-00002.safetensors", "b": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}}"#
        #expect(try HubFileSelector.shards(fromIndex: Data(index.utf8), repo: "o/n") == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        for hostile in [#"{"weight_map": {"a": "../../x"}}"#, #"{"weight_map": {"a": "/etc/passwd"}}"#, #"{"weight_map": {}}"#, "[]", "{"] {
            #expect(throws: HubError.self) { try HubFileSelector.shards(fromIndex: Data(hostile.utf8), repo: "o/n") }
        }
    }

    @Test("neither GGUF nor safetensors, or no config.json: noMatchingFile listing the files")
    func nothing() {
        for files in [["README.md", "pytorch_model.bin", "config.json"], ["model.safetensors"], []] {
            #expect {
                try plan(files, nil)
            } throws: { error in
                guard let error = error as? HubError else { return false }
                return error.code == .noMatchingFile && files.allSatisfy { error.message.contains($0) }
            }
        }
        #expect(throws: HubError.self) { try plan(["config.json", "model.safetensors"], "Q4_K_M") }
    }
}
