import Foundation
import Testing
@testable import Ledger

/// Writes the version-1 envelope fixture (Fixtures/envelope-v1.*) with the code that wrote
/// version 1. Run once, with `VERITY_WRITE_V1_FIXTURE=1 swift test --filter V1FixtureGenerator`;
/// the fixture then stays as committed, so later code is tested against bytes it did not write.
@Suite("v1 envelope fixture generator")
struct V1FixtureGenerator {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VERITY_WRITE_V1_FIXTURE"] != nil))
    func writeFixture() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let sender = Account(), auditor = Account()
        let envelope = try RecordEnvelope.seal(Fixtures.fullRecord, to: [sender.recipientKey, auditor.recipientKey], nodeID: "node-1")
        try envelope.canonicalBytes().write(to: dir.appendingPathComponent("envelope-v1.bin"))
        try sender.bundleData().write(to: dir.appendingPathComponent("envelope-v1-sender.json"))
        try auditor.bundleData().write(to: dir.appendingPathComponent("envelope-v1-auditor.json"))
    }
}
