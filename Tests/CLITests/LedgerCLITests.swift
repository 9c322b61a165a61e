import Foundation
import Testing

/// `verity account`, `verity keys` and `verity ledger` as a user runs them, bad input included:
/// every mistake is one line on stderr and a non-zero status. (The server side is covered by
/// Tests/ServerIntegration/test_06_ledger.py.)
@Suite("verity account, keys and ledger")
struct LedgerCLITests {
    let dir: URL

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("verity-cli-ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func expectOneLineError(_ output: CLI.Output, containing text: String) {
        #expect(output.status != 0)
        #expect(output.stderr.contains(text), "stderr: \(output.stderr)")
        #expect(!output.stderr.contains("Swift/"), "a trap, not an error: \(output.stderr)")
    }

    @Test func accountsAndKeysRoundTrip() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let created = try CLI.run(["account", "create", "--out", path("a.json")])
        #expect(created.status == 0, "\(created.stderr)")
        let address = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(address.count == 51 && address.hasPrefix("3"))
        let mode = try FileManager.default.attributesOfItem(atPath: path("a.json"))[.posixPermissions] as? Int
        #expect(mode == 0o600)
        expectOneLineError(try CLI.run(["account", "create", "--out", path("a.json")]), containing: "already exists")

        let show = try CLI.run(["account", "show", path("a.json"), "--json"])
        #expect(show.stdout.contains(address))

        // An address not registered yet, and one with a typo.
        expectOneLineError(try CLI.run(["keys", "create", "--data-dir", path("data"), "--account", address]), containing: "not registered")
        let typo = String(address.dropLast()) + (address.last == "a" ? "b" : "a")
        expectOneLineError(try CLI.run(["keys", "create", "--data-dir", path("data"), "--account", typo]), containing: "checksum")

        let issued = try CLI.run(["keys", "create", "--data-dir", path("data"), "--account-file", path("a.json")])
        #expect(issued.status == 0, "\(issued.stderr)")
        #expect(issued.stdout.hasPrefix("vk_"))
        let again = try CLI.run(["keys", "create", "--data-dir", path("data"), "--account", address, "--json"])
        #expect(again.status == 0 && again.stdout.contains(address))

        let list = try CLI.run(["keys", "list", "--data-dir", path("data")])
        let ids = list.stdout.split(separator: "\n").map { String($0.prefix { $0 != " " }) }
        #expect(ids.count == 2 && ids.allSatisfy { $0.hasPrefix("key_") })
        #expect(!list.stdout.contains(issued.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "keys list must not show keys")
        #expect(try CLI.run(["keys", "revoke", "--data-dir", path("data"), ids[0]]).status == 0)
        #expect(try CLI.run(["keys", "list", "--data-dir", path("data")]).stdout.contains("revoked"))
        expectOneLineError(try CLI.run(["keys", "revoke", "--data-dir", path("data"), ids[0]]), containing: "no active API key")
    }

    @Test func ledgerCommandsRefuseBadInput() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        expectOneLineError(try CLI.run(["ledger", "verify", "--data-dir", path("nothing")]), containing: "no node key")
        try Data("{\"recordID\": 1}".utf8).write(to: URL(fileURLWithPath: path("receipt.json")))
        expectOneLineError(try CLI.run(["ledger", "verify-receipt", path("receipt.json"), "--node-key", "x+00000000+AAAA"]),
                           containing: "not a ledger receipt")
        expectOneLineError(try CLI.run(["ledger", "verify-receipt", path("missing.json"), "--node-key", "k"]), containing: "cannot read")
        #expect(try CLI.run(["account", "create", "--out", path("a.json")]).status == 0)
        expectOneLineError(try CLI.run(["ledger", "decrypt", "chatcmpl-x", "--account", path("a.json"), "--data-dir", path("nothing")]),
                           containing: "no ledger database")
        expectOneLineError(try CLI.run(["ledger", "decrypt", "chatcmpl-x", "--account", path("receipt.json"), "--data-dir", path("nothing")]),
                           containing: "not an account key bundle")
        expectOneLineError(try CLI.run(["ledger", "verify", "--data-dir", path("d"), "--url", "http://127.0.0.1:1"]), containing: "not both")
        expectOneLineError(try CLI.run(["ledger", "verify", "--url", "http://127.0.0.1:1"]), containing: "cannot reach")
    }
}
