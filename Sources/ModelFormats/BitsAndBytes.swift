import Foundation

// bitsandbytes 4-bit checkpoints (transformers' save_pretrained of a model loaded with
// BitsAndBytesConfig(load_in_4bit=True); Unsloth's `*-bnb-4bit` and `*-unsloth-bnb-4bit` repos)
// =============================================================================================
//
// config.json carries
//   "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": true,
//                           "bnb_4bit_quant_type": "nf4" | "fp4", "bnb_4bit_use_double_quant": bool,
//                           "bnb_4bit_compute_dtype": "bfloat16", "llm_int8_skip_modules": [...], …}
// Modules named in llm_int8_skip_modules (and lm_head) stay plain 16-bit tensors. Each quantized
// Linear `X.weight` of shape [rows, columns] becomes these tensors:
//
//   X.weight                 U8 [(n + 1) / 2, 1], n = rows × columns: the weight in row-major
//                            order, two 4-bit codes a byte, the first element in the HIGH nibble
//                            (any other dtype is the same bytes: bnb_4bit_quant_storage)
//   X.weight.absmax          F32 [blocks]: each block's scale, blocks = ⌈n / blocksize⌉ over
//                            the flat weight (a block may span rows); with double quantization
//                            U8 [blocks]: 8-bit codes of (scale − nested_offset)
//   X.weight.quant_map       F32 [16]: the 4-bit code book (not read: bitsandbytes' kernels use
//                            their built-in NF4 / FP4 tables, and so does this reader)
//   X.weight.nested_absmax   F32 [⌈blocks / nested_blocksize⌉]   (double quantization only)
//   X.weight.nested_quant_map F32 [256]: the 8-bit code book of the scales (double quantization)
//   X.weight.quant_state.bitsandbytes__nf4 (or __fp4)
//                            U8 [bytes]: UTF-8 JSON {"quant_type", "blocksize", "dtype", "shape",
//                            and with double quantization "nested_blocksize", "nested_dtype",
//                            "nested_offset"}; dtype names the unquantized weight's type
//                            ("bfloat16", "float16", "float32")
//
// Dequantization (bitsandbytes.functional.dequantize_4bit on the CPU, 0.50), in float32:
//   scale[b]  = nested ? nested_quant_map[absmax[b]] × nested_absmax[b / nested_blocksize] + offset
//                      : absmax[b]                 (a product rounded, then a sum rounded)
//   w[i]      = table[code i] × scale[i / blocksize]          (one rounded product)
// then rounded to dtype (bfloat16 and float16 to nearest, ties to even). Two kernels do this:
// the C kernel when the last dimension is even, whose FP4 table has −0 for code 8, and the
// PyTorch fallback for an odd last dimension, whose table has +0; the sign of that zero is the
// only difference, and this reader follows whichever kernel bitsandbytes would run. (On CPUs
// with AVX-512, bitsandbytes runs a third kernel for rows of a multiple of 16 that index the
// scales per row; it agrees with these except for FP4's −0 and weights whose rows are not a
// whole number of blocks.)

/// Reads and dequantizes bitsandbytes 4-bit weights exactly as bitsandbytes does on the CPU.
public enum BitsAndBytes {
    /// A 4-bit code book.
    public enum QuantType: String, Sendable, CaseIterable {
        case nf4, fp4
    }

    /// The companion tensors of a quantized `X.weight` are named `X.weight` + one of these.
    static let companionSuffixes = [".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map"]
    /// … and its quant state `X.weight` + this + the quant type.
    static let quantStateInfix = ".quant_state.bitsandbytes__"

    // MARK: - config.json

    /// What config.json's `quantization_config` says about a bitsandbytes checkpoint.
    struct Config: Equatable {
        var quantType: QuantType
        var doubleQuant: Bool
        /// Modules kept in 16 bits (Unsloth's dynamic 4-bit names some layers' modules here).
        var skipModules: [String]
    }

