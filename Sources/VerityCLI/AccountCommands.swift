import ArgumentParser
import Foundation
import Ledger
import Node

/// `--data-dir`, shared by every command that reads or writes the server's state.
struct DataDirectoryOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"),
            help: "The server's data directory (default: $VERITY_DATA_DIR, else $XDG_DATA_HOME/verity, else ~/.local/share/verity).")
    var dataDir: String?
    @Option(name: .customLong("ledger-db"),
            help: "The PostgreSQL database (postgres://…) of a ledger that several gateways share: its accounts and keys live there (default: $VERITY_LEDGER_DB).")
    var ledgerDatabase: String?

    var directory: DataDirectory {
        var directory = DataDirectory(path: dataDir ?? DataDirectory.defaultPath)
        if let ledgerDatabase { directory.database = ledgerDatabase }
        return directory
    }
}

/// `verity account`: account key bundles.
struct AccountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account", abstract: "Create and inspect account key bundles (the sender addresses of the ledger).",
        subcommands: [AccountCreateCommand.self, AccountShowCommand.self, AccountRoutingCommand.self])
}

/// `verity account routing`: where an account's requests run on a fleet by default.
struct AccountRoutingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routing",
        abstract: "Set, show or clear the routing constraints a registered account's requests default to on a gateway.",
        discussion: """
            A request's own `verity` object overrides these field by field; the gateway's --max-price-per-hour applies where \
            neither sets a price. A running gateway sees a change at the account's next request. With no option, prints them.
            """)

    @OptionGroup var data: DataDirectoryOptions
    @Argument(help: "The account's address (registered with `verity keys create --account-file`).") var account: String
    @Option(name: .customLong("max-price-per-hour"), help: "The highest price per hour.") var maxPricePerHour: Double?
    @Option(help: "Allowed providers, comma-separated.") var providers: String?
    @Option(help: "Allowed GPUs (a worker's GPU name contains one), comma-separated.") var gpus: String?
    @Option(help: "Allowed regions, comma-separated.") var regions: String?
    @Flag(help: "Remove the account's defaults.") var clear = false

    func validate() throws {
        if let maxPricePerHour, !(maxPricePerHour.isFinite && (0...1_000_000).contains(maxPricePerHour)) {
            throw ValidationError("--max-price-per-hour must be a number from 0 to 1000000")
        }
        if clear, maxPricePerHour != nil || providers != nil || gpus != nil || regions != nil {
            throw ValidationError("--clear takes no other option")
        }
        for (name, list) in [("--providers", providers), ("--gpus", gpus), ("--regions", regions)] {
            if let list, Self.split(list).isEmpty { throw ValidationError("\(name) needs at least one name") }
        }
    }

    static func split(_ list: String) -> [String] {
        list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func run() throws {
        let registry = try ledgerCall { try data.directory.registry() }
        let address = try ledgerCall { try AccountAddress(account) }
        guard let registered = try ledgerCall({ try registry.account(address) }) else {
            throw CLIError("account \(address) is not registered in \(data.directory.path); `verity keys create --account-file FILE` registers it")
        }
        if clear {
            try ledgerCall { try registry.setRouting(nil, for: address) }
            Diagnostics.print("cleared the routing defaults of \(address)")
            return
        }
        guard maxPricePerHour != nil || providers != nil || gpus != nil || regions != nil else {
            print((registered.routing ?? RoutingConstraints()).json.serialized())
            return
        }
        var routing = registered.routing ?? RoutingConstraints()
        if let maxPricePerHour { routing.maxPricePerHourMicros = Int64((maxPricePerHour * 1_000_000).rounded()) }
        if let providers { routing.providers = Self.split(providers) }
        if let gpus { routing.gpus = Self.split(gpus) }
        if let regions { routing.regions = Self.split(regions) }
        try ledgerCall { try registry.setRouting(routing, for: address) }
        print(routing.json.serialized())
    }
}

/// `verity account create`: a new key bundle in an owner-only file; prints the address.
struct AccountCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create an account: an Ed25519 signing key and an X25519 encryption key, in a file only you can read.",
        discussion: """
            Prints the account's address (Base58Check of the Ed25519 public key, version byte 0x56) on stdout. \
            Register it with a server and get an API key with `verity keys create --account-file FILE`.
            """)

    @Option(help: "Where to write the key bundle (default: $XDG_CONFIG_HOME/verity/account.json or ~/.config/verity/account.json). Never overwritten.")
    var out: String?

    func run() throws {
        let path = out ?? Self.defaultPath
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: parent) {
            try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let account = Account()
        try ledgerCall { try DataDirectory.writeSecret(try account.bundleData(), to: path) }
        print(account.address)
        Diagnostics.print("wrote \(path) (owner-only); encryption key, for --auditor-key: \(account.recipientKey.rawRepresentation.base64EncodedString())")
    }

    static var defaultPath: String {
        let xdg = ProcessInfo.processInfo.environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
        return (xdg ?? NSHomeDirectory() + "/.config") + "/verity/account.json"
    }
}

