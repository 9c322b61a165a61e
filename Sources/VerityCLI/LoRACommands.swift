import ArgumentParser
import Engine
import Foundation
import ModelFormats

/// `verity lora`: work with LoRA adapters outside serving.
struct LoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lora", abstract: "Work with LoRA adapters (PEFT folders, GGUF LoRAs).",
        subcommands: [LoRAMergeCommand.self])
}

/// `verity lora merge BASE ADAPTER --out DIR`: a checkpoint with the adapter merged in.
struct LoRAMergeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Write a Hugging Face checkpoint with a PEFT adapter merged into its weights (as PEFT's merge_and_unload).",
        discussion: """
            BASE is a Hugging Face folder (F32, F16 or BF16 safetensors) or hf:ORG/NAME; ADAPTER a PEFT folder or \
            hf:ORG/NAME. The output folder holds the merged safetensors (same files, dtypes and shards) and the base's \
            config, tokenizer and chat template, so transformers and Verity load it as they load the base.
            """)

    @Argument(help: "The base model: a Hugging Face folder or hf:ORG/NAME.") var base: String
    @Argument(help: "The adapter: a PEFT folder or hf:ORG/NAME.") var adapter: String
    @Option(help: "The folder to write (must not exist, or be empty).") var out: String
    @Option(help: "Multiplies the adapter's low-rank term (default 1).") var scale: Float = 1
    @Option(help: "For hf: bases: the branch, tag or commit.") var revision: String?

    func validate() throws {
        guard scale.isFinite else { throw ValidationError("--scale must be a finite number") }
    }

    func run() async throws {
        let basePath = try await ModelResolver.resolve(base, revision: revision).path
        let adapterPath = try await ModelResolver.resolve(adapter).path
        guard HFCheckpoint.isCheckpoint(directory: basePath) else {
            throw CLIError("\(basePath) is not a Hugging Face checkpoint folder: merging writes safetensors from safetensors (a GGUF base: llama.cpp's llama-export-lora)")
        }
        do {
            let view = try HFCheckpoint.load(directory: basePath)
            let file = try LoRAFile.load(path: adapterPath, base: view)
            let written = try LoRAMerge.merge(base: basePath, adapter: file, scale: scale, into: out)
            print("merged \(file.pairs.count) adapted weights\(file.replacements.isEmpty ? "" : " and \(file.replacements.count) replaced ones") into \(out) (\(written.count) files)")
        } catch {
            throw CLIError(error.message)
        }
    }
}
