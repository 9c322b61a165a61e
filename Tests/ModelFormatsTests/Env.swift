#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func getenvString(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    return String(cString: p)
}

func tempPath(_ name: String) -> String {
    let dir = getenvString("TMPDIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    return "\(dir)/verity-mf-\(getpid())-\(name)"
}
