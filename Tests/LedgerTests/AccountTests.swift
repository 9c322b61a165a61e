import Crypto
import Foundation
import Testing
@testable import Ledger

@Suite("Base58, Base58Check and account addresses")
struct AccountTests {
    /// Bitcoin Core `src/test/data/base58_encode_decode.json`.
    static let base58Vectors: [(String, String)] = [
        ("", ""), ("61", "2g"), ("626262", "a3gV"), ("636363", "aPEr"),
        ("73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2"),
        ("00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"),
        ("516b6fcd0f", "ABnLTmg"), ("bf4f89001e670274dd", "3SEo3LWLoPntC"), ("572e4794", "3EFU7m"),
        ("ecac89cad93923c02321", "EJDM8drfXA6uyA"), ("10c8511e", "Rt5zm"), ("00000000000000000000", "1111111111"),
        ("000111d38e5fc9071ffcd20b4a763cc9ae4f252bb4e48fd66a835e252ada93ff480d6dd43dc62a641155a5",
         "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"),
    ]

    @Test func base58MatchesBitcoinCoreVectors() throws {
        for (hex, text) in Self.base58Vectors {
            #expect(Base58.encode(Data(hex: hex)) == text)
            #expect(try Base58.decode(text) == Data(hex: hex))
        }
    }

    @Test func base58RejectsCharactersOutsideTheAlphabet() {
        for bad in ["0", "O", "I", "l", "+", "a b", "é"] {
            #expect(throws: LedgerError.self, "\(bad)") { try Base58.decode("2g" + bad) }
        }
    }

    /// Bitcoin addresses are Base58Check of version 0 and a hash160: the genesis block's
    /// coinbase address, and the all-zero hash160.
    @Test func base58CheckMatchesBitcoinAddresses() throws {
        let genesis = Data(hex: "0062e907b15cbf27d5425399ebf6f0fb50ebb88f18")
        #expect(Base58.checksum(genesis).hex == "c29b7d93")
        #expect(Base58.encodeCheck(genesis) == "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
        #expect(try Base58.decodeCheck("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa") == genesis)
        #expect(Base58.encodeCheck(Data(count: 21)) == "1111111111111111111114oLvT2")
        let error = try #require(throws: LedgerError.self) { try Base58.decodeCheck("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb") }
        #expect(error.code == .invalidAddress)
    }

    /// Known answer from Fixtures/make_vectors.py for the RFC 8032 §7.1 TEST 1 key.
    @Test func addressOfTheRFC8032TestKey() throws {
        let secret = try Curve25519.Signing.PrivateKey(
            rawRepresentation: Data(hex: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
        #expect(secret.publicKey.rawRepresentation.hex == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        let address = AccountAddress(publicKey: secret.publicKey)
        #expect(address.description == "3uos6eFib89i9NxbdcWc93SJk9ZLS4wExHVejaDx2sca2VYHdrd")
        #expect(try AccountAddress("3uos6eFib89i9NxbdcWc93SJk9ZLS4wExHVejaDx2sca2VYHdrd") == address)
        #expect(AccountAddress(publicKey: try .init(rawRepresentation: Data(count: 32))).description
            == "3tB2AwbkHbAUbYyexrNw2aZbkoxkuZUJfy6FytA6VMaMSYwWFBv")
    }

    @Test func addressRoundTripsForNewAccounts() throws {
        for _ in 0..<20 {
            let account = Account()
            let text = account.address.description
            #expect(text.count == 51 && text.hasPrefix("3"))
            let parsed = try AccountAddress(text)
            #expect(parsed == account.address)
            #expect(parsed.signingPublicKey.rawRepresentation == account.signingKey.publicKey.rawRepresentation)
        }
    }

    /// Every single-character substitution of an address is rejected.
    @Test func everyTypoIsCaughtByTheChecksum() throws {
        let text = Array(Account().address.description)
        let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
        for i in text.indices {
            for c in alphabet where c != text[i] {
                var typo = text
                typo[i] = c
                #expect(throws: LedgerError.self, "typo at \(i) accepted") { try AccountAddress(String(typo)) }
            }
        }
    }

    @Test func otherPayloadsAreNotAddresses() throws {
        let key = Account().signingKey.publicKey.rawRepresentation
        // Right checksum, wrong version byte or length.
        for payload in [Data([0x00]) + key, Data([0x56]) + key.dropLast(), Data([0x56]) + key + [0]] {
            let error = try #require(throws: LedgerError.self) { try AccountAddress(Base58.encodeCheck(payload)) }
            #expect(error.code == .invalidAddress)
        }
        // Solana's unchecksummed form is not accepted as an address.
        #expect(throws: LedgerError.self) { try AccountAddress(Base58.encode(key)) }
    }

    @Test func bundleRoundTripsAndChecksItsAddress() throws {
        let account = Account()
        let data = try account.bundleData()
        let loaded = try Account(bundleData: data)
        #expect(loaded.address == account.address)
        #expect(loaded.encryptionKey.rawRepresentation == account.encryptionKey.rawRepresentation)

        var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
        json["address"] = Account().address.description
        let error = try #require(throws: LedgerError.self) {
            try Account(bundleData: try JSONSerialization.data(withJSONObject: json))
        }
        #expect(error.code == .malformed)
        #expect(throws: LedgerError.self) { try Account(bundleData: Data("{}".utf8)) }
    }

    @Test func anAccountDecryptsWhatWasSealedToIt() throws {
        let account = Account()
        let record = Fixtures.record("x", sender: account)
        let envelope = try RecordEnvelope.seal(record, to: [account.recipientKey], nodeID: "n")
        #expect(try account.open(envelope) == record)
    }
}
