import Testing
@testable import Node

@Suite("Hardware facts for adverts")
struct HardwareDetectionTests {
    /// `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits` prints one
    /// `NAME, MiB` line per GPU.
    @Test func nvidiaSMIsListIsParsed() throws {
        let eight = String(repeating: "NVIDIA H100 80GB HBM3, 81559\n", count: 8)
        let parsed = try #require(WorkerInfo.parseGPUs(eight))
        #expect(parsed.name == "NVIDIA H100 80GB HBM3" && parsed.count == 8 && parsed.memoryMiB == 81_559)
        let mixed = try #require(WorkerInfo.parseGPUs("NVIDIA A100-SXM4-40GB, 40960\r\nNVIDIA A100-SXM4-80GB, 81920\n"))
        #expect(mixed.name == "NVIDIA A100-SXM4-40GB + NVIDIA A100-SXM4-80GB" && mixed.count == 2 && mixed.memoryMiB == 40_960)
        #expect(WorkerInfo.parseGPUs("") == nil)
        #expect(WorkerInfo.parseGPUs("No devices were found\n") == nil)
    }

    /// Whatever this machine has, the result makes a valid advert.
    @Test func detectedHardwareValidatesInAnAdvert() throws {
        let key = WorkerKey()
        var advert = FleetHarness.advert(key)
        advert.hardware = WorkerInfo.detectHardware()
        #expect(throws: Never.self) { try advert.validate() }
        #expect(advert.hardware.gpu == "none" ? advert.hardware.gpuCount == 0 : advert.hardware.gpuCount > 0)
    }
}
