extension Alert {
    /// Who receives the alert, for the per-receiver limit of ``AlertDispatcher``: a webhook's origin
    /// (RFC 6454 §4, `http://127.0.0.1:8080`), or the command an exec alert runs (`argv[0]`).
    var receiver: String {
        switch self {
        case .post(let url, _, _): "post " + urlOrigin(url)
        case .exec(let argv, _): "exec " + (argv.first ?? "")
        }
    }
}
