import Foundation

/// Writes a Hugging Face checkpoint with a PEFT adapter merged in, as PEFT's `merge_and_unload`
/// does: every adapted weight becomes `W + scale · (B·A) · adapterScale`, computed in F32 and
/// rounded to the weight's dtype (round to nearest even); `modules_to_save` weights replace the
/// base's. Everything else is copied: the other tensors byte for byte, in the same files (shards
/// and index keep their names), and the folder's config, tokenizer and template files.
public enum LoRAMerge {
    /// Files of a checkpoint folder copied unchanged beside the merged weights.
    static func isCompanion(_ name: String) -> Bool {
        let lower = name.lowercased()
        return !lower.hasSuffix(".safetensors") && !name.hasPrefix(".")
            && [".json", ".jinja", ".txt", ".model", ".md"].contains(where: lower.hasSuffix)
    }

    /// Merges `adapter` (read for `base`'s GGUF view) into the checkpoint folder `base` as a new
    /// folder `output`, which must not exist or be empty. Returns the files written.
    @discardableResult
    public static func merge(base directory: String, adapter: LoRAFile, scale: Float, into output: String) throws(GGUFError) -> [String] {
        let dir = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        guard HFCheckpoint.isCheckpoint(directory: dir) else {
            throw GGUFError(.io, "\(dir) is not a Hugging Face checkpoint folder (config.json and safetensors): merging writes one, from one")
        }
        guard adapter.format == .peft else {
            throw GGUFError(.invalidTensor, "\(adapter.path) is a GGUF LoRA: merge its PEFT original, or use llama.cpp's llama-export-lora on a GGUF base")
        }
        let config = try HFCheckpoint.readJSONObject(dir + "/config.json")
        if config["quantization_config"] != nil {
            throw GGUFError(.invalidTensor, "\(dir) is a quantized checkpoint (quantization_config): merge into its 16-bit original")
        }
        let fm = FileManager.default
        if fm.fileExists(atPath: output) {
            guard ((try? fm.contentsOfDirectory(atPath: output)) ?? ["?"]).isEmpty else {
                throw GGUFError(.io, "\(output) already exists and is not empty; pick a new folder")
            }
        }
        do { try fm.createDirectory(atPath: output, withIntermediateDirectories: true) } catch {
            throw GGUFError(.io, "cannot create \(output): \(error.localizedDescription)")
        }
        let weights = try SafetensorsSet(directory: dir)
        // What replaces or changes each checkpoint tensor.
        var pairs: [String: LoRAFile.Pair] = [:]
        for pair in adapter.pairs.values {
            guard let module = pair.module else { continue }
            pairs[module + ".weight"] = pair
        }
        var replacements: [String: LoRAFile.Matrix] = [:]
        for (gguf, module) in adapter.replacementModules { replacements[module] = adapter.replacements[gguf] }
        let touched = Set(pairs.keys).union(replacements.keys)
        let missing = touched.subtracting(weights.tensors.keys)
        guard missing.isEmpty else {
            throw GGUFError(.missingKey, "\(dir) has no tensor \(missing.sorted().joined(separator: ", ")), which the adapter changes")
        }

        var written: [String] = []
        for file in weights.files {
            let name = URL(fileURLWithPath: file.path).lastPathComponent
            let path = output + "/" + name
            let tensors = file.tensors.values.sorted { $0.name < $1.name }
            var entries: [(String, SafetensorsFile.DType, [Int], Data)] = []
            for tensor in tensors {
                let bytes = file.data(tensor)
                if let replacement = replacements[tensor.name] {
                    guard replacement.rows * replacement.columns == tensor.elementCount else {
                        throw GGUFError(.invalidTensor, "\(adapter.path): the replacement of '\(tensor.name)' has another shape")
                    }
                    let values = floats(replacement.bytes, type: replacement.type, count: tensor.elementCount)
                    entries.append((tensor.name, tensor.dtype, tensor.shape, encode(values, as: tensor.dtype)))
                } else if let pair = pairs[tensor.name] {
                    guard tensor.shape == [pair.b.rows, pair.a.columns], let b = pair.checkpointB else {
                        throw GGUFError(.invalidTensor, "\(adapter.path): '\(tensor.name)' is \(tensor.shape) but the adapter's pair makes \(pair.b.rows)×\(pair.a.columns)")
                    }
                    guard [.f32, .f16, .bf16].contains(tensor.dtype) else {
                        throw GGUFError(.unknownTensorType, "\(dir): '\(tensor.name)' is \(tensor.dtype.rawValue); merging needs F32, F16 or BF16 weights")
                    }
                    var w = floats(bytes, dtype: tensor.dtype, count: tensor.elementCount)
                    addDelta(to: &w, a: pair.a, b: b, scale: pair.scale * scale)
                    entries.append((tensor.name, tensor.dtype, tensor.shape, encode(w, as: tensor.dtype)))
                } else {
                    entries.append((tensor.name, tensor.dtype, tensor.shape, Data(bytes)))
                }
            }
            try SafetensorsWriter.write(entries, metadata: file.metadata.isEmpty ? ["format": "pt"] : file.metadata, to: path)
            written.append(path)
        }
        for name in ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted() where isCompanion(name) {
            do { try fm.copyItem(atPath: dir + "/" + name, toPath: output + "/" + name) } catch {
                throw GGUFError(.io, "cannot copy \(name) to \(output): \(error.localizedDescription)")
            }
            written.append(output + "/" + name)
        }
        return written
    }

