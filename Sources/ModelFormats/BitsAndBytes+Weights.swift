import Foundation

// MARK: - A checkpoint's quantized weights

extension BitsAndBytes {
    /// The 4-bit weights of a checkpoint's safetensors files, their companions checked up front:
    /// every quant state names a packed weight with the companions it needs, of the sizes its
    /// shape implies, and every companion belongs to a quant state.
    struct Weights {
        let directory: String
        let set: SafetensorsSet
        /// Packed weight name → its quant state.
        let states: [String: QuantState]
        /// The companions (absmax, quant_map, nested_*, quant_state.*) of those weights.
        let companions: Set<String>

        init(_ set: SafetensorsSet, directory: String) throws(GGUFError) {
            self.directory = directory
            self.set = set
            var states: [String: QuantState] = [:]
            var companions: Set<String> = []
            for name in set.tensors.keys.sorted() {
                guard let r = name.range(of: quantStateInfix, options: .backwards) else { continue }
                let base = String(name[..<r.lowerBound]), typeName = String(name[r.upperBound...])
                guard let type = QuantType(rawValue: typeName) else {
                    throw GGUFError(.unknownTensorType, "\(directory): tensor '\(name)' is a bitsandbytes quant state of unknown type '\(typeName)' (Verity reads nf4 and fp4)")
                }
                guard states[base] == nil else {
                    throw GGUFError(.duplicateTensor, "\(directory): '\(base)' has two bitsandbytes quant states")
                }
                let (_, tensor) = set.tensors[name]!
                guard tensor.dtype == .u8 else {
                    throw GGUFError(.typeMismatch, "\(directory): bitsandbytes quant state '\(name)' is \(tensor.dtype.rawValue), not U8 (JSON bytes)")
                }
                let state = try QuantState(json: set.bytes(name), name: "\(directory): \(name)")
                guard state.quantType == type else {
                    throw GGUFError(.invalidTensor, "\(directory): bitsandbytes quant state '\(name)' says quant_type '\(state.quantType.rawValue)'")
                }
                companions.insert(name)
                try Self.check(base, state, in: set, directory: directory)
                for suffix in companionSuffixes { companions.insert(base + suffix) }
                states[base] = state
            }
            // A companion without its quant state is a weight that cannot be dequantized.
            for name in set.tensors.keys where !companions.contains(name) {
                for suffix in companionSuffixes where name.hasSuffix(suffix) {
                    let base = String(name.dropLast(suffix.count))
                    throw GGUFError(.missingKey, "\(directory): tensor '\(name)' is a bitsandbytes 4-bit companion of '\(base)', but the checkpoint has no quant state '\(base)\(quantStateInfix)nf4' (or fp4) to dequantize it with")
                }
            }
            self.states = states
            self.companions = companions
        }

        /// The packed weight and its companions agree with the quant state.
        static func check(_ base: String, _ state: QuantState, in set: SafetensorsSet, directory: String) throws(GGUFError) {
            func tensor(_ suffix: String) throws(GGUFError) -> SafetensorsFile.Tensor {
                guard let (_, t) = set.tensors[base + suffix] else {
                    throw GGUFError(.missingKey, suffix.isEmpty
                        ? "\(directory): the checkpoint has a bitsandbytes quant state for '\(base)' but no packed tensor '\(base)'"
                        : "\(directory): bitsandbytes 4-bit weight '\(base)' has no companion tensor '\(base)\(suffix)'")
                }
                return t
            }
            func expect(_ suffix: String, _ types: [SafetensorsFile.DType], count: Int) throws(GGUFError) {
                let t = try tensor(suffix)
                guard types.contains(t.dtype) else {
                    throw GGUFError(.typeMismatch, "\(directory): '\(base)\(suffix)' is \(t.dtype.rawValue), not \(types.map(\.rawValue).joined(separator: " or "))")
                }
                guard t.elementCount == count else {
                    throw GGUFError(t.elementCount < count ? .truncated : .invalidTensor,
                                    "\(directory): '\(base)\(suffix)' has \(t.elementCount) values; the quant state's shape \(state.shape) in blocks of \(state.blocksize) needs \(count)")
                }
            }
            let packed = try tensor("")
            guard packed.range.count == state.packedBytes else {
                throw GGUFError(packed.range.count < state.packedBytes ? .truncated : .invalidTensor,
                                "\(directory): 4-bit weight '\(base)' holds \(packed.range.count) bytes, but its quant state's shape \(state.shape) (\(state.elementCount) values) needs \(state.packedBytes)")
            }
            try expect(".quant_map", [.f32], count: 16)
            if let nested = state.nested {
                try expect(".absmax", [.u8], count: state.blockCount)
                try expect(".nested_absmax", [.f32], count: (state.blockCount + nested.blocksize - 1) / nested.blocksize)
                try expect(".nested_quant_map", [.f32], count: 256)
            } else {
                try expect(".absmax", [.f32, .f16, .bf16], count: state.blockCount)
                for suffix in [".nested_absmax", ".nested_quant_map"] where set.tensors[base + suffix] != nil {
                    throw GGUFError(.invalidTensor, "\(directory): '\(base)\(suffix)' is there but the quant state of '\(base)' has no nested_offset / nested_blocksize")
                }
            }
        }

