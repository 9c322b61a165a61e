import AsyncHTTPClient
import NIOCore

/// Reads another server's response body in a task of its own, so that the request can be
/// cancelled the moment its client goes (the connection closes, which the other server sees as a
/// client that left), not only at the next write that fails. Stopping the iteration cancels it too.
struct BodyPump: Sendable {
    let stream: AsyncThrowingStream<ByteBuffer, any Error>
    private let task: Task<Void, Never>
    private let closure: ConnectionClosure?
    private let watch: Int?

    init(_ body: HTTPClientResponse.Body, closure: ConnectionClosure?) {
        let (stream, continuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        let task = Task {
            do {
                for try await buffer in body { continuation.yield(buffer) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        self.stream = stream
        self.task = task
        self.closure = closure
        watch = closure?.onClose {
            // Finish first: the cancelled read would otherwise end the stream with its own
            // CancellationError, and the departure would pass for a worker that broke off.
            continuation.finish(throwing: ClientGone())
            task.cancel()
        }
    }

    /// Stops reading (and so cancels the request) and forgets the client's connection.
    func cancel() {
        task.cancel()
        closure?.cancel(watch)
    }

    /// Stops watching the client's connection (the body was read to its end).
    func done() { closure?.cancel(watch) }
}

/// The client of a relayed answer went away.
struct ClientGone: Error, CustomStringConvertible {
    var description: String { "the client went away" }
}
