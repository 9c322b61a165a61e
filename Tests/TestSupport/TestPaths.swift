import Foundation

/// Where the test models and reference data live: what `scripts/fetch-models` provisions into
/// `$VERITY_CACHE_DIR` (default `~/.cache/verity`), and the fixtures committed next to each
/// test target.
public enum TestPaths {
    /// `$VERITY_CACHE_DIR`, else `~/.cache/verity`.
    public static var cacheDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["VERITY_CACHE_DIR"], !dir.isEmpty { return dir }
        return NSHomeDirectory() + "/.cache/verity"
    }

    /// The provisioned models.
    public static var modelsDirectory: String { cacheDirectory + "/models" }
    /// llama.cpp's tokenizer test vocabularies (`ggml-vocab-*.gguf` with `.inp` / `.out`).
    public static var vocabDirectory: String { cacheDirectory + "/vocab" }

    /// SmolLM2-135M-Instruct, Q4_1: the default model (llama architecture, BPE vocabulary).
    public static var smolLM2: String { modelsDirectory + "/SmolLM2-135M-Instruct.Q4_1.gguf" }
    /// Gemma 3 270M, Q4_K_M (gemma3 architecture, SentencePiece vocabulary).
    public static var gemma3: String { modelsDirectory + "/gemma-3-270m-Q4_K_M.gguf" }

    public static var hasSmolLM2: Bool { FileManager.default.fileExists(atPath: smolLM2) }
    public static var hasGemma3: Bool { FileManager.default.fileExists(atPath: gemma3) }

    /// A file in the `Fixtures` folder next to the calling test file.
    public static func fixture(_ name: String, file: StaticString = #filePath) -> URL {
        URL(fileURLWithPath: "\(file)").deletingLastPathComponent().appendingPathComponent("Fixtures/" + name)
    }

    /// A fresh, empty directory under the system's temporary directory; the caller removes it.
    public static func temporaryDirectory(_ prefix: String = "verity-test") -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
