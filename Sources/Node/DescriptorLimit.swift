#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's limit on open file descriptors (`RLIMIT_NOFILE`), which bounds how many
/// connections a server can hold besides its databases and model files.
public enum DescriptorLimit {
    /// Raises the soft limit to the hard limit, as Go's runtime and nginx do (a server inheriting
    /// a shell's 1024 would otherwise stop accepting at about a thousand sockets), and returns
    /// the limits in effect: `(soft, hard)`; nil where they cannot be read.
    @discardableResult
    public static func raise() -> (soft: Int, hard: Int)? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return (Int(clamping: limit.rlim_cur), Int(clamping: limit.rlim_max))
    }
}
