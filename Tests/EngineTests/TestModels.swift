import Foundation

/// Locations of the models and reference data that scripts/fetch-models provisions.
enum TestModels {
    static var cache: String {
        if let dir = ProcessInfo.processInfo.environment["VERITY_CACHE_DIR"], !dir.isEmpty { return dir }
        return NSHomeDirectory() + "/.cache/verity"
    }

    static var smolLM2: String { cache + "/models/SmolLM2-135M-Instruct.Q4_1.gguf" }
    static var hasSmolLM2: Bool { FileManager.default.fileExists(atPath: smolLM2) }

    static func fixture(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/" + name)
    }
}
