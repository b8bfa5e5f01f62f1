/// A host function's failure: the message Lua raises at the script line that called the function
/// (`config.lua:7: bad argument #1 to 'log' (…)`).
struct HostError: Error {
    let message: String

    init(_ message: String) { self.message = message }
}
