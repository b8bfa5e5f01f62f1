import FoundationEssentials
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// MetricsServer is urlpoll's one HTTP listener (Hummingbird), off unless `--listen` or the `listen`
/// setting names an address. It serves:
///
/// - `GET /metrics`: the Prometheus text format 0.0.4: the per-URL families (``ProbeMetrics``), urlpoll's
///   own (``EngineMetrics``) and the process's (``ProcessMetrics``).
/// - `GET /probe?target=URL&module=NAME`: blackbox_exporter's endpoint: polls `target` once with the
///   script's module `NAME` (default `http_2xx`) and answers with that probe's families. 404 when the script
///   defines no `modules`; 400, with the reason, for an unknown module, a missing or malformed target, or a
///   scheme none of the script's URLs uses.
/// - `GET /healthz`: 200 `ok` while the engine keeps up; 503 with the reason before the first pass is done
///   or while polls start more than ``EngineMetrics/latenessBound`` late.
/// - `GET /status`: every URL's state and, with `--data`, its uptime, latency and changes, as JSON
///   (``StatusDocument``), made at most once per tick (``StatusCache``); `GET /`: the status page that shows
///   it, rendered here as HTML (``StatusPage``) once per document. Both gzipped (RFC 1952) when the client
///   accepts it (`Accept-Encoding`, RFC 9110 §12.5.3), with `Vary: Accept-Encoding`.
/// - `GET /status/ID`: one URL's hour series (``StatusSeries``), `ID` being its `id` in `/status`; 404 in
///   words for an id no URL of the script has, or without `--data`; 503 in words (and a warning logged)
///   when the store cannot list the ids (`--store`'s PostgreSQL does not answer).
/// - HEAD on any of these: as GET, without the body (RFC 9110 §9.3.2); any other method: 405 with
///   `Allow: GET, HEAD` (``ReadOnlyMethods``).
/// - anything else: 404.
///
/// A scrape reads a copy-on-write snapshot of the monitor's map (one message) and renders it on NIO's
/// blocking-work thread pool, so neither a scrape nor a slow scraper holds up a poll or a tick.
public struct MetricsServer: Service, Sendable {
    let address: ListenAddress
    let source: MetricsSource
    let metrics: EngineMetrics
    let prober: any Prober
    let history: (any HistoryStore)?
    let logger: Logger
    let onReady: @Sendable (Int) async -> Void
    let now: @Sendable () -> Double
    let statusCache: StatusCache
    /// When the listener was made (``now``), before the first poll: `/healthz` counts only states checked
    /// since, not those resumed from before a restart.
    let started: Double

    /// - Parameters:
    ///   - prober: Polls `/probe`'s targets.
    ///   - history: The `--data` store `/status` reads uptime, latency and changes from, or nil.
    ///   - onReady: Told the bound port once the listener accepts connections.
    ///   - now: The wall clock, seconds since the epoch: `/status`'s windows, and how old its cached copy is.
    public init(
        address: ListenAddress, source: MetricsSource, metrics: EngineMetrics, prober: any Prober,
        history: (any HistoryStore)? = nil, logger: Logger, onReady: @escaping @Sendable (Int) async -> Void = { _ in },
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.now = now
        self.started = now()
        self.statusCache = StatusCache(now: now)
        self.address = address
        self.source = source
        self.metrics = metrics
        self.prober = prober
        self.history = history
        self.logger = logger
        self.onReady = onReady
    }

