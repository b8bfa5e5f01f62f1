import NIOHTTP1

extension HTTPParserError {
    /// What was wrong with a response, in words, for a `bad_response` failure's detail (never NIO's
    /// "unknown (http_parser error)"). The cases are NIOHTTP1's names for llhttp's errors.
    var words: String {
        switch self {
        case .invalidConstant, .invalidVersion:
            "the response does not start with an HTTP/1.x status line"
        case .invalidStatus:
            "the status line has no valid three-digit status code"
        case .invalidCharactersUsed, .invalidHeaderToken:
            "a header field line holds a character HTTP does not allow there"
        case .lfExpected:
            "a line is not ended by CRLF or LF"
        case .headerOverflow:
            "the response's header section is too large (over 80 KiB)"
        case .invalidContentLength:
            "the Content-Length header is not a number"
        case .unexpectedContentLength:
            "the response has both Content-Length and Transfer-Encoding, or two different Content-Lengths"
        case .invalidChunkSize:
            "a chunk size in the chunked body is not a hexadecimal number"
        case .trailingGarbage:
            "bytes follow the end of the response"
        case .invalidEOFState, .closedConnection:
            "the server closed the connection in the middle of the response"
        default:
            "the response is not valid HTTP/1.1 (a malformed status line or header field)"
        }
    }
}
