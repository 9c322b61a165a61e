import Hummingbird
import NIOCore
import Synchronization

/// Notices a client that closes its connection (or half-closes it: a client that sends its
/// request and then stops sending is gone too, as in Go's net/http) while its request is being
/// answered, so that a non-streaming completion is cancelled within a step instead of running
/// to its end for nobody. Installed in every connection's pipeline after HTTP decoding.
final class ClientClosureHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    let closure = ConnectionClosure()

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { closure.close() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closure.close()
        context.fireChannelInactive()
    }
}

/// Whether a connection's client has gone, and who wants to know.
final class ConnectionClosure: Sendable {
    private struct State {
        var closed = false
        var next = 0
        var callbacks: [Int: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    func close() {
        let callbacks = state.withLock { s -> [@Sendable () -> Void] in
            guard !s.closed else { return [] }
            s.closed = true
            defer { s.callbacks = [:] }
            return Array(s.callbacks.values)
        }
        for callback in callbacks { callback() }
    }

    /// Runs `callback` once when the client goes (at once if it has); returns a token for
    /// ``cancel(_:)``.
    @discardableResult
    func onClose(_ callback: @escaping @Sendable () -> Void) -> Int? {
        let id = state.withLock { s -> Int? in
            guard !s.closed else { return nil }
            s.next += 1
            s.callbacks[s.next] = callback
            return s.next
        }
        if id == nil { callback() }
        return id
    }

    func cancel(_ id: Int?) {
        guard let id else { return }
        state.withLock { _ = $0.callbacks.removeValue(forKey: id) }
    }
}

extension VerityRequestContext {
    /// The watcher of this request's connection; nil where the pipeline has none (the
    /// in-process router tests).
    func connectionClosure() async -> ConnectionClosure? {
        let channel = self.channel
        return try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: ClientClosureHandler.self).closure
        }.get()
    }
}