    /// The bitsandbytes settings of `config.json` (its root object), nil when the checkpoint is not
    /// quantized. Throws for 8-bit checkpoints and other quantization methods, which Verity does
    /// not load.
    static func config(_ root: [String: Any], file: String) throws(GGUFError) -> Config? {
        guard let value = root["quantization_config"], !(value is NSNull) else { return nil }
        guard let q = value as? [String: Any] else {
            throw GGUFError(.typeMismatch, "\(file): quantization_config is not an object")
        }
        func flag(_ key: String) -> Bool { (q[key] as? NSNumber)?.boolValue ?? false }
        let method = q["quant_method"] as? String ?? "bitsandbytes"
        guard method == "bitsandbytes" else {
            throw GGUFError(.unknownTensorType, "\(file): quantization_config.quant_method is '\(method)'; Verity loads bitsandbytes 4-bit (NF4/FP4) and F32/F16/BF16 checkpoints")
        }
        if flag("load_in_8bit") || flag("_load_in_8bit") {
            throw GGUFError(.unknownTensorType, "\(file): this is a bitsandbytes 8-bit (LLM.int8) checkpoint (load_in_8bit); Verity loads bitsandbytes 4-bit (NF4/FP4) checkpoints, not 8-bit ones: use the model's 16-bit or 4-bit release")
        }
        guard flag("load_in_4bit") || flag("_load_in_4bit") else {
            throw GGUFError(.missingKey, "\(file): quantization_config (bitsandbytes) sets neither load_in_4bit nor load_in_8bit")
        }
        let typeName = q["bnb_4bit_quant_type"] as? String ?? "fp4"
        guard let type = QuantType(rawValue: typeName) else {
            throw GGUFError(.unknownTensorType, "\(file): bnb_4bit_quant_type '\(typeName)' is not a bitsandbytes 4-bit type (nf4, fp4)")
        }
        let skip = q["llm_int8_skip_modules"] as? [String] ?? []
        return Config(quantType: type, doubleQuant: flag("bnb_4bit_use_double_quant"), skipModules: skip)
    }

    // MARK: - Quant state

    /// One weight's `quant_state.bitsandbytes__*` JSON: how to dequantize it.
    public struct QuantState: Sendable, Equatable {
        public var quantType: QuantType
        /// Elements per scale.
        public var blocksize: Int
        /// The unquantized weight's type, which dequantization produces: F32, F16 or BF16.
        public var dtype: SafetensorsFile.DType
        /// The unquantized weight's row-major shape.
        public var shape: [Int]
        /// Double quantization: the scales are themselves 8-bit codes.
        public var nested: Nested?

        public struct Nested: Sendable, Equatable {
            /// Scales per nested scale.
            public var blocksize: Int
            /// Added to every dequantized scale (float32, as `torch.tensor(float(...))` makes it).
            public var offset: Float
        }

        /// Elements of the unquantized weight.
        public var elementCount: Int { shape.reduce(1, *) }
        /// Scales (blocks) of the weight.
        public var blockCount: Int { (elementCount + blocksize - 1) / blocksize }
        /// Bytes of the packed weight.
        public var packedBytes: Int { (elementCount + 1) / 2 }

        public init(quantType: QuantType, blocksize: Int, dtype: SafetensorsFile.DType, shape: [Int], nested: Nested? = nil) {
            self.quantType = quantType
            self.blocksize = blocksize
            self.dtype = dtype
            self.shape = shape
            self.nested = nested
        }

