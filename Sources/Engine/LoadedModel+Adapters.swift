import Foundation
import ModelFormats
import Models

extension LoadedModel {
    /// Reads a LoRA adapter (a PEFT folder or a GGUF LoRA file) and prepares it for this model,
    /// with the user's `scale` on top of its own alpha / rank. Refuses an adapter made for another
    /// base: by its shapes, or by the base model it names (`base_model_name_or_path`) when that
    /// names another model than this one's names.
    public func loadAdapter(path: String, scale: Float = 1) throws(EngineError) -> ModelAdapter {
        let file: LoRAFile
        do {
            file = try LoRAFile.load(path: path, base: self.file)
        } catch {
            throw EngineError(.invalidModelFile, "adapter \(path): \(error.message)", cause: error)
        }
        if file.namesOtherBase(than: baseNames) {
            throw EngineError(.invalidModelFile, "adapter \(path) was trained on base model '\(file.baseModelName ?? "")', not on \(name) (\(source)); pass the base model it was trained on")
        }
        do {
            return try network.makeAdapter(file, scale: scale)
        } catch {
            throw EngineError(.invalidModelFile, "adapter \(path): \(error.message)", cause: error)
        }
    }

    /// The names this model goes by, for matching an adapter's base model name.
    var baseNames: [String] {
        var names = [name, URL(fileURLWithPath: path).lastPathComponent]
        if source.hasPrefix("hf:") {
            names.append(String(source.dropFirst(3).split(separator: "@")[0].split(separator: ":")[0]))
        }
        if let basename = try? file.optionalString("general.basename") { names.append(basename) }
        return names
    }
}

/// A named adapter to load: what `--lora NAME=PATH` and the admin API name.
public struct AdapterSpec: Sendable, Equatable {
    public var name: String
    /// A PEFT folder, a GGUF LoRA file, or `hf:ORG/NAME` (resolved by the caller).
    public var path: String
    public var scale: Float

    public init(name: String, path: String, scale: Float = 1) {
        self.name = name
        self.path = path
        self.scale = scale
    }

    /// Adapter names are model ids in the API: 1–128 characters of letters, digits and `._-/:`,
    /// not starting with `.` or `/`.
    public static func checkName(_ name: String) throws(EngineError) {
        if let problem = nameProblem(name) { throw EngineError(.invalidParameter, problem) }
    }

    /// What is wrong with `name` as an adapter name, or nil.
    public static func nameProblem(_ name: String) -> String? {
        let allowed = name.unicodeScalars.allSatisfy { ($0.isASCII && (CharacterSet.alphanumerics.contains($0))) || "._-/:".unicodeScalars.contains($0) }
        guard (1...128).contains(name.count), allowed, !name.hasPrefix("."), !name.hasPrefix("/"), name != "none" else {
            return "adapter name '\(name)' must be 1–128 letters, digits or ._-/: (not starting with . or /, not 'none')"
        }
        return nil
    }
}
