import Engine
import Foundation
import ModelFormats
import Testing

@Suite("Loading errors are one clear line")
struct LoadingErrorTests {
    func temporaryFile(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("verity-test-\(UUID().uuidString).gguf").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("a missing file")
    func missing() {
        #expect { try LoadedModel(path: "/nonexistent/model.gguf") } throws: {
            ($0 as? EngineError)?.code == .fileNotFound && "\($0)".contains("/nonexistent/model.gguf")
        }
    }

    @Test("a file that is not GGUF")
    func notGGUF() throws {
        let path = try temporaryFile(Array("this is not a model".utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try LoadedModel(path: path) } throws: {
            ($0 as? EngineError)?.code == .invalidModelFile && !"\($0)".contains("\n")
        }
    }

    @Test("an unsupported architecture is named")
    func unsupportedArchitecture() throws {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("rwkv7"))
        let path = try temporaryFile(try writer.serialize())
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try LoadedModel(path: path) } throws: {
            ($0 as? EngineError)?.code == .unsupportedModel && "\($0)".contains("rwkv7") && "\($0)".contains("llama")
        }
    }
}
