import Foundation
import Hummingbird
import HummingbirdTesting
import Ledger
import Testing
@testable import Node
@testable import Server

@Suite("The tiled log's routes, in process")
struct TiledLogRouteTests {
    /// A record whose envelope is over 65,535 bytes: a tlog-tiles entry bundle cannot hold it (its
    /// lengths are 16-bit), so the bundle is a 404 that names the JSON page holding it; the hash
    /// tile is served as ever.
    @Test func aBundleWithAnOversizeEntryNamesThePageThatHoldsIt() async throws {
        try await TestServer.withApp(load: false) { server, client in
            let alice = Account()
            let record = LedgerRecord(
                recordID: "big-record", timestampMilliseconds: 1_700_000_000_000, gpu: "none", gpuProvider: "none", gpuPricePerHourMicros: 0,
                modelID: "m", modelDigest: String(repeating: "0", count: 64), parameters: ModelParameters(),
                prompt: String(repeating: "a long prompt ", count: 6000), response: "ok", senderAddress: "anonymous", finishReason: "stop")
            let envelope = try RecordEnvelope.seal(record, to: [alice.recipientKey], nodeID: "n")
            #expect(try envelope.canonicalBytes().count > 65_535)
            _ = try await server.ledger.node.append(envelope, owner: nil)
            _ = try await server.ledger.node.seal()
            try await client.execute(uri: "/v1/ledger/log/tile/entries/000.p/1", method: .get) { response in
                #expect(response.status == .notFound)
                let error = try ErrorBody(response.body)
                #expect(error.code == "entry_too_large")
                #expect(error.message.contains("/v1/ledger/entries?start=0&limit=1"))
            }
            let leafHash = try envelope.leafHash()
            try await client.execute(uri: "/v1/ledger/log/tile/0/000.p/1", method: .get) { response in
                #expect(response.status == .ok)
                #expect(Data(buffer: response.body) == leafHash)
            }
            try await client.execute(uri: "/v1/ledger/entries?start=0&limit=1", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("big-record"))
            }
        }
    }
}