    /// Listens until graceful shutdown.
    /// - Throws: ``ListenError`` naming the address when it cannot be bound (taken, not this machine's,
    ///   a port below 1024 without the privilege).
    public func run() async throws {
        let bound = Atomic(false)
        let address = self.address
        let logger = self.logger
        let onReady = self.onReady
        var quiet = self.logger
        quiet.logLevel = .warning
        let app = Application(
            router: self.router(),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "urlpoll"),
            onServerRunning: { channel in
                bound.store(true, ordering: .sequentiallyConsistent)
                let port = channel.localAddress?.port ?? address.port
                if address.isLoopback {
                    logger.info("listening on \(ListenAddress(host: address.host, port: port))")
                } else {
                    logger.notice(
                        "listening on \(ListenAddress(host: address.host, port: port)), which is not a loopback address: anyone who can reach it can read /metrics, /status and the status page (every URL, without credentials; /status with its error text and history) and /healthz\(self.source.current?.modules.isEmpty == false ? ", and make urlpoll poll URLs of their choosing through /probe" : "")"
                    )
                }
                await onReady(port)
            },
            logger: quiet)
        do {
            try await app.run()
        } catch {
            guard !bound.load(ordering: .sequentiallyConsistent) else { throw error }
            throw ListenError(address: address, underlying: error)
        }
        guard bound.load(ordering: .sequentiallyConsistent) || Task.isCancelled else {
            throw ListenError(address: address, underlying: nil)
        }
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router(options: .autoGenerateHeadEndpoints)
        router.add(middleware: ReadOnlyMethods(serves: Self.serves))
        router.get("/metrics") { request, _ in
            try await self.metricsResponse(gzip: Self.acceptsGzip(request.headers[values: .acceptEncoding]))
        }
        router.get("/healthz") { _, _ in await self.healthResponse() }
        router.get("/probe") { request, _ in await self.probeResponse(request) }
        router.get("/status") { request, _ in
            let page = request.uri.queryParameters.get("page")
            let perPage = request.uri.queryParameters.get("per_page")
            if page != nil || perPage != nil {
                return await self.statusPageResponse(page: page, perPage: perPage)
            }
            return await self.statusResponse(
                page: false, gzip: Self.acceptsGzip(request.headers[values: .acceptEncoding]))
        }
        router.get("/status/{id}") { request, _ in
            // The path as asked, not the router's parameter, which drops a trailing slash.
            await self.seriesResponse(id: String(request.uri.path.dropFirst("/status/".count)), request: request)
        }
        router.get("/") { request, _ in
            await self.statusResponse(page: true, gzip: Self.acceptsGzip(request.headers[values: .acceptEncoding]))
        }
        return router
    }

    /// Whether `path` is one the router serves: `/`, `/metrics`, `/healthz`, `/probe`, `/status` and
    /// `/status/ID`.
    static func serves(_ path: String) -> Bool {
        let parts = path.split(separator: "/")
        switch parts.count {
        case 0: return true
        case 1: return ["metrics", "healthz", "probe", "status"].contains(parts[0])
        case 2: return parts[0] == "status"
        default: return false
        }
    }

    private func metricsResponse(gzip: Bool) async throws -> Response {
        guard let current = self.source.current else {
            return Self.text(.serviceUnavailable, "the script is not loaded yet\n")
        }
        let states = await current.monitor.statesByURL()
        let registry = self.metrics.registry
        let body = try await NIOThreadPool.singleton.runIfActive {
            // About 700 bytes a URL for the default set, 3 KB for the full one (20-odd lines).
            let perURL = current.settings.metrics == .full ? 3_000 : 700
            var out = Exposition(reservingCapacity: 64 * 1024 + current.series.count * perURL)
            ProbeMetrics.write(states: states, series: current.series, set: current.settings.metrics, into: &out)
            out.append(raw: registry.emitToBuffer())
            ProcessMetrics.write(into: &out)
            return gzip ? try Exposition.gzipped(out.bytes) : ByteBuffer(bytes: out.bytes)
        }
        var headers: HTTPFields = [.contentType: Exposition.contentType, .vary: "Accept-Encoding"]
        if gzip { headers[.contentEncoding] = "gzip" }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }

    /// Whether an `Accept-Encoding` field's values accept gzip (RFC 9110 §12.5.3): `gzip` or `*` listed
    /// without `q=0`. Prometheus sends `Accept-Encoding: gzip`.
    static func acceptsGzip(_ values: [String]) -> Bool {
        var gzip: Bool?
        var any: Bool?
        for value in values {
            for member in value.split(separator: ",") {
                let parts = member.split(separator: ";")
                guard let coding = parts.first.map({ Self.trimmed($0).lowercased() }) else { continue }
                var accepted = true
                for parameter in parts.dropFirst() {
                    let pair = parameter.split(separator: "=", maxSplits: 1)
                    if pair.count == 2, Self.trimmed(pair[0]).lowercased() == "q", let q = Double(Self.trimmed(pair[1]))
                    {
                        accepted = q > 0
                    }
                }
                if coding == "gzip" || coding == "x-gzip" { gzip = accepted }
                if coding == "*" { any = accepted }
            }
        }
        return gzip ?? any ?? false
    }

    /// `text` without the spaces and tabs (OWS, RFC 9110 §5.6.3) around it.
    private static func trimmed(_ text: Substring) -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = text.firstIndex(where: { !isSpace($0) }), let last = text.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return text[first...last]
    }

    private func healthResponse() async -> Response {
        guard let current = self.source.current else {
            return Self.text(.serviceUnavailable, "the script is not loaded yet\n")
        }
        // States resumed from before a restart (`--data`, `--state`) are not this run's polls; states a reload
        // took over from the pool before it are, and so are the fleet's polled since (`--store`).
        let started = self.started
        let polled = await current.monitor.statesByURL().values.lazy.filter { $0.checkedAt >= started }.count
        if let problem = self.metrics.health(expected: current.series.count, polled: polled) {
            return Self.text(.serviceUnavailable, problem + "\n")
        }
        return Self.text(.ok, "ok\n")
    }

    private func probeResponse(_ request: Request) async -> Response {
        guard let current = self.source.current, !current.modules.isEmpty else {
            return Self.text(.notFound, "/probe answers only when the script defines `modules`\n")
        }
        let query = request.uri.queryParameters
        let name = query.get("module") ?? "http_2xx"
        guard let module = current.modules[name] else {
            let known = current.modules.keys.sorted().joined(separator: ", ")
            return Self.text(.badRequest, "unknown module \"\(name)\" (the script's modules: \(known))\n")
        }
        guard var url = query.get("target"), !url.isEmpty else {
            return Self.text(.badRequest, "no target: ask for /probe?target=URL&module=\(name)\n")
        }
        // As blackbox_exporter's http prober does, a target without a scheme is taken as http.
        if !url.contains("://") { url = "http://" + url }
        if let problem = LuaRuntime.problem(withURL: url) {
            return Self.text(.badRequest, "target: \(problem)\n")
        }
        let scheme = String(url[..<(url.firstIndex(of: ":") ?? url.endIndex)]).lowercased()
        guard current.schemes.contains(scheme) else {
            let used = current.schemes.sorted().joined(separator: ", ")
            return Self.text(
                .badRequest, "target: the script polls no \(scheme) URL, so /probe does not either (it polls \(used))\n"
            )
        }
        var target = module.target(url: url)
        // As blackbox_exporter does: finish within Prometheus' scrape timeout, less half a second.
        if let field = request.headers.first(where: {
            $0.name.canonicalName == "x-prometheus-scrape-timeout-seconds"
        }),
            let seconds = Double(field.value), seconds.isFinite, seconds > 0.5
        {
            let scrape = Duration.seconds(checked: min(seconds - 0.5, 3_600))
            target.timeout = min(current.settings.timeout(for: target), scrape)
        }
        let result = await self.prober.probe(target, settings: current.settings)
        var out = Exposition()
        ProbeMetrics.write(result: result, target: target, into: &out)
        return Response(
            status: .ok, headers: [.contentType: Exposition.contentType],
            body: .init(byteBuffer: ByteBuffer(bytes: out.bytes)))
    }

    /// `/status` (JSON) or, with `page`, the page at `/` (HTML), from the document ``StatusCache`` keeps.
    private func statusResponse(page: Bool, gzip: Bool) async -> Response {
        guard let current = self.source.current else {
            return Self.text(.serviceUnavailable, "the script is not loaded yet\n")
        }
        do {
            let made = try await self.madeDocument(current)
            // The page and the gzipped bodies are made once per document (StatusCache), on NIO's threads.
            let cache = self.statusCache
            let body: [UInt8]
            switch (page, gzip) {
            case (false, false): body = made.json
            case (false, true): body = try await cache.bytes(of: made, .gzippedJSON) { await Self.gzip(made.json) }
            case (true, false): body = try await cache.bytes(of: made, .page) { await Self.page(made.document) }
            case (true, true):
                let html = try await cache.bytes(of: made, .page) { await Self.page(made.document) }
                body = try await cache.bytes(of: made, .gzippedPage) { await Self.gzip(html) }
            }
            var headers: HTTPFields =
                page ? StatusPage.headers : [.contentType: "application/json", .cacheControl: "no-store"]
            headers[.vary] = "Accept-Encoding"
            if gzip { headers[.contentEncoding] = "gzip" }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
        } catch {
            // The store's read, the page's rendering or gzip: each says which in its words.
            self.logger.warning("\(page ? "/" : "/status"): \(error)")
            return Self.text(.internalServerError, "\(error)\n")
        }
    }

    /// The document ``StatusCache`` keeps for `current`, made anew when it is stale.
    /// - Throws: ``HistoryError`` when the store cannot be read or the JSON cannot be made.
    private func madeDocument(_ current: MetricsSource.Current) async throws -> StatusCache.Made {
        let history = self.history
        let now = self.now
        let monitor = current.monitor
        return try await self.statusCache.document(
            script: current.version, generation: history?.generation ?? 0, tick: monitor.tickCount,
            maxAge: current.settings.statusInterval
        ) {
            // The states of the last tick, and the changes up to them: one snapshot (issue 14 #5).
            let (states, ticked) = await monitor.statesAsOfTick()
            // SQLite reads and the JSON are done on NIO's blocking-work threads, off the engine's tasks.
            do {
                return .success(
                    try await NIOThreadPool.singleton.runIfActive {
                        let document = try StatusDocument.make(
                            targets: current.targets, states: states, settings: current.settings,
                            history: history, now: now(), changesUpToStates: ticked)
                        return StatusCache.Made(document: document, json: try document.json())
                    })
            } catch let error as HistoryError {
                return .failure(HistoryError("cannot read the history: \(error)"))
            } catch {
                return .failure(HistoryError("cannot make /status: \(error)"))
            }
        }
    }

    /// The most URLs one page of `/status` lists (`per_page`).
    public static let maxPerPage = 10_000
    /// `per_page` when only `page` is given.
    public static let defaultPerPage = 100

    /// `/status?page=N&per_page=M`: page N (from 1) of M URLs (1 to ``maxPerPage``, default
    /// ``defaultPerPage``) of the document ``StatusCache`` keeps, as JSON; 400 in words for anything else.
    private func statusPageResponse(page pageText: String?, perPage perPageText: String?) async -> Response {
        var page = 1
        var perPage = Self.defaultPerPage
        if let pageText {
            guard let n = Int(pageText), n >= 1 else {
                return Self.text(.badRequest, "page: a whole number from 1 expected, got \"\(pageText)\"\n")
            }
            page = n
        }
        if let perPageText {
            guard let n = Int(perPageText), (1...Self.maxPerPage).contains(n) else {
                return Self.text(
                    .badRequest,
                    "per_page: a whole number of URLs from 1 to \(Self.maxPerPage) expected, got \"\(perPageText)\"\n")
            }
            perPage = n
        }
        guard let current = self.source.current else {
            return Self.text(.serviceUnavailable, "the script is not loaded yet\n")
        }
        do {
            let made = try await self.madeDocument(current)
            let (onePage, size) = (page, perPage)
            let body = try await NIOThreadPool.singleton.runIfActive {
                try made.document.page(onePage, perPage: size).json()
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        } catch {
            self.logger.warning("/status: \(error)")
            return Self.text(.internalServerError, "\(error)\n")
        }
    }

    /// The page for `document`, rendered on NIO's blocking-work threads.
    private static func page(_ document: StatusDocument) async -> Result<[UInt8], HistoryError> {
        do {
            return .success(try await NIOThreadPool.singleton.runIfActive { Array(StatusPage.html(document).utf8) })
        } catch {
            return .failure(HistoryError("cannot render the status page: \(error)"))
        }
    }

    /// `bytes` gzipped (compress-nio, as `/metrics`), on NIO's blocking-work threads.
    private static func gzip(_ bytes: [UInt8]) async -> Result<[UInt8], HistoryError> {
        do {
            return .success(
                try await NIOThreadPool.singleton.runIfActive {
                    var buffer = try Exposition.gzipped(bytes)
                    return buffer.readBytes(length: buffer.readableBytes) ?? []
                })
        } catch {
            return .failure(HistoryError("cannot gzip the response: \(error)"))
        }
    }

    /// `/status/ID`: the hour series of the URL `/status` shows with `id` ID, over the last `?days=N` days
    /// (default 30, 1 to 400).
    private func seriesResponse(id text: String, request: Request) async -> Response {
        guard let current = self.source.current else {
            return Self.text(.serviceUnavailable, "the script is not loaded yet\n")
        }
        guard let history = self.history else {
            return Self.text(
                .notFound, "/status/ID answers only when urlpoll runs with --data DIR: the ids and series are its\n")
        }
        var days = 30
        if let asked = request.uri.queryParameters.get("days") {
            guard let n = Int(asked), (1...400).contains(n) else {
                return Self.text(.badRequest, "days: a whole number of days from 1 to 400 expected, got \"\(asked)\"\n")
            }
            days = n
        }
        // Only the id as /status writes it: digits without a leading zero, and no trailing slash. The ids
        // are read off the event loop: with --store they are a PostgreSQL statement, which may hang.
        let digits =
            text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) && text.first != "0"
        var ids: [HistoryKey: Int64] = [:]
        if digits {
            do {
                ids = try await NIOThreadPool.singleton.runIfActive { try history.readURLIDs() }
            } catch {
                // Not a 404: the id may well be one; the store did not say.
                self.logger.warning("/status/\(text): \(error)")
                return Self.text(
                    .serviceUnavailable, "cannot look the id up now: \(error); try again once the store answers\n")
            }
        }
        guard digits, let id = Int64(text), let target = current.targets.first(where: { ids[$0.historyKey] == id })
        else {
            return Self.text(
                .notFound,
                "no URL of the script has id \"\(text)\" (the ids are the `id` fields of /status; a URL has one once its first poll is written)\n"
            )
        }
        let states = await current.monitor.statesByURL()
        let now = self.now()
        let window = days
        do {
            let bytes = try await NIOThreadPool.singleton.runIfActive {
                let hours = try history.hourly(id: id, since: now - Double(window) * 86_400)
                return try StatusSeries(
                    id: id, target: target, state: states[target.url], hours: hours, days: window, now: now
                ).json()
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        } catch {
            self.logger.warning("/status/\(id): \(error)")
            return Self.text(.internalServerError, "cannot read the history: \(error)\n")
        }
    }

    private static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// ListenError says, in words, why the listener could not start.
public struct ListenError: Error, CustomStringConvertible {
    public let address: ListenAddress
    public let reason: String

    init(address: ListenAddress, underlying: (any Error)?) {
        self.address = address
        if let io = underlying as? IOError {
            self.reason = String(cString: strerror(io.errnoCode)).lowercased()
        } else if underlying is SocketAddressError || underlying is SocketAddressError.UnknownHost {
            // NIO throws UnknownHost (a type of its own, not a SocketAddressError case) when getaddrinfo
            // does not resolve the host.
            self.reason = "\"\(address.host)\" is not an address of this machine, nor a name that resolves to one"
        } else if let underlying {
            self.reason = "\(underlying)"
        } else {
            self.reason = "the listener stopped before it was bound"
        }
    }

    public var description: String { "cannot listen on \(self.address): \(self.reason)" }
}
