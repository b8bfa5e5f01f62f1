enum HTTPStatusName {
    static func of(_ code: Int) -> String {
        [500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"][code]
            ?? ""
    }
}
