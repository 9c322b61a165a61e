/// How ``HubClient`` reports a download.
public enum HubProgressStyle: Sendable, Equatable {
    /// A redrawn bar on stderr when it is a terminal, else ``lines``.
    case automatic
    /// One line per finished file on stderr (name, size, seconds).
    case lines
    /// One JSON object per line on stdout: `{"event":"start","repo","revision","commit","files","bytes"}` before each
    /// batch of downloads (a safetensors repo has two: the small files, then the weights),
    /// `{"event":"file","path","bytes","total","seconds"}` per downloaded file (`"cached":true` for one already there),
    /// and finally `{"event":"done","repo","commit","directory","path"}`.
    case json
    /// Nothing.
    case silent
}
