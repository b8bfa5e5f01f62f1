import Engine

/// What `urlpoll check` prints: the settings, the hooks and every URL with its own options.
func describe(_ config: ScriptConfig) -> String {
    let s = config.settings
    func secs(_ d: Duration) -> String { formatSeconds(d.seconds) }
    var text = "\(config.path): OK\n"
    text += "settings: pollers=\(s.pollers) poll_interval=\(secs(s.pollInterval)) "
    text += "status_interval=\(secs(s.statusInterval)) error_backoff=\(secs(s.errorBackoff)) "
    text += "timeout=\(secs(s.timeout)) method=\(s.method)"
    if let listen = s.listen { text += " listen=\(listen)" }
    if s.metrics != .default { text += " metrics=\(s.metrics.rawValue)" }
    if let data = s.data { text += " data=\(data)" }
    if let store = s.store { text += " store=\(store)" }
    if s.title != Settings().title { text += " title=\(s.title)" }
    text += "\n"
    if !config.modules.isEmpty { text += "modules: \(config.modules.keys.sorted().joined(separator: ", "))\n" }
    text += "hooks: backoff=\(config.backoff?.location ?? "default (seed's linear)") "
    text += "report=\(config.report?.location ?? "default (seed's block)")"
    for (name, hook) in [("check", config.check), ("on_change", config.onChange), ("on_result", config.onResult)] {
        if let hook { text += " \(name)=\(hook.location)" }
    }
    text += "\n"
    text += "urls (\(config.targets.count)):\n"
    for target in config.targets {
        var options: [String] = []
        if target.name != target.displayURL { options.append("name=\(target.name)") }
        if let method = target.method { options.append("method=\(method)") }
        if let timeout = target.timeout { options.append("timeout=\(secs(timeout))") }
        if let interval = target.interval { options.append("interval=\(secs(interval))") }
        if let rcodes = target.rcodes {
            options.append("expect=\(rcodes.joined(separator: ","))")
        } else if target.expect != .default, Scheme(target.url) == .http {
            options.append("expect=\(target.expect)")
        }
        if !target.headers.isEmpty { options.append("headers=\(target.headers.map(\.name).joined(separator: ","))") }
        if let backoff = target.backoff { options.append("backoff=\(backoff.location)") }
        if let check = target.check { options.append("check=\(check.location)") }
        if let send = target.send { options.append("send=\(send.count.counted("byte"))") }
        if let tls = target.tls {
            var parts: [String] = []
            if !tls.verify { parts.append("verify=false") }
            if let file = tls.caFile { parts.append("ca_file=\(file)") }
            if let name = tls.serverName { parts.append("server_name=\(name)") }
            if let days = tls.certExpiryDays { parts.append("cert_expiry=\(formatSeconds(days))") }
            if !parts.isEmpty { options.append("tls=" + parts.joined(separator: ",")) }
        }
        if let group = target.group { options.append("group=\(group)") }
        if !target.labels.isEmpty {
            options.append("labels=" + target.labels.map { "\($0.name)=\($0.value)" }.joined(separator: ","))
        }
        text += " \(target.displayURL)" + (options.isEmpty ? "" : " [" + options.joined(separator: " ") + "]") + "\n"
    }
    return text
}
