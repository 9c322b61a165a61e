import Foundation
import Node
import Testing
import TestSupport
@testable import Server

@Suite("A worker's TLS identity and the gateway's pin")
struct WorkerTLSTests {
    let key = WorkerKey()

    func advert(certificate: [UInt8]?, pin: Data?) -> Advert {
        Advert(worker: key.id, endpoint: "https://127.0.0.1:8443", tlsSPKISHA256: pin, tlsCertificate: certificate.map { Data($0) },
               models: [Advert.Model(id: "m", source: "file:m", digest: "sha256:" + String(repeating: "a", count: 64), contextLength: 8)],
               hardware: Advert.Hardware(gpu: "none", gpuCount: 0, gpuMemoryMiB: 0, cpu: "cpu"), provider: "p", pricePerHourMicros: 1,
               region: "r", capacity: 1, version: "v", issuedMilliseconds: 1, expiresMilliseconds: 2)
    }

    @Test("made once, owner-only, kept across restarts; its pin is its key's; a lying pin is refused")
    func identity() throws {
        let directory = DataDirectory(path: TestPaths.temporaryDirectory("verity-tls").path)
        let made = try WorkerTLSIdentity.loadOrCreate(in: directory, workerID: key.id, hosts: ["127.0.0.1", "gpu1.example"])
        let path = directory.path + "/" + WorkerTLSIdentity.fileName
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let again = try WorkerTLSIdentity.loadOrCreate(in: directory, workerID: key.id, hosts: [])
        #expect(again.certificateDER == made.certificateDER && again.spkiSHA256 == made.spkiSHA256)
        #expect(try WorkerTLSIdentity.spkiSHA256(der: made.certificateDER) == made.spkiSHA256)
        _ = try made.serverConfiguration()
        _ = try PinnedWorkerTLS.pinned(der: made.certificateDER)

        try PinnedWorkerTLS.check(advert(certificate: made.certificateDER, pin: made.spkiSHA256))
        #expect(throws: FleetError.self) { try PinnedWorkerTLS.check(advert(certificate: made.certificateDER, pin: Data(repeating: 7, count: 32))) }
        #expect(throws: FleetError.self) { try PinnedWorkerTLS.check(advert(certificate: [1, 2, 3], pin: made.spkiSHA256)) }

        // One that is about to end is renewed; a corrupt file is an error that names it, not replaced.
        let soon = try WorkerTLSIdentity.loadOrCreate(in: directory, workerID: key.id, hosts: [],
                                                       now: Date().addingTimeInterval(WorkerTLSIdentity.lifetime - 86_400))
        #expect(soon.certificateDER != made.certificateDER)
        try Data("not pem".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: TLSIdentityError.self) { try WorkerTLSIdentity.loadOrCreate(in: directory, workerID: self.key.id, hosts: []) }
    }
}
