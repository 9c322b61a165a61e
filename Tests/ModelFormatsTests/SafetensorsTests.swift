import Foundation
import Testing
@testable import ModelFormats

/// The safetensors reader trusts nothing in the file, and the assembled GGUF (a checkpoint's
/// tensors left in their files) reads the same bytes as the sources.
@Suite struct SafetensorsTests {
    /// A safetensors image: the header JSON (written as given) and the data section.
    static func image(header: String, data: [UInt8]) -> [UInt8] {
        let h = Array(header.utf8)
        var out: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(h.count) >> (8 * UInt64($0))) }
        return out + h + data
    }

    static func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = tempPath(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func floats(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    }

    @Test func readsTensorsAndMetadata() throws {
        let header = #"{"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#
        let path = try Self.write(Self.image(header: header, data: Self.floats([1, 2, 3, 4]) + [0x80, 0x3F, 0x00, 0x40]), "ok.safetensors")
        defer { unlink(path) }
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == ["format": "pt"])
        let a = try #require(file.tensors["a"])
        #expect(a.dtype == .f32 && a.shape == [2, 2] && a.elementCount == 4)
        let bytes = file.data(a)
        #expect(bytes.loadUnaligned(fromByteOffset: 12, as: Float.self) == 4)
        let b = try #require(file.tensors["b"])
        #expect(b.dtype.ggmlType == .bf16)
        #expect(HFCheckpoint.Builder.floats(file.data(b), dtype: .bf16, count: 2) == [1, 2])
    }

    @Test(arguments: [
        ("huge header length", [UInt8](repeating: 0xFF, count: 8) + [UInt8](repeating: 0x20, count: 8), GGUFError.Code.truncated),
        ("too short", [UInt8](repeating: 0, count: 5), GGUFError.Code.truncated),
        ("not JSON", image(header: "{nope", data: []), GGUFError.Code.invalidString),
        ("unknown dtype", image(header: #"{"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), GGUFError.Code.unknownTensorType),
        ("size mismatch", image(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), GGUFError.Code.invalidTensor),
        ("past the end", image(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0]), GGUFError.Code.truncated),
        ("negative offsets", image(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0]), GGUFError.Code.invalidTensor),
        ("overlap", image(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                          data: [UInt8](repeating: 0, count: 12)), GGUFError.Code.invalidTensor),
        ("shape overflow", image(header: #"{"a":{"dtype":"F32","shape":[9223372036854775807,4],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), GGUFError.Code.overflow),
        ("missing fields", image(header: #"{"a":{"dtype":"F32"}}"#, data: []), GGUFError.Code.invalidTensor),
    ] as [(String, [UInt8], GGUFError.Code)])
    func rejectsMalformedFiles(_ name: String, _ bytes: [UInt8], _ code: GGUFError.Code) throws {
        let path = try Self.write(bytes, "bad-\(name.replacingOccurrences(of: " ", with: "-")).safetensors")
        defer { unlink(path) }
        do {
            _ = try SafetensorsFile(path: path)
            Issue.record("\(name): accepted")
        } catch {
            #expect(error.code == code, "\(name): \(error.message)")
            #expect(error.message.contains(path))
        }
    }

    @Test func assembledFileReadsEachTensorFromItsOwner() throws {
        let first = MappedFile(copying: Self.floats([1, 2, 3, 4, 5, 6]))
        let second = MappedFile(allocating: 8) { $0.copyBytes(from: Self.floats([7, 8])) }
        let file = try GGUFFile(metadata: [("general.architecture", .string("llama")), ("x.n", .uint32(3))],
                                tensors: [("w", [2, 2], .f32, first, 8), ("v", [2], .f32, second, 0)])
        #expect(try file.string("general.architecture") == "llama")
        let w = try #require(file.tensor(named: "w"))
        let data = file.tensorData(w)
        #expect(data.count == 16 && data.loadUnaligned(fromByteOffset: 0, as: Float.self) == 3)
        #expect(file.tensorData(named: "v")?.loadUnaligned(fromByteOffset: 4, as: Float.self) == 8)
        #expect(file.tensorLocation(w).offset == 8 && file.tensorLocation(w).owner === first)
    }

    @Test func assembledFileRejectsOutOfBoundsAndDuplicates() {
        let owner = MappedFile(copying: [UInt8](repeating: 0, count: 16))
        #expect(throws: GGUFError.self) { try GGUFFile(metadata: [], tensors: [("w", [4], .f32, owner, 4)]) }
        #expect(throws: GGUFError.self) { try GGUFFile(metadata: [], tensors: [("w", [2], .f32, owner, 0), ("w", [2], .f32, owner, 8)]) }
        #expect(throws: GGUFError.self) { try GGUFFile(metadata: [("k", .bool(true)), ("k", .bool(false))], tensors: []) }
    }
}
