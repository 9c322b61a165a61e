import Foundation
import Testing
import TestSupport

/// Runs the built `verity` binary as a user would.
enum CLI {
    static var binary: URL {
        // The test executable sits next to the products in .build/<triple>/<configuration>/.
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = me.deletingLastPathComponent()
        while dir.path != "/" {
            let url = dir.appendingPathComponent("verity")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
            dir = dir.deletingLastPathComponent()
        }
        return me.deletingLastPathComponent().appendingPathComponent("verity")
    }

    static var smolLM2: String { TestPaths.smolLM2 }
    static var hasModel: Bool { TestPaths.hasSmolLM2 }

    struct Output { let status: Int32; let stdout: String; let stderr: String }

    static func run(_ arguments: [String], input: String? = nil) throws -> Output {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe(), inp = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input == nil ? FileHandle.nullDevice : inp
        try process.run()
        if let input {
            inp.fileHandleForWriting.write(Data(input.utf8))
            try inp.fileHandleForWriting.close()
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }
}

@Suite("verity command line")
struct CLITests {
    @Test("a missing model file is one line on stderr and a non-zero status")
    func missingModel() throws {
        let r = try CLI.run(["run", "--model", "/no/such/model.gguf", "--prompt", "hi"])
        #expect(r.status != 0)
        #expect(r.stdout.isEmpty)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(r.stderr.contains("/no/such/model.gguf"))
    }

    @Test("a file that is not GGUF is a clear error")
    func notGGUF() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-model-\(UUID()).gguf").path
        try Data("hello".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try CLI.run(["run", "--model", path, "--prompt", "hi"])
        #expect(r.status != 0)
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(r.stderr.contains("not a valid GGUF"))
    }

    @Test("run --json prints one object with token ids, text, finish reason and timings",
          .enabled(if: CLI.hasModel, "run scripts/fetch-models first"))
    func runJSON() throws {
        let r = try CLI.run(["run", "--model", CLI.smolLM2, "--prompt", "What is 2+2?", "--temperature", "0",
                             "--max-tokens", "8", "--json", "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let completion = try #require(object["completion_tokens"] as? [Int])
        #expect((object["prompt_tokens"] as? [Int])?.isEmpty == false)
        #expect(completion.count <= 8 && !completion.isEmpty)
        #expect(["stop", "length"].contains(object["finish_reason"] as? String))
        #expect(object["text"] is String)
        #expect((object["timings"] as? [String: Any])?["generation_tokens_per_second"] != nil)
    }

    /// Token ids the engine sampled at the start of this work (commit 4e15876, `verity run --raw
    /// --prompt "Once upon a time" --max-tokens 24 --json` with these flags): a seed must keep
    /// giving the same answer across versions, so that a recorded answer can be replayed.
    static let seeded: [(flags: [String], tokens: [Int])] = [
        (["--temperature", "1", "--top-k", "0", "--top-p", "1", "--min-p", "0", "--seed", "7"],
         [28, 253, 34686, 4877, 46193, 3692, 81, 24252, 288, 260, 1597, 10164, 297, 388, 264, 302, 6522, 28, 284, 260, 984, 3514, 32905, 30]),
        (["--temperature", "0.7", "--top-k", "200", "--top-p", "0.9", "--min-p", "0.1", "--seed", "5", "--repeat-penalty", "1.1"],
         [28, 339, 804, 288, 746, 418, 253, 1603, 29, 10291, 3904, 4782, 335, 4510, 1439, 3359, 30, 378, 701, 665, 592, 14103, 563, 2412]),
    ]

    @Test("a seed reproduces the tokens an earlier version sampled", .enabled(if: CLI.hasModel, "run scripts/fetch-models first"),
          arguments: seeded.indices)
    func seededAcrossVersions(_ index: Int) throws {
        let (flags, tokens) = Self.seeded[index]
        let r = try CLI.run(["run", "--model", CLI.smolLM2, "--raw", "--prompt", "Once upon a time", "--max-tokens", "24", "--json",
                             "--threads", "2"] + flags)
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["completion_tokens"] as? [Int] == tokens)
    }

    @Test("run streams only the completion to stdout; diagnostics go to stderr",
          .enabled(if: CLI.hasModel, "run scripts/fetch-models first"))
    func runStreams() throws {
        let r = try CLI.run(["run", "--model", CLI.smolLM2, "--raw", "--prompt", "The capital of France is",
                             "--temperature", "0", "--max-tokens", "6", "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Paris"))
        #expect(!r.stdout.contains("t/s"))
        #expect(r.stderr.contains("t/s"))
    }

    @Test("a prompt longer than the context is refused",
          .enabled(if: CLI.hasModel, "run scripts/fetch-models first"))
    func promptTooLong() throws {
        let prompt = String(repeating: "word ", count: 300)
        let r = try CLI.run(["run", "--model", CLI.smolLM2, "--raw", "--prompt", prompt, "--ctx", "64"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("context"))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test("chat keeps the conversation across turns and leaves on /quit",
          .enabled(if: CLI.hasModel, "run scripts/fetch-models first"))
    func chatTurns() throws {
        let r = try CLI.run(["chat", "--model", CLI.smolLM2, "--temperature", "0", "--max-tokens", "24", "--threads", "2"],
                            input: "My name is Alice.\nWhat is my name?\n/quit\n")
        #expect(r.status == 0, "\(r.stderr)")
        let replies = r.stdout.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(replies.count >= 2)
        // The second answer saw the first turn: it differs from the same question asked fresh.
        let fresh = try CLI.run(["run", "--model", CLI.smolLM2, "--prompt", "What is my name?", "--temperature", "0",
                                 "--max-tokens", "24", "--threads", "2"])
        #expect(fresh.status == 0)
        #expect(!replies.isEmpty && !r.stdout.hasSuffix(fresh.stdout))
    }
}
