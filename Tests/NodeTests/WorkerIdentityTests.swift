import Crypto
import Foundation
import Ledger
import Testing
@testable import Node

@Suite("Worker identity: ids and key files")
struct WorkerIdentityTests {
    /// RFC 8032 §7.1 TEST 1; the id is from `Tests/LedgerTests/Fixtures/make_vectors.py`.
    static let rfc8032Secret = Data(hex: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    static let rfc8032WorkerID = "4agkdHEMddgEqnahmCvbDTRo4RshS9nkh4uocZysuykKtxy8FeX"

    @Test func theIdOfAKnownKeyMatchesTheKnownAnswer() throws {
        let key = WorkerKey(privateKey: try .init(rawRepresentation: Self.rfc8032Secret))
        #expect(key.id.description == Self.rfc8032WorkerID)
        #expect(try WorkerID(Self.rfc8032WorkerID) == key.id)
        #expect(key.id.publicKey == Data(hex: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))
    }

    @Test func idsAre51CharactersStartingWith4AndRoundTrip() throws {
        for _ in 0..<50 {
            let id = WorkerKey().id
            #expect(id.description.count == 51 && id.description.hasPrefix("4"), "\(id)")
            #expect(try WorkerID(id.description) == id)
        }
    }

    @Test func anAccountAddressIsNotAWorkerID() throws {
        let address = Account().address.description
        let error = try #require(throws: FleetError.self) { try WorkerID(address) }
        #expect(error.code == .malformed)
        #expect(error.message.contains("account address"))
        // And the other way round.
        #expect(throws: LedgerError.self) { try AccountAddress(Self.rfc8032WorkerID) }
    }

    @Test(arguments: ["", "4", "not base58 0OIl", String(rfc8032WorkerID.dropLast()), rfc8032WorkerID + "1",
                      String(rfc8032WorkerID.dropLast()) + (rfc8032WorkerID.hasSuffix("X") ? "Y" : "X")])
    func mistypedIdsAreRefused(text: String) {
        #expect(throws: FleetError.self) { try WorkerID(text) }
    }

    @Test func idsCodeAsJSONStrings() throws {
        let id = try WorkerID(Self.rfc8032WorkerID)
        let data = try JSONEncoder().encode([id])
        #expect(String(decoding: data, as: UTF8.self) == "[\"\(Self.rfc8032WorkerID)\"]")
        #expect(try JSONDecoder().decode([WorkerID].self, from: data) == [id])
    }

    @Test func aSignatureVerifiesOnlyForItsBytesAndKey() throws {
        let key = WorkerKey(), other = WorkerKey()
        let data = Data("hello".utf8)
        let signature = try key.signature(for: data)
        #expect(key.id.isValidSignature(signature, for: data))
        #expect(!key.id.isValidSignature(signature, for: Data("hellp".utf8)))
        #expect(!other.id.isValidSignature(signature, for: data))
    }

    @Test func theKeyFileRoundTripsAndNamesItsWorker() throws {
        let key = WorkerKey()
        let data = key.fileData()
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"worker\" : \"\(key.id)\""))
        #expect(text.contains("verity-worker-key-v1"))
        #expect(try WorkerKey(fileData: data).id == key.id)
    }

    @Test func aKeyFileNamingAnotherWorkerIsRefused() throws {
        let key = WorkerKey(), other = WorkerKey()
        let forged = String(decoding: key.fileData(), as: UTF8.self).replacingOccurrences(of: key.id.description, with: other.id.description)
        let error = try #require(throws: FleetError.self) { try WorkerKey(fileData: Data(forged.utf8)) }
        #expect(error.code == .malformed)
        #expect(throws: FleetError.self) { try WorkerKey(fileData: Data("{}".utf8)) }
    }

    @Test func theDataDirectoryCreatesTheKeyOnceOwnerOnly() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("worker-key-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let directory = DataDirectory(path: path)
        let missing = try #require(throws: FleetError.self) { try directory.workerKey(create: false) }
        #expect(missing.code == .notFound)
        let created = try directory.workerKey(create: true)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.workerKeyPath)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(try directory.workerKey(create: true).id == created.id)
        #expect(try directory.workerKey(create: false).id == created.id)
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: directory.workerKeyPath))
        let bad = try #require(throws: FleetError.self) { try directory.workerKey(create: true) }
        #expect(bad.code == .malformed)
    }
}

extension Data {
    /// Decodes hex (test vectors only; traps on bad input).
    init(hex: String) {
        var bytes: [UInt8] = []
        var chars = hex.makeIterator()
        while let hi = chars.next(), let lo = chars.next() { bytes.append(UInt8(String([hi, lo]), radix: 16)!) }
        self.init(bytes)
    }
}
