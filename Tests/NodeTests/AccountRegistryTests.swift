import Foundation
import Testing
import Ledger
@testable import Node

@Suite("Account registry: accounts and hashed API keys")
struct AccountRegistryTests {
    let alice = Account()
    let bob = Account()

    func withRegistry(_ body: (AccountRegistry, String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("registry-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("accounts.sqlite").path
        try body(try AccountRegistry(path: path), path)
    }

    @Test func aKeyResolvesToItsAccountUntilRevoked() throws {
        try withRegistry { registry, _ in
            try registry.register(address: alice.address, recipientKey: alice.recipientKey)
            try registry.register(address: bob.address, recipientKey: bob.recipientKey)
            #expect(try !registry.hasActiveKeys())
            let a = try registry.issueKey(for: alice.address)
            let b = try registry.issueKey(for: bob.address)
            #expect(a.secret.hasPrefix("vk_") && a.secret != b.secret)
            #expect(try registry.hasActiveKeys())
            #expect(try registry.account(forKey: a.secret)?.address == alice.address)
            #expect(try registry.account(forKey: a.secret)?.recipientKey == alice.recipientKey)
            #expect(try registry.account(forKey: b.secret)?.address == bob.address)
            #expect(try registry.account(forKey: a.secret + "x") == nil)
            #expect(try registry.account(forKey: "") == nil)

            try registry.revoke(keyID: a.info.keyID)
            #expect(try registry.account(forKey: a.secret) == nil)
            #expect(try registry.account(forKey: b.secret) != nil)
            let listed = try registry.keys()
            #expect(listed.map(\.keyID) .sorted() == [a.info.keyID, b.info.keyID].sorted())
            #expect(listed.first { $0.keyID == a.info.keyID }?.revokedMilliseconds != nil)
            #expect(throws: LedgerError.self) { try registry.revoke(keyID: a.info.keyID) }
            #expect(throws: LedgerError.self) { try registry.revoke(keyID: "key_000000000000") }
        }
    }

    @Test func anAccountsRoutingDefaultsComeWithItsKey() throws {
        try withRegistry { registry, _ in
            try registry.register(address: alice.address, recipientKey: alice.recipientKey)
            let key = try registry.issueKey(for: alice.address)
            #expect(try registry.account(forKey: key.secret)?.routing == nil)
            let routing = RoutingConstraints(maxPricePerHourMicros: 1_250_000, providers: ["acme"], gpus: ["H100"], regions: nil)
            try registry.setRouting(routing, for: alice.address)
            #expect(try registry.account(forKey: key.secret)?.routing == routing)
            #expect(try registry.account(alice.address)?.routing == routing)
            #expect(try JSONDecoder().decode(RoutingConstraints.self, from: Data(routing.json.serialized().utf8)) == routing)
            try registry.setRouting(nil, for: alice.address)
            #expect(try registry.account(forKey: key.secret)?.routing == nil)
            #expect(throws: LedgerError.self) { try registry.setRouting(routing, for: bob.address) }
        }
    }

    @Test func onlyTheKeysHashIsStored() throws {
        try withRegistry { registry, path in
            try registry.register(address: alice.address, recipientKey: alice.recipientKey)
            let issued = try registry.issueKey(for: alice.address)
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
            for file in try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil) {
                let bytes = try Data(contentsOf: file)
                #expect(bytes.range(of: Data(issued.secret.utf8)) == nil, "\(file.lastPathComponent) holds the key")
                #expect(bytes.range(of: Data(issued.secret.dropFirst(3).utf8)) == nil)
            }
        }
    }

    @Test func unknownAccountsAndConflictingKeysAreRefused() throws {
        try withRegistry { registry, _ in
            let error = try #require(throws: LedgerError.self) { try registry.issueKey(for: alice.address) }
            #expect(error.code == .notFound)
            try registry.register(address: alice.address, recipientKey: alice.recipientKey)
            try registry.register(address: alice.address, recipientKey: alice.recipientKey)
            let conflict = try #require(throws: LedgerError.self) {
                try registry.register(address: alice.address, recipientKey: bob.recipientKey)
            }
            #expect(conflict.code == .invalidValue)
            #expect(try registry.account(alice.address)?.recipientKey == alice.recipientKey)
            #expect(try registry.account(bob.address) == nil)
        }
    }

    @Test func keysSurviveReopening() throws {
        try withRegistry { registry, path in
            try registry.register(address: alice.address, recipientKey: alice.recipientKey)
            let issued = try registry.issueKey(for: alice.address)
            let reopened = try AccountRegistry(path: path)
            #expect(try reopened.account(forKey: issued.secret)?.address == alice.address)
        }
    }

    @Test func recipientKeysParseFromTheirRawBytes() throws {
        let raw = alice.recipientKey.rawRepresentation
        #expect(try RecipientKey(rawRepresentation: raw) == alice.recipientKey)
        #expect(throws: LedgerError.self) { try RecipientKey(rawRepresentation: raw.dropLast()) }
    }

    @Test func aKeyKeepsItsRateLimits() throws {
        try withRegistry { registry, _ in
            try registry.register(address: alice.address, recipientKey: alice.recipientKey)
            let limited = try registry.issueKey(for: alice.address, limits: RateLimits(requestsPerMinute: 7, tokensPerMinute: 900))
            let plain = try registry.issueKey(for: alice.address)
            #expect(try registry.key(limited.secret)?.info.limits == RateLimits(requestsPerMinute: 7, tokensPerMinute: 900))
            #expect(try registry.key(plain.secret)?.info.limits == RateLimits())
            #expect(try registry.keys().map(\.limits) == [RateLimits(requestsPerMinute: 7, tokensPerMinute: 900), RateLimits()]
                    || registry.keys().map(\.limits) == [RateLimits(), RateLimits(requestsPerMinute: 7, tokensPerMinute: 900)])
        }
    }
}
