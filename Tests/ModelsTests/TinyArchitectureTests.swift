import Foundation
import ModelFormats
import Models
import Testing
import TestSupport

/// Each supported architecture on a tiny random-weight model against llama.cpp's logits
/// (Fixtures/tiny-architectures.json, written by scripts/gen-arch-fixtures.py with llama-cpp-python).
@Suite("Architectures against llama.cpp on tiny models")
struct TinyArchitectureTests {
    struct Fixture: Decodable {
        struct Tensor: Decodable { let name: String; let dims: [Int]; let seed: UInt64; let scale: Double; let norm: Bool }
        struct Architecture: Decodable {
            let name: String
            let metadata: [[MetadataItem]]
            let tensors: [Tensor]
            let logits: [[Float]]
        }
        enum MetadataItem: Decodable {
            case string(String), number(Double)
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let s = try? c.decode(String.self) { self = .string(s) } else { self = .number(try c.decode(Double.self)) }
            }
        }
        let llama_cpp_python: String
        let tokens: [Int32]
        let architectures: [Architecture]
    }

    static let fixture = load("tiny-architectures.json", or: Fixture(llama_cpp_python: "missing", tokens: [], architectures: []))

    /// A fixture from Fixtures/; a missing or broken one gives `empty`, which the tests report as failures.
    static func load<T: Decodable>(_ name: String, or empty: T) -> T {
        let url = TestPaths.fixture("\(name)")
        return (try? JSONDecoder().decode(T.self, from: Data(contentsOf: url))) ?? empty
    }

    /// The generator's [key, kind, value] metadata items, set on `writer` (except `dropped` keys).
    static func setMetadata(_ items: [[Fixture.MetadataItem]], on writer: inout GGUFWriter, dropping dropped: Set<String> = []) {
        for item in items {
            guard item.count == 3, case .string(let key) = item[0], case .string(let kind) = item[1] else { continue }
            if dropped.contains(key) { continue }
            switch (kind, item[2]) {
            case ("string", .string(let s)): writer.set(key, .string(s))
            case ("uint32", .number(let d)): writer.set(key, .uint32(UInt32(d)))
            case ("float32", .number(let d)): writer.set(key, .float32(Float(d)))
            default: Issue.record("unexpected metadata \(key) of kind \(kind)")
            }
        }
    }

    /// The generator scripts/gen-arch-fixtures.py uses (a 64-bit LCG), reproduced exactly.
    static func weights(seed: UInt64, count: Int, scale: Double, norm: Bool) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let v = Float((Double(state >> 11) / 9007199254740992.0 * 2.0 - 1.0) * scale)
            return norm ? v + 1 : v
        }
    }

    static func build(_ arch: Fixture.Architecture, dropping dropped: Set<String> = []) throws -> GGUFFile {
        var writer = GGUFWriter()
        setMetadata(arch.metadata, on: &writer, dropping: dropped)
        for t in arch.tensors {
            let values = weights(seed: t.seed, count: t.dims.reduce(1, *), scale: t.scale, norm: t.norm)
            try writer.addTensor(name: t.name, type: .f32, dimensions: t.dims, data: values.withUnsafeBytes { Array($0) })
        }
        return try GGUFFile(bytes: writer.serialize())
    }

    @Test("the fixture holds every supported architecture")
    func coverage() {
        #expect(Set(Self.fixture.architectures.map(\.name)) == Set(ModelRegistry.supportedArchitectures))
    }

    /// Largest |Verity − llama.cpp| over all positions, and the largest reference logit.
    static func difference(_ arch: Fixture.Architecture, file: GGUFFile) throws -> (Float, Float) {
        let model = try ModelRegistry.load(file)
        let tokens = fixture.tokens
        let ctx = try model.makeContext(capacity: tokens.count, threads: 2)
        let logits = Array(try model.forward(tokens, context: ctx, logits: .all))
        var worst: Float = 0, scale: Float = 1
        for (t, row) in arch.logits.enumerated() {
            for (i, ref) in row.enumerated() {
                worst = max(worst, abs(logits[t * model.vocabularySize + i] - ref))
                scale = max(scale, abs(ref))
            }
        }
        return (worst, scale)
    }

    @Test("the comparison is sensitive: Gemma 3 without its sliding window no longer matches")
    func slidingWindowMatters() throws {
        let arch = try #require(Self.fixture.architectures.first { $0.name == "gemma3" })
        let (worst, scale) = try Self.difference(arch, file: try Self.build(arch, dropping: ["gemma3.attention.sliding_window"]))
        #expect(worst > 2e-3 * scale)
    }

    @Test("logits match llama.cpp within 2e-3 of the logit scale", arguments: ["llama", "qwen2", "qwen3", "phi3", "gemma3"])
    func matchesLlamaCpp(name: String) throws {
        let arch = try #require(Self.fixture.architectures.first { $0.name == name }, "no fixture for \(name)")
        let file = try Self.build(arch)
        #expect(try ModelRegistry.load(file).architecture == name)
        let (worst, scale) = try Self.difference(arch, file: file)
        print("\(name): max |Verity - llama.cpp| = \(worst) (largest logit \(scale)); llama-cpp-python \(Self.fixture.llama_cpp_python)")
        #expect(worst <= 2e-3 * scale)
    }
}
