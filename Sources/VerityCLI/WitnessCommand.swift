import ArgumentParser
import Foundation
import Ledger
import Logging
import Node
import Server

/// `verity witness`: cosign other logs' checkpoints (C2SP tlog-witness).
struct WitnessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "witness", abstract: "Run a witness that cosigns checkpoints of the logs it watches, only if each is consistent with the last.",
        subcommands: [WitnessServeCommand.self, WitnessKeyCommand.self])
}

/// Where a witness keeps its key and state.
struct WitnessDirectoryOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The witness's directory: witness.key (0600) and witness.sqlite (its state).")
    var dataDir: String
    @Option(help: "The witness's name, when its key is made (a schema-less URL, e.g. witness.example.org/w1).")
    var name: String?

    /// The witness key, made on first use.
    func signer() throws -> CosignatureSigner {
        let path = dataDir + "/witness.key"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let signer = try ledgerCall { try CosignatureSigner(signerKey: text.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if let name, name != signer.name { throw CLIError("\(path) is the key of \(signer.name), not \(name)") }
            return signer
        }
        guard let name else { throw CLIError("no witness key in \(dataDir) yet: give --name to make one") }
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let signer = try ledgerCall { try CosignatureSigner(name: name) }
        // Owner-only from the start, written whole or not at all.
        let temporary = path + ".tmp-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: temporary, contents: Data((signer.signerKey + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CLIError("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw CLIError("cannot create \(path)") }
        return signer
    }
}

/// `verity witness serve`.
struct WitnessServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve POST /add-checkpoint for the given logs.",
        discussion: """
            The witness cosigns a checkpoint only if the log's key signed it and a consistency proof shows it extends the \\
            last checkpoint of that log the witness cosigned, which it records durably before answering. It answers as \\
            c2sp.org/tlog-witness says: 404 for an unknown log, 403 for a bad signature, 409 with the size it knows when the \\
            client's old size is not that one, 422 for a proof that does not verify.
            """)

    @OptionGroup var directory: WitnessDirectoryOptions
    @Option(name: .customLong("log"), help: "A log to witness: its verifier key (`verity ledger node-key`, or /v1/ledger/node-key); repeatable.")
    var logs: [String] = []
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 8090

    func validate() throws {
        if logs.isEmpty { throw ValidationError("give at least one --log") }
    }

    func run() async throws {
        let signer = try directory.signer()
        let verifiers = try logs.map { key in try ledgerCall { try NoteVerifier(verifierKey: key) } }
        let witness = try ledgerCall { try Witness(signer: signer, logs: verifiers, statePath: directory.dataDir + "/witness.sqlite") }
        var logger = Logger(label: "verity-witness")
        logger.logLevel = .info
        try await WitnessServer.run(witness, logs: verifiers, host: host, port: port, logger: logger)
    }
}

/// `verity witness key`.
struct WitnessKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Print the witness's verifier key (making the key with --name if there is none).")

    @OptionGroup var directory: WitnessDirectoryOptions

    func run() throws {
        print(try directory.signer().verifier.verifierKey)
    }
}
