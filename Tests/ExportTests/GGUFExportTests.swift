import Foundation
import Testing
@testable import Export
import Kernels
import ModelFormats

/// The GGUF writer's streaming path, gguf-split's shard grouping, llama.cpp's naming convention
/// and the conversion of tensors, on small in-memory models. (Tests/ServerIntegration/
/// test_15_export.py compares whole exports with llama.cpp's llama-quantize byte for byte.)
@Suite struct GGUFExportTests {
    static func floats(_ values: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * 4)
        out.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        }
        return out
    }

    static func temporaryPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("verity-export-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    @Test func streamWritesWhatSerializeWrites() throws {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.set("general.name", .string("tiny"))
        writer.set("llama.block_count", .uint32(1))
        let a = Self.floats((0..<96).map { Float($0) * 0.25 - 3 })
        let b = Self.floats([1, 2, 3])
        try writer.addTensor(name: "a", type: .f32, dimensions: [32, 3], data: a)
        try writer.addTensor(name: "b", type: .f32, dimensions: [3], data: b)
        let expected = try writer.serialize()

        var header = GGUFWriter()
        for key in writer.metadataKeys { header.set(key, try #require(GGUFFile(bytes: expected).metadata[key])) }
        let path = Self.temporaryPath("stream.gguf")
        var seen: [UInt8] = []
        let stream = try GGUFWriter.Stream(writer: header, tensors: [("a", [32, 3], .f32), ("b", [3], .f32)], path: path) { seen.append(contentsOf: $0) }
        try a.withUnsafeBytes { try stream.append($0) }
        #expect(throws: GGUFError.self) { try stream.finish() } // one tensor still missing
        try b.withUnsafeBytes { try stream.append($0) }
        #expect(throws: GGUFError.self) { try b.withUnsafeBytes { try stream.append($0) } } // nothing left to write
        try stream.finish()
        let written = try #require(FileManager.default.contents(atPath: path))
        #expect([UInt8](written) == expected)
        #expect(seen == expected)
    }

    @Test func streamRefusesAWrongSizeAndAbandonRemovesTheFile() throws {
        let path = Self.temporaryPath("bad.gguf")
        let stream = try GGUFWriter.Stream(writer: GGUFWriter(), tensors: [("a", [4], .f32)], path: path)
        #expect(throws: GGUFError.self) { try Self.floats([1, 2, 3]).withUnsafeBytes { try stream.append($0) } }
        stream.abandon()
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func shardsStartBeforeATensorThatWouldOverflow() {
        #expect(GGUFExport.shards([10, 10, 10], maxBytes: nil) == [0..<3])
        #expect(GGUFExport.shards([10, 10, 10], maxBytes: 20) == [0..<2, 2..<3])
        #expect(GGUFExport.shards([10, 10, 10], maxBytes: 25) == [0..<2, 2..<3])
        // A tensor larger than the limit gets a shard of its own.
        #expect(GGUFExport.shards([5, 50, 5], maxBytes: 20) == [0..<1, 1..<2, 2..<3])
        #expect(GGUFExport.shards([50], maxBytes: 20) == [0..<1])
        #expect(GGUFExport.shardPaths("/x/m.gguf", count: 3) == ["/x/m-00001-of-00003.gguf", "/x/m-00002-of-00003.gguf", "/x/m-00003-of-00003.gguf"])
        #expect(GGUFExport.shardPaths("/x/m.gguf", count: 1) == ["/x/m.gguf"])
    }

    /// gguf-py's `model_weight_count_rounded_notation(n, min_digits=2)`, values printed by it.
    @Test(arguments: [
        (134_515_008, "135M"), (268_098_176, "268M"), (999, "1.0K"), (1500, "1.5K"), (7_241_732_096, "7.2B"),
        (1_100_048_384, "1.1B"), (70_553_706_496, "71B"), (1_000_000, "1000K"), (2_500_000_000_000, "2.5T"), (500, "0.50K"),
        (9_999_999, "10M"),
    ])
    func sizeLabels(_ count: Int, _ label: String) {
        #expect(ExportNaming.sizeLabel(parameters: count) == label)
    }

    static func model(_ metadata: [(String, GGUFValue)], rows: Int = 2, columns: Int = 32) throws -> GGUFFile {
        let values = (0..<(rows * columns)).map { Float(($0 * 37) % 101) / 17 - 2.5 }
        let owner = MappedFile(allocating: values.count * 4) { out in values.withUnsafeBytes { out.copyMemory(from: $0) } }
        return try GGUFFile(metadata: metadata, tensors: [("blk.0.ffn_up.weight", [columns, rows], .f32, owner, 0)])
    }

    @Test func namingConvention() throws {
        let named = try Self.model([("general.architecture", .string("llama")), ("general.basename", .string("SmolLM2")),
                                    ("general.name", .string("ignored")), ("general.size_label", .string("135M")),
                                    ("general.finetune", .string("Instruct")), ("general.version", .string("v1 2"))])
        #expect(ExportNaming.stem(named, encoding: "q4_k_m") == "SmolLM2-135M-Instruct-v1-2-Q4_K_M")
        #expect(ExportNaming.stem(named, encoding: nil, kind: "LoRA") == "SmolLM2-135M-Instruct-v1-2-LoRA")
        let bare = try Self.model([("general.architecture", .string("llama")), ("general.name", .string("org/my model"))])
        #expect(ExportNaming.stem(bare, encoding: "F16") == "org-my-model-0.06K-F16")
        let nameless = try Self.model([("general.architecture", .string("llama"))])
        #expect(ExportNaming.stem(nameless, encoding: "BF16") == "ggml-model-0.06K-BF16")
    }

    @Test func convertQuantizesAsKernelsDo() throws {
        let model = try Self.model([("general.architecture", .string("llama"))], rows: 3, columns: 64)
        let info = model.tensors[0]
        var bytes: [UInt8] = []
        try GGUFExport.convert(model, info, to: .q8_0, pool: ThreadPool(threads: 2)) { bytes = Array($0) }
        var expected = [UInt8](repeating: 0, count: try Kernels.quantizedByteCount(.q8_0, rows: 3, columns: 64))
        let data = model.tensorData(info)
        try expected.withUnsafeMutableBytes { out in
            try Kernels.quantize(.q8_0, rows: 3, columns: 64, from: data.baseAddress!.assumingMemoryBound(to: Float.self), into: out.baseAddress!)
        }
        #expect(bytes == expected)
        // The same type is a copy of the source bytes.
        var copied: [UInt8] = []
        try GGUFExport.convert(model, info, to: .f32, pool: ThreadPool(threads: 1)) { copied = Array($0) }
        #expect(copied == Array(data))
    }
}
