import Foundation

/// The hardware facts every ledger record carries: the GPU that served it, who rents it out, and
/// its price. Detected once at start; flags override.
public struct WorkerInfo: Sendable, Equatable {
    /// The GPU's name (`nvidia-smi`'s), or the CPU model when there is no GPU.
    public var gpu: String
    /// Who rents the GPU out (`--provider`), "none" by default.
    public var provider: String
    /// Price per hour in millionths of ``currency`` (`--price-per-hour` 1.99 is 1_990_000).
    public var pricePerHourMicros: Int64
    public var currency: String

    public init(gpu: String, provider: String = "none", pricePerHourMicros: Int64 = 0, currency: String = "USD") {
        self.gpu = gpu
        self.provider = provider
        self.pricePerHourMicros = pricePerHourMicros
        self.currency = currency
    }

    /// The GPUs `nvidia-smi` lists (joined with " + " when there are several), else the CPU model
    /// from `/proc/cpuinfo` (or `sysctl` on macOS), else "unknown".
    public static func detectGPU() -> String {
        if let gpus = run("nvidia-smi", ["--query-gpu=name", "--format=csv,noheader"]) {
            let names = gpus.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if !names.isEmpty { return names.joined(separator: " + ") }
        }
        return cpuModel() ?? "unknown"
    }

    /// The machine as an advert describes it: the GPUs `nvidia-smi` lists (the name, or the
    /// distinct names joined with " + "; how many; the smallest one's memory in MiB), else GPU
    /// "none" with count and memory 0; and the CPU model ("unknown" if it cannot be read).
    public static func detectHardware() -> Advert.Hardware {
        let cpu = cpuModel() ?? "unknown"
        guard let csv = run("nvidia-smi", ["--query-gpu=name,memory.total", "--format=csv,noheader,nounits"]),
              let gpus = parseGPUs(csv) else {
            return Advert.Hardware(gpu: "none", gpuCount: 0, gpuMemoryMiB: 0, cpu: cpu)
        }
        return Advert.Hardware(gpu: gpus.name, gpuCount: gpus.count, gpuMemoryMiB: gpus.memoryMiB, cpu: cpu)
    }

    /// Parses `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits` (one
    /// `NAME, MiB` line per GPU); nil if it lists no GPU.
    static func parseGPUs(_ csv: String) -> (name: String, count: Int, memoryMiB: Int)? {
        var names: [String] = [], memory: [Int] = []
        for line in csv.split(whereSeparator: \.isNewline) {
            guard let comma = line.lastIndex(of: ",") else { continue }
            let name = line[..<comma].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { continue }
            if !names.contains(name) { names.append(name) }
            memory.append(Int(line[line.index(after: comma)...].trimmingCharacters(in: .whitespaces)) ?? 0)
        }
        guard !memory.isEmpty else { return nil }
        return (names.joined(separator: " + "), memory.count, memory.min() ?? 0)
    }

    /// The CPU's model name.
    static func cpuModel() -> String? {
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            for line in info.split(separator: "\n") where line.hasPrefix("model name") || line.hasPrefix("Model") {
                if let colon = line.firstIndex(of: ":") {
                    let name = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    if !name.isEmpty { return name }
                }
            }
        }
        return run("sysctl", ["-n", "machdep.cpu.brand_string"])?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs a tool found on PATH; its stdout, or nil if it is missing or fails.
    private static func run(_ tool: String, _ arguments: [String]) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