    /// `w += (B·A)·scale`, row by row: each delta element is the F32 sum over the rank in order,
    /// then scaled, then added.
    static func addDelta(to w: inout [Float], a: LoRAFile.Matrix, b: LoRAFile.Matrix, scale: Float) {
        let rank = a.rows, columns = a.columns, rows = b.rows
        let av = floats(a.bytes, type: a.type, count: rank * columns)
        let bv = floats(b.bytes, type: b.type, count: rows * rank)
        var delta = [Float](repeating: 0, count: columns)
        for r in 0..<rows {
            for i in 0..<columns { delta[i] = 0 }
            for j in 0..<rank {
                let coefficient = bv[r * rank + j]
                let base = j * columns
                for i in 0..<columns { delta[i] += coefficient * av[base + i] }
            }
            let row = r * columns
            for i in 0..<columns { w[row + i] += delta[i] * scale }
        }
    }

    static func floats(_ bytes: UnsafeRawBufferPointer, type: GGMLType, count: Int) -> [Float] {
        floats(bytes, dtype: type == .f32 ? .f32 : type == .f16 ? .f16 : .bf16, count: count)
    }

    static func floats(_ bytes: UnsafeRawBufferPointer, dtype: SafetensorsFile.DType, count: Int) -> [Float] {
        HFCheckpoint.Builder.floats(bytes, dtype: dtype, count: count)
    }

    /// Floats as `dtype`'s little-endian bytes (F16 and BF16 rounded to nearest even).
    static func encode(_ values: [Float], as dtype: SafetensorsFile.DType) -> Data {
        var data = Data(count: values.count * dtype.byteSize)
        data.withUnsafeMutableBytes { out in
            for (i, v) in values.enumerated() {
                switch dtype {
                case .f32: out.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
                case .f16: out.storeBytes(of: Float16(v).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self)
                // Round to nearest even; NaN as torch writes it.
                default: out.storeBytes(of: (v.isNaN ? 0x7FC0 : BitsAndBytes.bfloat16Bits(v)).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
                }
            }
        }
        return data
    }
}

/// Writes safetensors files: the 8-byte header length, the JSON header (tensors in the given
/// order, `__metadata__` first, padded with spaces to 8 bytes), then the tensors' bytes.
public enum SafetensorsWriter {
    public static func write(_ tensors: [(name: String, dtype: SafetensorsFile.DType, shape: [Int], data: Data)],
                             metadata: [String: String], to path: String) throws(GGUFError) {
        var header: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            header.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
        }
        var offset = 0
        for t in tensors {
            header.append("\(jsonString(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + t.data.count)]}")
            offset += t.data.count
        }
        var json = Data(("{" + header.joined(separator: ",") + "}").utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        let temporary = path + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: out), let handle = FileHandle(forWritingAtPath: temporary) else {
            throw GGUFError(.io, "cannot write \(temporary)")
        }
        do {
            try handle.seekToEnd()
            for t in tensors { try handle.write(contentsOf: t.data) }
            try handle.synchronize()
            try handle.close()
            try? FileManager.default.removeItem(atPath: path)
            try FileManager.default.moveItem(atPath: temporary, toPath: path)
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw GGUFError(.io, "cannot write \(path): \(error.localizedDescription)")
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
