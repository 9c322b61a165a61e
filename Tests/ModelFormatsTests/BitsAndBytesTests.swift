import Foundation
import Testing
@testable import ModelFormats

/// bitsandbytes 4-bit dequantization on hand-computed cases: the code tables, the nibble order,
/// the rounding to BF16/F16, double quantization's float32 arithmetic, blocks that end early, and
/// the errors a bad checkpoint gives. (Tests/ServerIntegration/test_14_bnb.py compares whole
/// checkpoints with bitsandbytes itself.)
@Suite struct BitsAndBytesTests {
    /// Dequantizes packed codes with the given per-block scales.
    static func dequantize(_ packed: [UInt8], scales: [Float], _ state: BitsAndBytes.QuantState) -> [UInt8] {
        var out = [UInt8](repeating: 0xEE, count: state.elementCount * state.dtype.byteSize)
        packed.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { BitsAndBytes.dequantize4Bit(src, scales: scales, state: state, into: $0) }
        }
        return out
    }

    static func floats(_ bytes: [UInt8]) -> [Float] {
        stride(from: 0, to: bytes.count, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }

    static func halves(_ bytes: [UInt8]) -> [UInt16] {
        stride(from: 0, to: bytes.count, by: 2).map { UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8 }
    }

    /// Codes 0…15 in order, two a byte, the first in the high nibble.
    static let allCodes: [UInt8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]

    @Test func nf4TableIsBitsandbytesTable() {
        let state = BitsAndBytes.QuantState(quantType: .nf4, blocksize: 64, dtype: .f32, shape: [2, 8])
        let values = Self.floats(Self.dequantize(Self.allCodes, scales: [1], state))
        // The float32 bit patterns of csrc/cpu_ops.cpp's nf4_lut.
        let bits: [UInt32] = [0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
                              0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a, 0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000]
        #expect(values.map(\.bitPattern) == bits)
    }

    @Test func fp4TableHasNegativeZeroOnlyWhereTheCKernelRuns() {
        // Scale 2 (a power of two) keeps every product exact.
        let even = BitsAndBytes.QuantState(quantType: .fp4, blocksize: 64, dtype: .f32, shape: [2, 8])
        let values = Self.floats(Self.dequantize(Self.allCodes, scales: [2], even))
        let bits: [UInt32] = [0x00000000, 0x3c2aaaab, 0x3faaaaab, 0x40000000, 0x3f2aaaab, 0x3f800000, 0x3eaaaaab, 0x3f000000,
                              0x80000000, 0xbc2aaaab, 0xbfaaaaab, 0xc0000000, 0xbf2aaaab, 0xbf800000, 0xbeaaaaab, 0xbf000000]
        #expect(values.map(\.bitPattern) == bits)
        // An odd last dimension goes through bitsandbytes' PyTorch fallback, whose code 8 is +0.
        let odd = BitsAndBytes.QuantState(quantType: .fp4, blocksize: 64, dtype: .f32, shape: [1, 3])
        #expect(Self.floats(Self.dequantize([0x88, 0x80], scales: [2], odd)).map(\.bitPattern) == [0, 0, 0])
        let evenZero = BitsAndBytes.QuantState(quantType: .fp4, blocksize: 64, dtype: .bf16, shape: [1, 2])
        #expect(Self.halves(Self.dequantize([0x88], scales: [2], evenZero)) == [0x8000, 0x8000])
    }

    @Test func bf16AndF16RoundToNearestEven() {
        // NF4 code 15 is 1.0, so each value is its block's scale: one scale a block of 32.
        let scales: [Float] = [1 + 0x1p-8, 1 + 3 * 0x1p-8, 1 + 0x1p-11, 1 + 3 * 0x1p-11, -(1 + 0x1p-8), 0x1p-20, 70000, 1.5 + 0x1p-9]
        let packed = [UInt8](repeating: 0xFF, count: 16 * scales.count)
        let bf16 = BitsAndBytes.QuantState(quantType: .nf4, blocksize: 32, dtype: .bf16, shape: [scales.count, 32])
        let b = Self.halves(Self.dequantize(packed, scales: scales, bf16))
        // Ties: 1 + 2⁻⁸ → 1.0 (even), 1 + 3·2⁻⁸ → 1 + 2⁻⁶; 1.5 + 2⁻⁹ → 1.5 (below the half).
        #expect(stride(from: 0, to: b.count, by: 32).map { b[$0] } == [0x3F80, 0x3F82, 0x3F80, 0x3F80, 0xBF80, 0x3580, 0x4789, 0x3FC0])
        let f16 = BitsAndBytes.QuantState(quantType: .nf4, blocksize: 32, dtype: .f16, shape: [scales.count, 32])
        let h = Self.halves(Self.dequantize(packed, scales: scales, f16))
        // Ties: 1 + 2⁻¹¹ → 1.0 (even), 1 + 3·2⁻¹¹ → 1 + 2⁻⁹; 2⁻²⁰ is subnormal (16 × 2⁻²⁴); 70000 overflows to +inf.
        // 1 + 2⁻⁸ and 1.5 + 2⁻⁹ are exact in F16.
        #expect(stride(from: 0, to: h.count, by: 32).map { h[$0] } == [0x3C04, 0x3C0C, 0x3C00, 0x3C02, 0xBC04, 0x0010, 0x7C00, 0x3E02])
        for k in 0..<scales.count {
            #expect(Set(b[(32 * k)..<(32 * k + 32)]).count == 1 && Set(h[(32 * k)..<(32 * k + 32)]).count == 1, "block \(k) is one value")
        }
    }

    @Test func blocksCoverTheFlatWeightAndTheLastMayBeShort() {
        // 3 × 23 = 69 values in blocks of 32: 32, 32 and 5; the blocks span rows; the last byte's
        // low nibble is padding. Codes: 15 (1.0) then 7 (0.0).
        let state = BitsAndBytes.QuantState(quantType: .nf4, blocksize: 32, dtype: .f32, shape: [3, 23])
        #expect(state.blockCount == 3 && state.packedBytes == 35)
        let packed = [UInt8](repeating: 0xF7, count: 35)
        let values = Self.floats(Self.dequantize(packed, scales: [2, 3, 5], state))
        #expect(values.count == 69)
        for i in 0..<69 {
            let scales: [Float] = [2, 3, 5]
            let expected: Float = i % 2 == 1 ? 0 : scales[i / 32]
            #expect(values[i] == expected, "value \(i)")
        }
    }

    @Test func doubleQuantizationRoundsTheProductThenTheSum() {
        // Scales: code[q] × nested_absmax[q-index / 2] + offset, each operation rounded to float32.
        var code = [Float](repeating: 0, count: 256)
        code[1] = 0.5
        code[2] = 0.25
        code[3] = 1 + 0x1p-23
        let q: [UInt8] = [1, 2, 1, 3, 3]
        let nestedAbsmax: [Float] = [2, 4, 1 + 0x1p-23]
        let state = BitsAndBytes.QuantState(quantType: .nf4, blocksize: 32, dtype: .f32, shape: [5, 32], nested: .init(blocksize: 2, offset: 0.125))
        let scales = q.withUnsafeBytes { BitsAndBytes.scales(state: state, absmax: $0, absmaxType: .u8, nestedAbsmax: nestedAbsmax, nestedCode: code) }
        // (1 + 2⁻²³) × 4 is exact; (1 + 2⁻²³)² = 1 + 2⁻²² + 2⁻⁴⁶ rounds to 1 + 2⁻²².
        #expect(scales == [1.125, 0.625, 2.125, 4.125 + 0x1p-21, 1.125 + 0x1p-22])
        let fused = BitsAndBytes.QuantState(quantType: .nf4, blocksize: 32, dtype: .f32, shape: [1, 32], nested: .init(blocksize: 2, offset: -(1 + 0x1p-22)))
        let zero = [UInt8(3)].withUnsafeBytes {
            BitsAndBytes.scales(state: fused, absmax: $0, absmaxType: .u8, nestedAbsmax: [1 + 0x1p-23], nestedCode: code)
        }
        #expect(zero == [0], "a fused multiply-add would give 2⁻⁴⁶")
        #expect(zero[0].sign == .plus)
        let values = Self.floats(Self.dequantize([UInt8](repeating: 0xFF, count: 80), scales: scales, state))
        #expect(values[0] == 1.125 && values[32] == 0.625 && values[159] == 1.125 + 0x1p-22)
    }

    @Test func quantStateJSON() throws {
        let json = #"{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [64, 128], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.13504791259765625}"#
        let state = try Array(json.utf8).withUnsafeBytes { try BitsAndBytes.QuantState(json: $0, name: "x") }
        #expect(state == BitsAndBytes.QuantState(quantType: .nf4, blocksize: 64, dtype: .bf16, shape: [64, 128],
                                                 nested: .init(blocksize: 256, offset: 0.13504791259765625)))
        #expect(state.blockCount == 128 && state.packedBytes == 4096)
        let plain = #"{"quant_type": "fp4", "blocksize": 64, "dtype": "float16", "shape": [3, 5]}"#
        let p = try Array(plain.utf8).withUnsafeBytes { try BitsAndBytes.QuantState(json: $0, name: "x") }
        #expect(p.nested == nil && p.dtype == .f16 && p.blockCount == 1 && p.packedBytes == 8)
    }

    @Test(arguments: [
        (#"{"quant_type": "int4", "blocksize": 64, "dtype": "float16", "shape": [2, 2]}"#, GGUFError.Code.unknownTensorType, "int4"),
        (#"{"quant_type": "nf4", "blocksize": 48, "dtype": "float16", "shape": [2, 2]}"#, .outOfRange, "blocksize 48"),
        (#"{"quant_type": "nf4", "blocksize": 64, "dtype": "int8", "shape": [2, 2]}"#, .unknownTensorType, "int8"),
        (#"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16"}"#, .invalidTensor, "shape"),
        (#"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [2, 0]}"#, .invalidTensor, "shape"),
        (#"{"quant_type": "nf4", "dtype": "float16", "shape": [2, 2]}"#, .missingKey, "blocksize"),
        (#"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [2, 2], "nested_blocksize": 256}"#, .missingKey, "nested_offset"),
        (#"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [2, 2], "nested_offset": 0.5, "nested_blocksize": 256, "nested_dtype": "float16"}"#, .unknownTensorType, "nested_dtype"),
        (#"[1, 2]"#, .invalidString, "JSON"),
    ] as [(String, GGUFError.Code, String)])
    func badQuantState(_ json: String, _ code: GGUFError.Code, _ mentions: String) {
        let error = expectCode(code) {
            _ = try Array(json.utf8).withUnsafeBytes { try BitsAndBytes.QuantState(json: $0, name: "w.quant_state") }
        }
        #expect(error?.message.contains(mentions) == true && error?.message.contains("w.quant_state") == true, "\(error?.message ?? "")")
    }

    @Test func configJSON() throws {
        let nf4: [String: Any] = ["quantization_config": ["quant_method": "bitsandbytes", "load_in_4bit": true, "bnb_4bit_quant_type": "nf4",
                                                          "bnb_4bit_use_double_quant": true, "llm_int8_skip_modules": ["lm_head", "model.layers.1.mlp"]]]
        #expect(try BitsAndBytes.config(nf4, file: "c") == .init(quantType: .nf4, doubleQuant: true, skipModules: ["lm_head", "model.layers.1.mlp"]))
        #expect(try BitsAndBytes.config([:], file: "c") == nil)
        let eight = expectCode(.unknownTensorType) {
            _ = try BitsAndBytes.config(["quantization_config": ["quant_method": "bitsandbytes", "load_in_8bit": true]], file: "c")
        }
        #expect(eight?.message.contains("8-bit") == true)
        let gptq = expectCode(.unknownTensorType) { _ = try BitsAndBytes.config(["quantization_config": ["quant_method": "gptq", "bits": 4]], file: "c") }
        #expect(gptq?.message.contains("gptq") == true)
        let type = expectCode(.unknownTensorType) {
            _ = try BitsAndBytes.config(["quantization_config": ["load_in_4bit": true, "bnb_4bit_quant_type": "int4"]], file: "c")
        }
        #expect(type?.message.contains("int4") == true)
    }

    // MARK: - Checkpoint folders

    /// A folder holding model.safetensors with these tensors (name → dtype, shape, bytes).
    static func folder(_ name: String, _ tensors: [(String, String, [Int], [UInt8])]) throws -> String {
        let dir = tempPath("bnb-\(name)")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var entries: [String] = [], data: [UInt8] = []
        for (n, dtype, shape, bytes) in tensors {
            entries.append(#""\#(n)":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":[\#(data.count),\#(data.count + bytes.count)]}"#)
            data += bytes
        }
        let image = SafetensorsTests.image(header: "{" + entries.joined(separator: ",") + "}", data: data)
        try Data(image).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        return dir
    }

    static let w = "model.layers.0.mlp.down_proj.weight"

    /// A [2, 40] NF4 weight with double quantization: 80 values, blocks of 32 (32, 32, 16).
    static func nestedWeight(state: String? = nil, packed: Int = 40, drop: String? = nil) -> [(String, String, [Int], [UInt8])] {
        var code = [Float](repeating: 0, count: 256)
        code[10] = 0.5
        code[20] = -0.25
        let json = state ?? #"{"quant_type": "nf4", "blocksize": 32, "dtype": "float32", "shape": [2, 40], "nested_blocksize": 2, "nested_dtype": "float32", "nested_offset": 1.0}"#
        let all: [(String, String, [Int], [UInt8])] = [
            (w, "U8", [packed, 1], [UInt8](repeating: 0xF7, count: packed)),  // 1.0 then 0.0
            (w + ".absmax", "U8", [3], [10, 20, 10]),
            (w + ".nested_absmax", "F32", [2], SafetensorsTests.floats([4, 8])),
            (w + ".nested_quant_map", "F32", [256], SafetensorsTests.floats(code)),
            (w + ".quant_map", "F32", [16], SafetensorsTests.floats(BitsAndBytes.nf4)),
            (w + ".quant_state.bitsandbytes__nf4", "U8", [json.utf8.count], Array(json.utf8)),
            ("model.norm.weight", "BF16", [2], [0x80, 0x3F, 0x00, 0x40]),
        ]
        return all.filter { $0.0 != drop }
    }

    @Test func readsAQuantizedWeightAndLeavesOthersAlone() throws {
        let dir = try Self.folder("ok", Self.nestedWeight())
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try BitsAndBytes.quantizedTensorNames(directory: dir) == [Self.w])
        let tensors = try BitsAndBytes.tensors([Self.w, "model.norm.weight"], directory: dir)
        #expect(tensors[0].dtype == .f32 && tensors[0].shape == [2, 40])
        // Scales: 0.5 × 4 + 1 = 3, −0.25 × 4 + 1 = 0, 0.5 × 8 + 1 = 5.
        let values = Self.floats(Array(tensors[0].data.buffer))
        let scales: [Float] = [3, 0, 5]
        let expected: [Float] = (0..<80).map { i in i % 2 == 1 ? 0 : scales[i / 32] }
        #expect(values == expected)
        #expect(tensors[1].dtype == .bf16 && Array(tensors[1].data.buffer) == [0x80, 0x3F, 0x00, 0x40])
        let set = try SafetensorsSet(directory: dir)
        let weights = try BitsAndBytes.Weights(set, directory: dir)
        #expect(weights.companions.isSuperset(of: [Self.w + ".absmax", Self.w + ".quant_map", Self.w + ".nested_absmax",
                                                   Self.w + ".nested_quant_map", Self.w + ".quant_state.bitsandbytes__nf4"]))
        #expect(!weights.companions.contains(Self.w) && !weights.companions.contains("model.norm.weight"))
    }

    /// A broken copy of `nestedWeight()`.
    static func broken(_ name: String) -> [(String, String, [Int], [UInt8])] {
        let shape = { (dims: String) in
            #"{"quant_type": "nf4", "blocksize": 32, "dtype": "float32", "shape": \#(dims), "nested_blocksize": 2, "nested_dtype": "float32", "nested_offset": 1.0}"#
        }
        switch name {
        case "no-absmax": return nestedWeight(drop: w + ".absmax")
        case "no-nested-map": return nestedWeight(drop: w + ".nested_quant_map")
        case "no-quant-map": return nestedWeight(drop: w + ".quant_map")
        case "no-weight": return nestedWeight(drop: w)
        case "no-quant-state": return nestedWeight(drop: w + ".quant_state.bitsandbytes__nf4")
        case "truncated-weight": return nestedWeight(packed: 39)
        case "shape-disagrees": return nestedWeight(state: shape("[2, 30]"))
        case "type-disagrees": return nestedWeight(state: shape("[2, 40]").replacingOccurrences(of: "nf4", with: "fp4"))
        case "not-nested": return nestedWeight(state: #"{"quant_type": "nf4", "blocksize": 32, "dtype": "float32", "shape": [2, 40]}"#)
        case "absmax-short": return nestedWeight().map { $0.0 == w + ".absmax" ? ($0.0, "U8", [2], [10, 20]) : $0 }
        case "unknown-type": return nestedWeight().map { $0.0.hasSuffix("nf4") ? (w + ".quant_state.bitsandbytes__int4", $0.1, $0.2, $0.3) : $0 }
        default: fatalError(name)
        }
    }

    @Test(arguments: [
        ("no-absmax", GGUFError.Code.missingKey, ".absmax"),
        ("no-nested-map", .missingKey, ".nested_quant_map"),
        ("no-quant-map", .missingKey, ".quant_map"),
        ("no-weight", .missingKey, "'\(w)'"),
        ("no-quant-state", .missingKey, "quant state"),
        ("truncated-weight", .truncated, "needs 40"),
        ("shape-disagrees", .invalidTensor, "[2, 30]"),
        ("type-disagrees", .invalidTensor, "fp4"),
        ("not-nested", .typeMismatch, ".absmax"),
        ("absmax-short", .truncated, ".absmax"),
        ("unknown-type", .unknownTensorType, "int4"),
    ] as [(String, GGUFError.Code, String)])
    func badCheckpoint(_ name: String, _ code: GGUFError.Code, _ mentions: String) throws {
        let dir = try Self.folder(name, Self.broken(name))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let error = expectCode(code) { _ = try BitsAndBytes.tensors([Self.w], directory: dir) }
        #expect(error?.message.contains(mentions) == true && error?.message.contains(dir) == true, "\(name): \(error?.message ?? "")")
    }
}