/// `verity account show FILE`: the public half of a bundle.
struct AccountShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print an account bundle's address and encryption public key.")

    @Argument(help: "The account key bundle.") var file: String
    @Flag(help: "Print JSON: {\"address\", \"encryption_key\"}.") var json = false

    func run() throws {
        let account = try readAccount(file)
        let key = account.recipientKey.rawRepresentation.base64EncodedString()
        if json {
            print(JSON.object([("address", .string(account.address.description)), ("encryption_key", .string(key))]).serialized())
        } else {
            print("address         \(account.address)\nencryption key  \(key)")
        }
    }
}

/// `verity keys`: API keys bound to accounts, in the data directory.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Issue, list and revoke API keys bound to accounts.",
        discussion: "Only each key's SHA-256 is stored. A running server sees new and revoked keys at once; once any key is active, every /v1 request needs one.",
        subcommands: [KeysCreateCommand.self, KeysListCommand.self, KeysRevokeCommand.self])
}

/// `verity keys create`: a new key for an account; prints it once.
struct KeysCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Issue an API key for an account and print it (shown once).")

    @OptionGroup var data: DataDirectoryOptions
    @Option(help: "The account's address (already registered with --account-file).") var account: String?
    @Option(name: .customLong("account-file"), help: "The account's key bundle: registers its public keys, then issues the key.")
    var accountFile: String?
    @Option(help: "Requests per minute this key may make (default: the server's --rate-limit-rpm).") var rpm: Int?
    @Option(help: "Tokens, prompt plus completion, per minute this key may use (default: the server's --rate-limit-tpm).") var tpm: Int?
    @Flag(help: "Print JSON: {\"key\", \"key_id\", \"address\"}.") var json = false

    func validate() throws {
        guard (account == nil) != (accountFile == nil) else { throw ValidationError("give --account ADDRESS or --account-file FILE") }
        if let rpm, rpm < 1 { throw ValidationError("--rpm must be positive") }
        if let tpm, tpm < 1 { throw ValidationError("--tpm must be positive") }
    }

    func run() throws {
        let registry = try ledgerCall { try data.directory.registry() }
        let address: AccountAddress
        if let accountFile {
            let bundle = try readAccount(accountFile)
            try ledgerCall { try registry.register(address: bundle.address, recipientKey: bundle.recipientKey) }
            address = bundle.address
        } else {
            address = try ledgerCall { try AccountAddress(account ?? "") }
            guard try ledgerCall({ try registry.account(address) }) != nil else {
                throw CLIError("account \(address) is not registered in \(data.directory.path); pass --account-file FILE once to register its public keys")
            }
        }
        let issued = try ledgerCall { try registry.issueKey(for: address, limits: RateLimits(requestsPerMinute: rpm, tokensPerMinute: tpm)) }
        if json {
            print(JSON.object([("key", .string(issued.secret)), ("key_id", .string(issued.info.keyID)),
                               ("address", .string(issued.info.address))]).serialized())
        } else {
            print(issued.secret)
            Diagnostics.print("\(issued.info.keyID) for \(address): shown once; only its hash is stored")
        }
    }
}

/// `verity keys list`.
struct KeysListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List issued API keys (ids, accounts, status; never the keys).")

    @OptionGroup var data: DataDirectoryOptions
    @Flag(help: "Print a JSON array.") var json = false

    func run() throws {
        let keys = try ledgerCall { try data.directory.registry().keys() }
        let formatter = ISO8601DateFormatter()
        func date(_ ms: Int64) -> String { formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000)) }
        if json {
            print(JSON.array(keys.map {
                .object([("key_id", .string($0.keyID)), ("address", .string($0.address)), ("created", .string(date($0.createdMilliseconds))),
                         ("revoked", $0.revokedMilliseconds.map { .string(date($0)) } ?? .null),
                         ("requests_per_minute", $0.limits.requestsPerMinute.map { .int($0) } ?? .null),
                         ("tokens_per_minute", $0.limits.tokensPerMinute.map { .int($0) } ?? .null)])
            }).serialized())
            return
        }
        for key in keys {
            let limits = [key.limits.requestsPerMinute.map { "\($0) req/min" }, key.limits.tokensPerMinute.map { "\($0) tok/min" }]
                .compactMap { $0 }
            print("\(key.keyID)  \(key.address)  created \(date(key.createdMilliseconds))  "
                  + (key.revokedMilliseconds.map { "revoked \(date($0))" } ?? "active") + (limits.isEmpty ? "" : "  " + limits.joined(separator: ", ")))
        }
    }
}

/// `verity keys revoke`.
struct KeysRevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke an API key by its id (from `verity keys list`).")

    @OptionGroup var data: DataDirectoryOptions
    @Argument(help: "The key id (key_…).") var keyID: String

    func run() throws {
        try ledgerCall { try data.directory.registry().revoke(keyID: keyID) }
        Diagnostics.print("revoked \(keyID)")
    }
}

/// Reads an account key bundle.
func readAccount(_ path: String) throws -> Account {
    guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read account file \(path)") }
    return try ledgerCall { try Account(bundleData: data) }
}

/// Runs a ledger call, turning a ``LedgerError`` into a one-line ``CLIError``.
func ledgerCall<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as LedgerError {
        throw CLIError(error.message + (error.cause.map { " (\($0))" } ?? ""))
    }
}

/// ``ledgerCall(_:)`` for an async body.
func ledgerCall<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let error as LedgerError {
        throw CLIError(error.message + (error.cause.map { " (\($0))" } ?? ""))
    }
}
