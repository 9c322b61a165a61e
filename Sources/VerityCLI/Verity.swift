import ArgumentParser
import Foundation

@main
struct Verity: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verity",
        abstract: "Verity: a self-hostable LLM inference engine.",
        subcommands: [ServeCommand.self, RunCommand.self, ChatCommand.self, BenchCommand.self, AccountCommand.self, KeysCommand.self, WitnessCommand.self,
                      LedgerCommand.self, WorkerCommand.self, GatewayCommand.self, WorkersCommand.self, TokenizeCommand.self,
                      LogitsCommand.self, PullCommand.self, LoRACommand.self, ExportCommand.self])
}

/// Where the provisioning script (scripts/fetch-models) puts models.
enum ModelCache {
    static var directory: String {
        if let dir = ProcessInfo.processInfo.environment["VERITY_CACHE_DIR"], !dir.isEmpty { return dir + "/models" }
        return NSHomeDirectory() + "/.cache/verity/models"
    }

    static let defaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf"
    static var defaultModelPath: String { directory + "/" + defaultModelFile }
}

/// Diagnostics go to stderr; stdout carries only results.
enum Diagnostics {
    static func print(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}
