import NIOCore

extension HTTPProber {
    /// A `tls` failure of an `https://` poll with its reason and the certificate's subject in words.
    ///
    /// AsyncHTTPClient does not show the chain the server presented, so a second handshake to the same
    /// host and port, with ``TLSProber``'s machinery (the chain captured, then verified with
    /// swift-certificates against the system's roots, as the https client verifies it), names the reason:
    /// expired or not yet valid, self-signed, unknown CA, hostname mismatch (RFC 5280, RFC 6125), with the
    /// leaf's subject (RFC 4514). It runs within what is left of the poll's `deadline`; when there is no
    /// time left, or the second handshake finds nothing wrong with the chain (a protocol version or
    /// cipher mismatch), `failure` (BoringSSL's reason in words) stands.
    func diagnoseTLS(_ failure: ProbeFailure, request: RequestDescription, deadline: NIODeadline) async
        -> ProbeFailure
    {
        guard failure.kind == .tls, request.scheme == "https", let prober = self.tlsProber else { return failure }
        let left = (deadline - .now()).nanoseconds
        guard left > 0 else { return failure }
        let host = request.host.contains(":") && !request.host.hasPrefix("[") ? "[\(request.host)]" : request.host
        let target = Target(url: "tls://\(host):\(request.port)", timeout: .nanoseconds(left))
        let result = await prober.probe(target, settings: Settings())
        guard case .failure(let found) = result.outcome, found.kind == .tls, let facts = result.tls else {
            return failure
        }
        guard !found.detail.contains(facts.subject) else { return found }
        return ProbeFailure(.tls, detail: "\(found.detail) (certificate \(facts.subject))")
    }
}
