import ArgumentParser
import Engine
import Foundation

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

/// `verity logits`: teacher-forced logits of token sequences, for the fidelity script
/// (scripts/fidelity.py). Input: a JSON array of arrays of token ids. Output: raw little-endian
/// float32, each sequence's `count × vocabulary` logits concatenated.
struct LogitsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits", abstract: "Dump teacher-forced logits (float32) of token sequences.", shouldDisplay: false)

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
        let generator = try Generator(model: model, capacity: max(1, longest), threads: modelOptions.threadCount)
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: output) else { throw CLIError("cannot write \(output)") }
        defer { try? handle.close() }
        for sequence in sequences {
            let logits = try generator.logits(for: sequence.map { Int32(truncatingIfNeeded: $0) })
            logits.withUnsafeBytes { handle.write(Data($0)) }
        }
    }
}
