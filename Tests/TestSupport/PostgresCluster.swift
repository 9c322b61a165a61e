import Foundation

/// A throwaway PostgreSQL server for tests: Debian's server binaries (`apt-get install
/// postgresql`, which Tests/ServerIntegration/install-deps does), a new cluster in a temporary
/// directory, trust authentication on a loopback port. As root, it runs as the `postgres` user the
/// package creates (PostgreSQL refuses root). One per test process, started on first use and
/// stopped at exit; each test takes a database of its own (``makeDatabase()``).
public final class PostgresCluster: @unchecked Sendable {
    public let port: Int
    let directory: String
    let binaries: String
    let asUser: [String]
    private let lock = NSLock()
    private var databases = 0

    /// The process's cluster.
    public static func shared() throws -> PostgresCluster {
        try sharedLock.withLock {
            if let cluster = sharedCluster { return cluster }
            let cluster = try PostgresCluster()
            sharedCluster = cluster
            atexit { PostgresCluster.sharedCluster?.stop() }
            return cluster
        }
    }

    nonisolated(unsafe) private static var sharedCluster: PostgresCluster?
    private static let sharedLock = NSLock()

    init() throws {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.filter({ FileManager.default.fileExists(atPath: "/usr/lib/postgresql/\($0)/bin/initdb") })
            .sorted(by: { (Int($0) ?? 0) < (Int($1) ?? 0) }).last else {
            throw Failure("PostgreSQL's server binaries are not installed (apt-get install postgresql; Tests/ServerIntegration/install-deps does it)")
        }
        binaries = "/usr/lib/postgresql/\(version)/bin"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("verity-pg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0 {
            asUser = ["runuser", "-u", "postgres", "--"]
            _ = try Self.run(["chown", "postgres:postgres", directory])
        } else {
            asUser = []
        }
        port = Self.freePort()
        _ = try Self.run(asUser + ["\(binaries)/initdb", "-D", directory + "/data", "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        _ = try Self.run(asUser + ["\(binaries)/pg_ctl", "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60",
                                   "-o", "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1", "start"])
    }

    /// A new, empty database; its `postgres://` URL.
    public func makeDatabase() throws -> String {
        let name = lock.withLock {
            databases += 1
            return "test_\(getpid())_\(databases)"
        }
        _ = try Self.run(asUser + ["\(binaries)/psql", "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-d", "postgres",
                                   "-c", "CREATE DATABASE \(name)"])
        return "postgres://postgres@127.0.0.1:\(port)/\(name)"
    }

    func stop() {
        _ = try? Self.run(asUser + ["\(binaries)/pg_ctl", "-D", directory + "/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Runs a command through the shell, its output to a file (not a pipe: the server pg_ctl
    /// starts would inherit the pipe and hold it open). Not Foundation's `Process`, whose wait
    /// hangs in an `atexit` handler.
    private static func run(_ arguments: [String]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("verity-pg-out-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let status = system(quoted + " >'\(path)' 2>&1 </dev/null")
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw Failure("\(arguments.joined(separator: " ")) exited with status \(status): \(text)")
        }
        return text
    }

    private static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
