import Hummingbird

/// The request context: Hummingbird's core storage plus the authenticated caller.
struct VerityRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var caller = Caller.anonymous

    init(source: Source) {
        coreContext = .init(source: source)
    }
}
