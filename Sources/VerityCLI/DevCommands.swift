import ArgumentParser
import Engine
import Foundation
import ModelFormats

/// `verity tokenize`: token ids of a text, as JSON (for scripts and parity checks).
struct TokenizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Print the token ids of a text as JSON.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Text to tokenize.") var text: String?
    @Option(help: "JSON file holding an array of texts: prints one JSON array of id arrays.") var input: String?
    @Flag(help: "Do not add BOS/EOS.") var noSpecial = false
    @Flag(help: "Treat special-token text as plain text.") var noParseSpecial = false

    func validate() throws {
        guard (text == nil) != (input == nil) else { throw ValidationError("give --text or --input, not both") }
    }

    func run() async throws {
        let model = try await modelOptions.load()
        func ids(_ text: String) -> String {
            "[" + model.tokenizer.encode(text, addSpecial: !noSpecial, parseSpecial: !noParseSpecial).map(String.init).joined(separator: ",") + "]"
        }
        if let text {
            print(ids(text))
            return
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: input ?? ""))
        guard let texts = try JSONSerialization.jsonObject(with: data) as? [String] else {
            throw CLIError("\(input ?? "") must hold a JSON array of strings")
        }
        print("[" + texts.map(ids).joined(separator: ",\n") + "]")
    }
}

/// `verity logits`: what the engine computes, dumped for parity scripts: teacher-forced logits
/// (the default subcommand) and `verity logits dequantize`, checkpoint tensors as loaded.
struct LogitsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits", abstract: "Dump teacher-forced logits (float32) of token sequences.", shouldDisplay: false,
        subcommands: [TeacherForcedLogitsCommand.self, DequantizeCommand.self], defaultSubcommand: TeacherForcedLogitsCommand.self)
}

/// `verity logits [sequences]`: teacher-forced logits of token sequences, for the fidelity script
/// (scripts/fidelity.py). Input: a JSON array of arrays of token ids. Output: raw little-endian
/// float32, each sequence's `count × vocabulary` logits concatenated.
struct TeacherForcedLogitsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sequences", abstract: "Dump teacher-forced logits (float32) of token sequences (the default).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "JSON file: an array of token-id arrays.") var input: String
    @Option(help: "Output file for the float32 logits.") var output: String

    func run() async throws {
        let model = try await modelOptions.load()
        let data = try Data(contentsOf: URL(fileURLWithPath: input))
        guard let sequences = try JSONSerialization.jsonObject(with: data) as? [[Int]] else {
            throw CLIError("\(input) must hold a JSON array of arrays of token ids")
        }
        let longest = sequences.map(\.count).max() ?? 1
        let generator = try await modelOptions.generator(for: model, capacity: max(1, longest))
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: output) else { throw CLIError("cannot write \(output)") }
        defer { try? handle.close() }
        for sequence in sequences {
            let logits = try generator.logits(for: sequence.map { Int32(truncatingIfNeeded: $0) })
            logits.withUnsafeBytes { handle.write(Data($0)) }
        }
    }
}

/// `verity logits dequantize`: checkpoint tensors as Verity reads them (a bitsandbytes 4-bit weight
/// dequantized), before renaming or reordering, for the exactness test against bitsandbytes.
/// Output: each tensor's raw little-endian bytes in the checkpoint's row-major order and type,
/// concatenated; stdout: a JSON array of {name, dtype, shape, offset, bytes}.
struct DequantizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dequantize", abstract: "Dump checkpoint tensors, bitsandbytes 4-bit ones dequantized.", shouldDisplay: false)

    @Option(help: "A Hugging Face model folder.") var model: String
    @Option(help: "A tensor's checkpoint name (repeatable), e.g. model.layers.0.mlp.down_proj.weight.") var tensor: [String] = []
    @Flag(help: "Every bitsandbytes 4-bit weight of the folder, in name order.") var allQuantized = false
    @Option(help: "Output file for the tensors' bytes.") var output: String

    func validate() throws {
        guard allQuantized != !tensor.isEmpty else { throw ValidationError("give --tensor NAME (repeatable) or --all-quantized") }
    }

    func run() async throws {
        let names = allQuantized ? try BitsAndBytes.quantizedTensorNames(directory: model) : tensor
        let tensors = try BitsAndBytes.tensors(names, directory: model)
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: output) else { throw CLIError("cannot write \(output)") }
        defer { try? handle.close() }
        var entries: [[String: Any]] = []
        var offset = 0
        for (name, t) in zip(names, tensors) {
            handle.write(Data(t.data.buffer))
            entries.append(["name": name, "dtype": t.dtype.rawValue, "shape": t.shape, "offset": offset, "bytes": t.data.count])
            offset += t.data.count
        }
        print(String(decoding: try JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys]), as: UTF8.self))
    }
}