        /// Weight `name` (a key of `states`) dequantized, in the checkpoint's row-major order.
        func dequantize(_ name: String) -> (owner: MappedFile, dtype: SafetensorsFile.DType, shape: [Int]) {
            let state = states[name]!
            let absmax = set.tensors[name + ".absmax"]!.tensor
            var nestedAbsmax: [Float] = [], nestedCode: [Float] = []
            if let nested = state.nested {
                nestedAbsmax = HFCheckpoint.Builder.floats(set.bytes(name + ".nested_absmax"), dtype: .f32, count: (state.blockCount + nested.blocksize - 1) / nested.blocksize)
                nestedCode = HFCheckpoint.Builder.floats(set.bytes(name + ".nested_quant_map"), dtype: .f32, count: 256)
            }
            let scales = BitsAndBytes.scales(state: state, absmax: set.bytes(name + ".absmax"), absmaxType: absmax.dtype,
                                             nestedAbsmax: nestedAbsmax, nestedCode: nestedCode)
            let packed = set.bytes(name)
            let owner = MappedFile(allocating: state.elementCount * state.dtype.byteSize) { out in
                BitsAndBytes.dequantize4Bit(packed, scales: scales, state: state, into: out)
            }
            return (owner, state.dtype, state.shape)
        }
    }

    /// Tensors of the Hugging Face folder `directory` as Verity reads them, before any renaming or
    /// reordering: a bitsandbytes 4-bit weight dequantized to the type its quant state names, any
    /// other tensor as stored. For checking the dequantization against bitsandbytes.
    /// - Parameter names: checkpoint tensor names (`model.layers.0.mlp.down_proj.weight`).
    /// - Returns: for each name, its type, row-major shape and little-endian bytes.
    /// - Throws: `GGUFError` for an unreadable folder, a missing tensor or a bad quant state.
    public static func tensors(_ names: [String], directory: String) throws(GGUFError) -> [(dtype: SafetensorsFile.DType, shape: [Int], data: MappedFile)] {
        let set = try SafetensorsSet(directory: directory)
        let weights = try Weights(set, directory: directory)
        var result: [(dtype: SafetensorsFile.DType, shape: [Int], data: MappedFile)] = []
        for name in names {
            if weights.states[name] != nil {
                let (owner, dtype, shape) = weights.dequantize(name)
                result.append((dtype, shape, owner))
                continue
            }
            guard let (_, tensor) = set.tensors[name] else {
                throw GGUFError(.missingKey, "\(directory) has no tensor '\(name)'")
            }
            let bytes = set.bytes(name)
            result.append((tensor.dtype, tensor.shape, MappedFile(allocating: bytes.count) { $0.copyMemory(from: bytes) }))
        }
        return result
    }

    /// The names of the 4-bit weights of the folder `directory`, sorted.
    public static func quantizedTensorNames(directory: String) throws(GGUFError) -> [String] {
        try Weights(SafetensorsSet(directory: directory), directory: directory).states.keys.sorted()
    }
}
