import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reports a pull as ``HubProgressStyle`` says: a bar on a terminal (bytes, rate, ETA, redrawn at most
/// ten times a second), one line per file otherwise, or JSON events on stdout. Progress never goes to
/// stdout except in JSON mode. Safe to call from the concurrent downloads.
final class HubProgress: Sendable {
    enum Mode { case bar, lines, json, silent }

    private struct State {
        var repo = ""
        var totalBytes: Int64 = 0
        var doneBytes: Int64 = 0
        var sessionBytes: Int64 = 0
        var files = 0
        var finishedFiles = 0
        var start = DispatchTime.now().uptimeNanoseconds
        var lastDraw: UInt64 = 0
        var barShown = false
    }

    let mode: Mode
    private let state = Mutex(State())

    init(_ style: HubProgressStyle) {
        switch style {
        case .automatic: mode = isatty(STDERR_FILENO) == 1 ? .bar : .lines
        case .lines: mode = .lines
        case .json: mode = .json
        case .silent: mode = .silent
        }
    }

    /// The downloads begin: `files` to fetch, `bytes` in all (known sizes).
    func begin(repo: String, revision: String, commit: String, files: Int, bytes: Int64) {
        state.withLock { s in
            if s.files == 0 { s.start = DispatchTime.now().uptimeNanoseconds }
            s.repo = repo
            s.files += files
            s.totalBytes += bytes
        }
        switch mode {
        case .json:
            emit(["event": "start", "repo": repo, "revision": revision, "commit": commit, "files": files, "bytes": bytes])
        case .lines, .bar:
            if files > 0 { line("\(repo)@\(revision) (\(commit.prefix(12))): downloading \(files) file\(files == 1 ? "" : "s"), \(Self.size(bytes))") }
        case .silent: break
        }
    }

    /// A file already in the cache.
    func cached(_ path: String, bytes: Int64?) {
        if mode == .json { emit(["event": "file", "path": path, "bytes": bytes ?? 0, "total": bytes ?? 0, "cached": true]) }
    }

    /// `delta` more bytes of a file arrived (negative after a restart from zero).
    func advance(_ delta: Int64) {
        let draw: String? = state.withLock { s in
            s.doneBytes += delta
            s.sessionBytes += delta
            guard mode == .bar else { return nil }
            let now = DispatchTime.now().uptimeNanoseconds
            guard now - s.lastDraw > 100_000_000 else { return nil }
            s.lastDraw = now
            s.barShown = true
            return Self.bar(s, now: now)
        }
        if let draw { write(stderr: "\r\u{1B}[2K" + draw) }
    }

    /// Bytes already on disk from an interrupted download count as done (not toward the rate).
    func resumed(_ bytes: Int64) {
        state.withLock { s in s.doneBytes += bytes }
    }

    /// A file is in `blobs/` and linked.
    func finished(_ path: String, bytes: Int64, seconds: Double) {
        let (bar, wasShown): (String?, Bool) = state.withLock { s in
            s.finishedFiles += 1
            return mode == .bar ? (Self.bar(s, now: DispatchTime.now().uptimeNanoseconds), s.barShown) : (nil, false)
        }
        switch mode {
        case .json: emit(["event": "file", "path": path, "bytes": bytes, "total": bytes, "seconds": (seconds * 1000).rounded() / 1000])
        case .lines: line("\(path) \(Self.size(bytes)) in \(String(format: "%.1f", seconds))s")
        case .bar:
            write(stderr: (wasShown ? "\r\u{1B}[2K" : "") + "  \(path) \(Self.size(bytes)) in \(String(format: "%.1f", seconds))s\n" + (bar ?? ""))
            state.withLock { $0.barShown = true }
        case .silent: break
        }
    }

    /// A warning or notice for the user (stderr).
    func note(_ message: String) {
        guard mode != .silent else { return }
        line(message)
    }

    /// The pull succeeded.
    func done(_ snapshot: HubSnapshot) {
        switch mode {
        case .json: emit(["event": "done", "repo": snapshot.repo, "commit": snapshot.commit, "directory": snapshot.directory,
                          "path": snapshot.primaryPath])
        case .bar:
            let shown = state.withLock { s in defer { s.barShown = false }; return s.barShown }
            if shown { write(stderr: "\r\u{1B}[2K") }
        default: break
        }
    }

    /// Ends a bar left on screen by a failure.
    func failed() {
        guard mode == .bar else { return }
        let shown = state.withLock { s in defer { s.barShown = false }; return s.barShown }
        if shown { write(stderr: "\n") }
    }

    private func line(_ text: String) {
        let shown = mode == .bar ? state.withLock { s in defer { s.barShown = false }; return s.barShown } : false
        write(stderr: (shown ? "\r\u{1B}[2K" : "") + text + "\n")
    }

    private func emit(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        state.withLock { _ in FileHandle.standardOutput.write(data + Data("\n".utf8)) }
    }

    private func write(stderr text: String) {
        state.withLock { _ in FileHandle.standardError.write(Data(text.utf8)) }
    }

    private static func bar(_ s: State, now: UInt64) -> String {
        let elapsed = max(Double(now - s.start) / 1e9, 0.001)
        let rate = Double(s.sessionBytes) / elapsed
        let fraction = s.totalBytes > 0 ? min(1, Double(s.doneBytes) / Double(s.totalBytes)) : 0
        let width = 24
        let filled = Int(fraction * Double(width))
        let remaining = Double(max(0, s.totalBytes - s.doneBytes))
        let eta = rate > 0 && elapsed >= 1 ? Self.duration(remaining / rate) : "--:--"
        return "\(s.repo) \(String(format: "%3d", Int(fraction * 100)))% [" + String(repeating: "#", count: filled)
            + String(repeating: "-", count: width - filled) + "] \(size(s.doneBytes)) / \(size(s.totalBytes))  \(size(Int64(rate)))/s  ETA \(eta)  (\(s.finishedFiles)/\(s.files) files)"
    }

    static func size(_ bytes: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds < 360_000 else { return "--:--" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