        /// Parses the JSON bytes of tensor `name`; errors name it.
        public init(json: UnsafeRawBufferPointer, name: String) throws(GGUFError) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(json)), let dict = object as? [String: Any] else {
                throw GGUFError(.invalidString, "bitsandbytes quant state '\(name)' is not a JSON object")
            }
            func int(_ key: String) throws(GGUFError) -> Int {
                guard let n = dict[key] as? NSNumber, let v = Int(exactly: n.doubleValue) else {
                    throw GGUFError(.missingKey, "bitsandbytes quant state '\(name)' has no integer '\(key)'")
                }
                return v
            }
            let typeName = dict["quant_type"] as? String ?? ""
            guard let type = QuantType(rawValue: typeName) else {
                throw GGUFError(.unknownTensorType, "bitsandbytes quant state '\(name)': quant_type '\(typeName)' is not nf4 or fp4")
            }
            let blocksize = try int("blocksize")
            // dequantize_4bit's own check.
            guard [32, 64, 128, 256, 512, 1024, 2048, 4096].contains(blocksize) else {
                throw GGUFError(.outOfRange, "bitsandbytes quant state '\(name)': blocksize \(blocksize) is not one of 32, 64, …, 4096")
            }
            let dtypeName = dict["dtype"] as? String ?? ""
            guard let dtype = Self.dtype(named: dtypeName) else {
                throw GGUFError(.unknownTensorType, "bitsandbytes quant state '\(name)': dtype '\(dtypeName)' is not float32, float16 or bfloat16")
            }
            guard let dims = dict["shape"] as? [NSNumber], !dims.isEmpty,
                  case let shape = dims.compactMap({ Int(exactly: $0.doubleValue) }), shape.count == dims.count, shape.allSatisfy({ $0 > 0 }) else {
                throw GGUFError(.invalidTensor, "bitsandbytes quant state '\(name)' has no valid 'shape' (\(dict["shape"] ?? "none"))")
            }
            var elements = 1
            for d in shape {
                let (m, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw GGUFError(.overflow, "bitsandbytes quant state '\(name)': shape \(shape) overflows") }
                elements = m
            }
            var nested: Nested?
            if dict["nested_offset"] != nil || dict["nested_blocksize"] != nil {
                guard let offset = dict["nested_offset"] as? NSNumber else {
                    throw GGUFError(.missingKey, "bitsandbytes quant state '\(name)' has nested_blocksize but no number 'nested_offset'")
                }
                let nestedBlocksize = try int("nested_blocksize")
                guard nestedBlocksize > 0 else {
                    throw GGUFError(.outOfRange, "bitsandbytes quant state '\(name)': nested_blocksize \(nestedBlocksize) is not positive")
                }
                let nestedType = dict["nested_dtype"] as? String ?? "float32"
                guard nestedType == "float32" else {
                    throw GGUFError(.unknownTensorType, "bitsandbytes quant state '\(name)': nested_dtype '\(nestedType)' is not float32")
                }
                nested = Nested(blocksize: nestedBlocksize, offset: Float(offset.doubleValue))
            }
            self.init(quantType: type, blocksize: blocksize, dtype: dtype, shape: shape, nested: nested)
        }

        /// The safetensors type of a torch dtype name as QuantState.as_dict writes it.
        static func dtype(named name: String) -> SafetensorsFile.DType? {
            switch name {
            case "float32": .f32
            case "float16": .f16
            case "bfloat16": .bf16
            default: nil
            }
        }
    }

    // MARK: - Arithmetic

    /// bitsandbytes' NF4 table (`nf4_lut` of csrc/cpu_ops.cpp; `get_4bit_type("nf4")`).
    static let nf4: [Float] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ]

    /// bitsandbytes' FP4 table (1 sign, 2 exponent, 1 mantissa bit, scaled to ±1) in code order,
    /// as the C kernel has it: code 8 is −0 (`get_4bit_type("fp4")`, which the PyTorch fallback
    /// uses, has +0 there; every other entry is the same float).
    static let fp4: [Float] = [
        0.0, 0.0625 / 12, 8.0 / 12, 12.0 / 12, 4.0 / 12, 6.0 / 12, 2.0 / 12, 3.0 / 12,
        -0.0, -0.0625 / 12, -8.0 / 12, -12.0 / 12, -4.0 / 12, -6.0 / 12, -2.0 / 12, -3.0 / 12,
    ]

    /// The code book bitsandbytes uses for a weight whose last dimension is `columns`: the C
    /// kernel's for an even one, the PyTorch fallback's for an odd one.
    static func table(_ type: QuantType, columns: Int) -> [Float] {
        switch type {
        case .nf4: return nf4
        case .fp4:
            var t = fp4
            if columns % 2 != 0 { t[8] = 0 }
            return t
        }
    }

    /// `dequantize_blockwise` (the 8-bit kernel, float32 out): `code[q[i]] × absmax[i / blocksize]`.
    /// `absmax` must hold ⌈q.count / blocksize⌉ values.
    static func dequantizeBlockwise(_ q: UnsafeRawBufferPointer, code: [Float], absmax: [Float], blocksize: Int) -> [Float] {
        precondition(code.count == 256 && absmax.count == (q.count + blocksize - 1) / blocksize)
        var out = [Float](repeating: 0, count: q.count)
        for i in 0..<q.count {
            out[i] = code[Int(q[i])] * absmax[i / blocksize]
        }
        return out
    }

    /// The float32 scale of every block: `absmax` itself, or with double quantization its
    /// dequantized codes plus the offset.
    static func scales(state: QuantState, absmax: UnsafeRawBufferPointer, absmaxType: SafetensorsFile.DType,
                       nestedAbsmax: [Float], nestedCode: [Float]) -> [Float] {
        guard let nested = state.nested else {
            return HFCheckpoint.Builder.floats(absmax, dtype: absmaxType, count: state.blockCount)
        }
        var scales = dequantizeBlockwise(absmax, code: nestedCode, absmax: nestedAbsmax, blocksize: nested.blocksize)
        for i in scales.indices { scales[i] = scales[i] + nested.offset }
        return scales
    }

    /// `dequantize_4bit`: writes the weight's `state.elementCount` values, of `state.dtype`, to
    /// `out` (which holds exactly that many) from the packed codes and the block scales.
    static func dequantize4Bit(_ packed: UnsafeRawBufferPointer, scales: [Float], state: QuantState, into out: UnsafeMutableRawBufferPointer) {
        let n = state.elementCount, blocksize = state.blocksize
        precondition(packed.count >= state.packedBytes && scales.count == state.blockCount && out.count == n * state.dtype.byteSize)
        let columns = state.shape.last ?? n
        let table = table(state.quantType, columns: columns)
        // An odd last dimension goes through PyTorch (`.to(dtype)`: a NaN becomes the canonical
        // 0x7FC0), an even one through the C kernel (bits + 0x7FFF + lsb, NaN or not).
        let torchRounding = columns % 2 != 0
        let src = packed.bindMemory(to: UInt8.self)
        table.withUnsafeBufferPointer { table in
            scales.withUnsafeBufferPointer { scales in
                switch state.dtype {
                case .f32:
                    let dst = out.bindMemory(to: Float.self)
                    forEachValue(src, table: table, scales: scales, count: n, blocksize: blocksize) { i, v in dst[i] = v }
                case .f16:
                    let dst = out.bindMemory(to: UInt16.self)
                    forEachValue(src, table: table, scales: scales, count: n, blocksize: blocksize) { i, v in
                        dst[i] = Float16(v).bitPattern.littleEndian
                    }
                default:
                    let dst = out.bindMemory(to: UInt16.self)
                    forEachValue(src, table: table, scales: scales, count: n, blocksize: blocksize) { i, v in
                        dst[i] = (torchRounding && v.isNaN ? 0x7FC0 : bfloat16Bits(v)).littleEndian
                    }
                }
            }
        }
    }

    /// Calls `body(i, table[code i] × scale of i's block)` for i in 0..<count, block by block.
    /// Blocks hold an even number of codes (every valid blocksize is), so each starts on a byte.
    @inline(__always)
    static func forEachValue(_ src: UnsafeBufferPointer<UInt8>, table: UnsafeBufferPointer<Float>, scales: UnsafeBufferPointer<Float>,
                             count n: Int, blocksize: Int, _ body: (Int, Float) -> Void) {
        var start = 0, block = 0
        while start < n {
            let end = min(start + blocksize, n), scale = scales[block]
            var i = start
            while i + 1 < end {
                let byte = src[i >> 1]
                body(i, table[Int(byte >> 4)] * scale)
                body(i + 1, table[Int(byte & 0xF)] * scale)
                i += 2
            }
            if i < end { body(i, table[Int(src[i >> 1] >> 4)] * scale) }
            start = end
            block += 1
        }
    }

    /// float → bfloat16 as bitsandbytes' `float_to_bf16` rounds it: to nearest, ties to even.
    @inline(__always)
    static func bfloat16Bits(_ v: Float) -> UInt16 {
        let bits = v.bitPattern
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }
}
