import Foundation
import ModelFormats

/// llama.cpp's GGUF file naming convention (gguf-py's `naming_convention`, ggml's docs/gguf.md):
/// `<BaseName>-<SizeLabel>-<FineTune>-<Version>-<Encoding>-<Type>`, from the model's
/// `general.*` metadata.
public enum ExportNaming {
    /// The parameter count in llama.cpp's rounded notation (`135M`, `1.1B`, `70B`), as gguf-py's
    /// `model_weight_count_rounded_notation(count, min_digits: 2)` prints it.
    public static func sizeLabel(parameters count: Int) -> String {
        let n = Double(count)
        let (scaled, suffix): (Double, String) = n > 1e12 ? (n * 1e-12, "T") : n > 1e9 ? (n * 1e-9, "B") : n > 1e6 ? (n * 1e-6, "M") : (n * 1e-3, "K")
        // Python's round() is round-half-even; its str() of the integer, without leading zeros.
        let rounded = scaled.rounded(.toNearestOrEven)
        let digits = String(Int(rounded)).drop { $0 == "0" }.count
        let fix = max(2 - digits, 0)
        return String(format: "%.\(fix)f", scaled) + suffix
    }

    /// Parameters of a model: the elements of all its tensors.
    public static func parameterCount(_ model: GGUFFile) -> Int {
        model.tensors.reduce(0) { $0 + $1.elementCount }
    }

    /// The name without extension, e.g. `SmolLM2-135M-Instruct-Q4_K_M`.
    public static func stem(_ model: GGUFFile, encoding: String?, kind: String? = nil) -> String {
        func clean(_ s: String) -> String { s.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " ", with: "-") }
        let string = { (key: String) -> String? in
            guard case .string(let s)? = model.metadata[key], !s.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
            return s
        }
        var name = "ggml-model"
        if let base = string("general.basename") ?? string("general.name") {
            name = clean(base).replacingOccurrences(of: "/", with: "-")
        }
        let size = string("general.size_label") ?? sizeLabel(parameters: parameterCount(model))
        var parts = [name, size]
        if let finetune = string("general.finetune") { parts.append(clean(finetune)) }
        if let version = string("general.version") { parts.append(clean(version)) }
        if let encoding { parts.append(clean(encoding).uppercased()) }
        if let kind { parts.append(clean(kind)) }
        return parts.joined(separator: "-")
    }
}
