import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// A per-connection NIO handler that bounds how long a request may take to arrive, and closes a
/// connection whose request was answered before its body was read.
///
/// - A request whose body is not complete `requestTimeout` after its head gets `408` (JSON) and the
///   connection is closed (after `lingerTime` at most): a slow upload (slowloris) cannot hold a
///   connection for longer.
/// - An answer sent while the request body is still arriving (an early `413` or `401`) carries
///   `Connection: close`; the connection then stops reading for the application, discards what the client
///   still sends for up to `lingerTime` (so a client that writes its whole body before reading still
///   gets the answer), and closes.
final class RequestGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let requestTimeout: TimeAmount
    let lingerTime: TimeAmount

    private var requestOpen = false
    private var responseStarted = false
    private var discarding = false
    private var deadline: Scheduled<Void>?
    private var linger: Scheduled<Void>?

    init(requestTimeout: TimeAmount, lingerTime: TimeAmount = .seconds(3)) {
        self.requestTimeout = requestTimeout
        self.lingerTime = lingerTime
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.discarding { return }
        switch self.unwrapInboundIn(data) {
        case .head:
            self.requestOpen = true
            self.responseStarted = false
            self.deadline?.cancel()
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            self.deadline = context.eventLoop.scheduleTask(in: self.requestTimeout) {
                let (handler, context) = loopBound.value
                handler.requestTimedOut(context: context)
            }
        case .body:
            break
        case .end:
            self.requestOpen = false
            self.deadline?.cancel()
            self.deadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .head(var head):
            self.responseStarted = true
            if self.requestOpen {
                head.headerFields[.connection] = "close"
                context.write(self.wrapOutboundOut(.head(head)), promise: promise)
                return
            }
        case .body:
            break
        case .end:
            if self.requestOpen {
                context.writeAndFlush(data, promise: promise)
                self.answeredEarly(context: context)
                return
            }
        }
        context.write(data, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        self.linger?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        self.linger?.cancel()
        context.fireChannelInactive()
    }

    /// The answer is out but the body is still coming: stop feeding the application, drain for a while, close.
    private func answeredEarly(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        self.deadline = nil
        self.discarding = true
        self.lingerThenClose(context: context)
    }

    private func requestTimedOut(context: ChannelHandlerContext) {
        self.deadline = nil
        guard self.requestOpen, !self.discarding else { return }
        self.discarding = true
        guard !self.responseStarted else {
            context.close(promise: nil)
            return
        }
        let body = ByteBuffer(string: #"{"error":"request_timeout","message":"the request did not arrive in time"}"# + "\n")
        let head = HTTPResponse(status: .requestTimeout, headerFields: [
            .contentType: "application/json", .contentLength: String(body.readableBytes), .connection: "close",
        ])
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(self.wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        // Half-close and drain for a moment rather than close: a client still writing would otherwise get
        // a reset that can destroy the 408 before it reads it.
        self.lingerThenClose(context: context)
    }

    private func lingerThenClose(context: ChannelHandlerContext) {
        context.close(mode: .output, promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.linger = context.eventLoop.scheduleTask(in: self.lingerTime) {
            loopBound.value.close(promise: nil)
        }
    }
}
