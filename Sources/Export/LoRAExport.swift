import Foundation
import ModelFormats

/// Writes a LoRA adapter on its own, as a PEFT folder or as a llama.cpp GGUF LoRA file.
///
/// - In its own format the adapter's files are copied as they are.
/// - PEFT → GGUF LoRA writes what llama.cpp's `convert_lora_to_gguf.py` writes: per adapted
///   weight `NAME.lora_a` (ggml dims [in, rank]) and `NAME.lora_b` ([rank, out], rows in the
///   base's GGUF order, so Llama's Q/K permutation applied), F32, with `general.type = adapter`,
///   `adapter.type = lora` and `adapter.lora.alpha`. llama.cpp scales every pair by alpha / rank
///   with one alpha per file; when the pairs' scales do not fit that (alpha_pattern, rsLoRA),
///   each pair's scale is folded into its B and alpha is written as 0 (scale 1).
public enum LoRAExport {
    public enum Kind: String, Sendable, CaseIterable {
        case peft, gguf
    }

    /// Writes the adapter to `path` (a folder for PEFT, a file for GGUF), which must not exist.
    public static func write(_ adapter: LoRAFile, base: GGUFFile, as kind: Kind, to path: String,
                             metadata extra: [(String, GGUFValue)] = []) throws(ExportError) -> [ExportedFile] {
        let fm = FileManager.default
        switch (adapter.format, kind) {
        case (.peft, .peft):
            let temporary = path + ".partial"
            try? fm.removeItem(atPath: temporary)
            do {
                try fm.createDirectory(atPath: temporary, withIntermediateDirectories: false)
                let folder = URL(fileURLWithPath: adapter.path)
                var names = Set(adapter.files.map { URL(fileURLWithPath: $0).lastPathComponent })
                names.insert("adapter_config.json")
                for name in try fm.contentsOfDirectory(atPath: folder.path) where name.lowercased() == "readme.md" { names.insert(name) }
                for name in names.sorted() {
                    try fm.copyItem(atPath: folder.appendingPathComponent(name).path, toPath: temporary + "/" + name)
                }
                try fm.moveItem(atPath: temporary, toPath: path)
                return try names.sorted().map { (name) throws(ExportError) in try FileDigest.exported(path + "/" + name) }
            } catch let error as ExportError {
                try? fm.removeItem(atPath: temporary)
                throw error
            } catch {
                try? fm.removeItem(atPath: temporary)
                throw ExportError(.io, "cannot write the adapter folder \(path): \(error.localizedDescription)")
            }
        case (.gguf, .gguf):
            do {
                try fm.copyItem(atPath: adapter.path, toPath: path + ".partial")
                try fm.moveItem(atPath: path + ".partial", toPath: path)
            } catch {
                try? fm.removeItem(atPath: path + ".partial")
                throw ExportError(.io, "cannot copy \(adapter.path) to \(path): \(error.localizedDescription)")
            }
            return [try FileDigest.exported(path)]
        case (.peft, .gguf):
            return [try writeGGUF(adapter, base: base, to: path, metadata: extra)]
        case (.gguf, .peft):
            throw ExportError(.unsupported, "\(adapter.path) is a GGUF LoRA; writing it as a PEFT folder is not supported yet (export it --to lora --type gguf, or --merge it into the base --to safetensors)")
        }
    }

    static func writeGGUF(_ adapter: LoRAFile, base: GGUFFile, to path: String, metadata extra: [(String, GGUFValue)]) throws(ExportError) -> ExportedFile {
        guard adapter.replacements.isEmpty else {
            throw ExportError(.unsupported, "\(adapter.path) replaces \(adapter.replacements.keys.sorted().joined(separator: ", ")) (modules_to_save), which a GGUF LoRA cannot carry; export it --merge into the base instead")
        }
        let alphas = Set(adapter.pairs.values.map { $0.scale * Float($0.rank) })
        let fold = alphas.count != 1 || adapter.pairs.values.contains { $0.scale * Float($0.rank) / Float($0.rank) != $0.scale }
        let alpha: Float = fold ? 0 : alphas.first ?? 0
        var writer = GGUFWriter()
        let arch = base.metadata["general.architecture"]?.stringValue ?? "llama"
        writer.set("general.architecture", .string(arch))
        writer.set("general.type", .string("adapter"))
        writer.set("adapter.type", .string("lora"))
        writer.set("adapter.lora.alpha", .float32(alpha))
        if let name = base.metadata["general.name"] {
            writer.set("general.base_model.count", .uint32(1))
            writer.set("general.base_model.0.name", name)
        }
        for (key, value) in extra { writer.set(key, value) }
        // In the base's tensor order, as convert_lora_to_gguf.py writes them.
        for info in base.tensors {
            guard let pair = adapter.pairs[info.name] else { continue }
            let a = pair.a.floats
            var b = pair.b.floats
            if fold { for i in b.indices { b[i] *= pair.scale } }
            do {
                try writer.addTensor(name: info.name + ".lora_a", type: .f32, dimensions: [pair.a.columns, pair.rank], data: bytes(a))
                try writer.addTensor(name: info.name + ".lora_b", type: .f32, dimensions: [pair.rank, pair.b.rows], data: bytes(b))
            } catch {
                throw ExportError(.unsupported, "cannot write the pair of \(info.name): \(error.message)")
            }
        }
        do {
            try writer.write(to: path + ".partial")
        } catch {
            unlink(path + ".partial")
            throw ExportError(.io, error.message)
        }
        guard rename(path + ".partial", path) == 0 else {
            unlink(path + ".partial")
            throw ExportError(.io, "cannot rename \(path).partial to \(path): \(String(cString: strerror(errno)))")
        }
        return try FileDigest.exported(path)
    }

    static func bytes(_ values: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * 4)
        out.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        }
        return out
    }
}
