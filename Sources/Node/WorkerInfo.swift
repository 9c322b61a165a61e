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

    /// The machine's GPUs as `nvidia-smi` lists them: the name (several names joined with " + "),
    /// how many, and the memory of the first in MiB; nil without `nvidia-smi` or a GPU.
    public static func detectGPUs() -> (name: String, count: Int, memoryMiB: Int)? {
        guard let text = run("nvidia-smi", ["--query-gpu=name,memory.total", "--format=csv,noheader,nounits"]) else { return nil }
        let rows = text.split(whereSeparator: \.isNewline).map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            .filter { $0.count >= 2 && !$0[0].isEmpty }
        guard let first = rows.first else { return nil }
        var names: [String] = []
        for row in rows where !names.contains(row[0]) { names.append(row[0]) }
        return (names.joined(separator: " + "), rows.count, Int(first[1]) ?? 0)
    }

    /// The CPU's model name.
    public static func cpuModel() -> String? {
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
