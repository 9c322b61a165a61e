import ArgumentParser
import Foundation
import Hub

/// `verity pull`: downloads a model from the Hugging Face hub into huggingface_hub's cache.
struct PullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Download a model from the Hugging Face hub into the shared Hugging Face cache.",
        discussion: """
            REPO is org/name (also hf:org/name or hf.co/org/name). For a GGUF repo, :QUANT picks the file whose \
            name contains the tag, case-insensitively (e.g. :Q4_K_M matches model-Q4_K_M.gguf), as llama-server's -hf \
            does; :FILE.gguf names a file. Without a tag the default is \(HubFileSelector.defaultQuant), else another \
            Q4 file, else the first GGUF file. mmproj files are never picked; a split model \
            (name-00001-of-0000N.gguf) downloads all its shards. A repo without GGUF files is taken as a safetensors \
            checkpoint: config.json, generation_config.json, the tokenizer files and the weights (model.safetensors, \
            or model.safetensors.index.json and its shards).

            Files land in huggingface_hub's cache (HF_HUB_CACHE, default ~/.cache/huggingface/hub), shared with \
            Python tools: a model they downloaded is not downloaded again. Downloads resume after an interruption, \
            and each LFS file's sha256 is checked against the hub's before it enters the cache.

            Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (else the token file of \
            `huggingface-cli login`, HF_TOKEN_PATH or $HF_HOME/token), HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE=1 (use \
            only the cache). When the hub cannot be reached, the cached snapshot of the revision is used.

            Prints the downloaded GGUF file (the first shard of a split model) or the snapshot folder on stdout; \
            with --json, progress events and a final {"event":"done",...} as JSON lines.
            """)

    @Argument(help: "The model: REPO, REPO:QUANT or REPO:FILE.gguf (e.g. bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M).")
    var model: String
    @Option(help: "Branch, tag or commit to download (default: main).") var revision: String?
    @Flag(help: "Print progress events and the result as JSON lines on stdout.") var json = false
    @Option(name: .customLong("max-parallel"), help: "Files downloaded at once.") var maxParallel = 4

    func validate() throws {
        guard maxParallel >= 1 && maxParallel <= 64 else { throw ValidationError("--max-parallel must be between 1 and 64") }
    }

    func run() async throws {
        let reference: HubModelReference
        do {
            reference = try HubModelReference(parsing: model, revision: revision)
        } catch {
            throw ValidationError(error.message)
        }
        let client = HubClient(progress: json ? .json : .automatic, maxParallelDownloads: maxParallel)
        do {
            let snapshot = try await client.pull(reference)
            await client.shutdown()
            if !json { print(snapshot.primaryPath) }
        } catch {
            await client.shutdown()
            throw CLIError(error.message)
        }
    }
}
