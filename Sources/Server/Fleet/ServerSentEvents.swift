import NIOCore

/// Reads a server-sent-events stream as it arrives: `data:` payloads, one per event, in order.
/// Bytes may arrive split anywhere, even inside a UTF-8 character; comments and other fields
/// (`event:`, `id:`) are skipped.
struct ServerSentEventReader {
    private var buffer: [UInt8] = []
    private var data: [UInt8]?

    /// The payloads of the events completed by `bytes`.
    mutating func feed(_ bytes: ByteBuffer) -> [String] {
        buffer.append(contentsOf: bytes.readableBytesView)
        var events: [String] = []
        while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
            var line = buffer[..<newline]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            buffer.removeSubrange(...newline)
            if line.isEmpty {
                // A blank line ends the event.
                if let payload = data { events.append(String(decoding: payload, as: UTF8.self)) }
                data = nil
            } else if line.starts(with: Array("data:".utf8)) {
                var value = line.dropFirst(5)
                if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
                if data == nil { data = Array(value) } else { data! += [UInt8(ascii: "\n")] + value }
            }
        }
        return events
    }
}
