import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Keeps idle and slow connections from taking the server offline.
///
/// Every connection registers here. A connection is *idle* while no request is in progress on
/// it: it has not finished sending a request head (a slowloris client never does), or it is a
/// kept-alive connection between requests. When the open connections reach the cap, the oldest
/// idle ones are closed to make room, so a client that opens thousands of sockets and sends
/// nothing only ever pushes out its own. A new connection that has not sent a whole request
/// head within ``headerTimeout`` is closed, and so is one idle for ``keepAliveTimeout`` between
/// requests. Accepting stops only when every connection is busy
/// with a request (Hummingbird's connection delegate, at ``limit``), so accept() never spins on
/// a full descriptor table.
final class ConnectionGuard: Sendable {
    /// Open connections beyond which the oldest idle ones are closed.
    let limit: Int
    /// How long a new connection may take to send its first request's head.
    let headerTimeout: TimeAmount
    /// How long a connection may stay open between requests.
    let keepAliveTimeout: TimeAmount
    private let logger: Logger
    private let metrics: ServerMetrics

    private struct Entry {
        var channel: any Channel
        var opened: UInt64
        var busy: Int = 0
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var next: UInt64 = 0
        var lastLog = ContinuousClock.now - .seconds(10)
        var evictedSinceLog = 0
    }

    private let state = Mutex(State())

    init(limit: Int, headerTimeout: TimeAmount, keepAliveTimeout: TimeAmount, logger: Logger, metrics: ServerMetrics) {
        self.limit = limit
        self.headerTimeout = headerTimeout
        self.keepAliveTimeout = keepAliveTimeout
        self.logger = logger
        self.metrics = metrics
    }

    /// The open connections now.
    var count: Int { state.withLock { $0.entries.count } }

    /// A handler for a new connection's pipeline.
    func handler() -> ConnectionGuardHandler { ConnectionGuardHandler(guard: self) }

    fileprivate func opened(_ channel: any Channel) {
        let victims = state.withLock { s -> [any Channel] in
            s.next += 1
            s.entries[ObjectIdentifier(channel)] = Entry(channel: channel, opened: s.next)
            let excess = s.entries.count - limit
            guard excess > 0 else { return [] }
            let idle = s.entries.values.filter { $0.busy == 0 && $0.channel !== channel }.sorted { $0.opened < $1.opened }
            let victims = idle.prefix(excess).map(\.channel)
            for victim in victims { s.entries[ObjectIdentifier(victim)] = nil }
            s.evictedSinceLog += victims.count
            return victims
        }
        for victim in victims { victim.close(promise: nil) }
        if !victims.isEmpty { noteEvictions(victims.count) }
    }

    fileprivate func closed(_ channel: any Channel) {
        state.withLock { _ = $0.entries.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    fileprivate func busy(_ channel: any Channel, _ delta: Int) {
        state.withLock { s in
            if var entry = s.entries[ObjectIdentifier(channel)] {
                entry.busy = max(0, entry.busy + delta)
                s.entries[ObjectIdentifier(channel)] = entry
            }
        }
    }

    private func noteEvictions(_ n: Int) {
        metrics.connectionsEvicted(n)
        let line = state.withLock { s -> String? in
            let now = ContinuousClock.now
            guard now - s.lastLog >= .seconds(1) else { return nil }
            defer { s.lastLog = now; s.evictedSinceLog = 0 }
            return "connections: \(s.entries.count) open (cap \(limit)); closed \(s.evictedSinceLog) idle ones to make room"
        }
        if let line { logger.warning("\(line)") }
    }
}

/// One connection's view of the guard: registers it, tracks whether a request is in progress,
/// and closes it when its request head is late.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let guardian: ConnectionGuard
    private var headTimer: Scheduled<Void>?
    private var inProgress = 0

    init(guard guardian: ConnectionGuard) { self.guardian = guardian }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { activate(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        activate(context)
        context.fireChannelActive()
    }

    private func activate(_ context: ChannelHandlerContext) {
        guardian.opened(context.channel)
        armHeadTimer(context, in: guardian.headerTimeout)
    }

    func channelInactive(context: ChannelHandlerContext) {
        headTimer?.cancel()
        guardian.closed(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            headTimer?.cancel()
            headTimer = nil
            inProgress += 1
            guardian.busy(context.channel, 1)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), inProgress > 0 {
            inProgress -= 1
            guardian.busy(context.channel, -1)
            if inProgress == 0 { armHeadTimer(context, in: guardian.keepAliveTimeout) }
        }
        context.write(data, promise: promise)
    }

    /// Closes the connection unless a request head arrives in time.
    private func armHeadTimer(_ context: ChannelHandlerContext, in timeout: TimeAmount) {
        headTimer?.cancel()
        let channel = context.channel
        headTimer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }
}
