import Hummingbird
import HummingbirdTesting
import Testing
@testable import Server

@Suite("Operational routes")
struct HealthTests {
    @Test("/health says loading until the models are loaded, then ok")
    func health() async throws {
        try await TestServer.withApp(load: false) { server, client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body) == #"{"status":"loading"}"#)
            }
            try server.host.load()
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"status":"ok"}"#)
            }
        }
    }
}
