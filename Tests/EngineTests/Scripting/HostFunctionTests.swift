@testable import Engine
import Foundation
import Logging
import Testing

/// Every Swift function a script can call raises its errors at the script line that called it, whether it
/// is called from a function or handed straight to `pcall`.
@Suite(.timeLimit(.minutes(2))) struct HostFunctionTests {
    /// Loads a script whose line 2 is `local ok, err = pcall(CALL)` and returns what it caught.
    static func caught(_ call: String) throws -> (message: String, path: String) {
        let script = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/" }
            local ok, err = pcall(\(call))
            if ok then error("pcall did not catch an error", 0) end
            error("caught: " .. tostring(err), 0)
            """)
        let error = try #require(throws: ScriptError.self) {
            _ = try ScriptHost(path: script.path, logger: Logger(label: "test"))
        }
        return (error.message, script.path)
    }

    @Test(arguments: [
        (
            "urlpoll.log, \"loud\"",
            "bad argument #1 to 'log' (expected \"debug\", \"info\", \"warning\" or \"error\", got string \"loud\")"
        ),
        (
            "function() urlpoll.log(nil) end",
            "bad argument #1 to 'log' (expected \"debug\", \"info\", \"warning\" or \"error\", got nil)"
        ),
        ("urlpoll.post, 42", "bad argument #1 to 'post' (URL string expected, got number 42)"),
        ("urlpoll.post, \"ftp://x/\"", "bad argument #1 to 'post' (an http or https URL expected, got \"ftp://x/\")"),
        (
            "urlpoll.post, \"http://127.0.0.1:99999/x\"",
            "bad argument #1 to 'post' (the port must be a number from 1 to 65535 in \"http://127.0.0.1:99999/x\")"
        ),
        (
            "urlpoll.post, \"http://127.0.0.1:9/\", true",
            "bad argument #2 to 'post' (string or table expected, got boolean)"
        ),
        (
            "urlpoll.post, \"http://127.0.0.1:9/\", { f = print }",
            "bad argument #2 to 'post' (cannot encode a function as JSON)"
        ),
        (
            "urlpoll.post, \"http://127.0.0.1:9/\", \"b\", { [\"X\"] = {} }",
            "bad argument #3 to 'post' (a table of header names to strings expected)"
        ),
        (
            "urlpoll.post, \"http://127.0.0.1:9/\", \"b\", { A = \"1\", B = \"2\", C = {} }",
            "bad argument #3 to 'post' (a table of header names to strings expected)"
        ),
        ("urlpoll.post, \"http://127.0.0.1:9/\", \"b\", 5", "bad argument #3 to 'post' (table expected, got number)"),
        (
            "urlpoll.post, \"http://127.0.0.1:9/\", \"b\", { [\"X-A\"] = \"a\\r\\nInjected: 1\" }",
            "bad argument #3 to 'post' (the value of 'X-A' holds a line break or NUL, which HTTP does not allow (RFC 9110 §5.5))"
        ),
        (
            "urlpoll.exec, { \"echo\", {} }",
            "bad argument #1 to 'exec' (a table of strings expected, such as { \"notify-send\", \"down\" })"
        ),
        ("urlpoll.json.encode, { 1, print }", "bad argument #1 to 'encode' (cannot encode a function as JSON)"),
        ("urlpoll.json.decode, 42", "bad argument #1 to 'decode' (string expected, got number)"),
        (
            "urlpoll.json.decode, '[[1, {\"a\": ['",
            "bad argument #1 to 'decode' (invalid JSON: The given data was not valid JSON.)"
        ),
        (
            "setmetatable, {}, { __gc = print }",
            "__gc metamethods are not supported: finalizers run outside the instruction budget"
        ),
        (
            "debug.setmetatable, {}, { __gc = print }",
            "__gc metamethods are not supported: finalizers run outside the instruction budget"
        ),
        ("debug.getregistry", "debug.getregistry is not available: the registry holds urlpoll's own state"),
    ])
    func hostFunction_whenItRaises_givesTheCallingLine(call: String, message: String) throws {
        let (caught, path) = try Self.caught(call)
        #expect(caught == "caught: \(path):2: \(message)")
    }

    @Test func hostFunction_inAHook_givesTheHooksLine() async throws {
        // Given: a backoff that passes a bad header table, outside any pcall.
        let (logger, log) = RecordingLogHandler.make()
        let (sut, script) = try loadHost(
            """
            urls = { "http://127.0.0.1:9/" }
            function backoff(r)
              urlpoll.post("http://127.0.0.1:9/", "b", { X = {} })
            end
            """, logger: logger)

        let delay = await sut.delay(for: Resource(sut.config.targets[0]), settings: Settings())

        // Then: logged with the line of the call, and the default applies.
        #expect(delay == .seconds(60))
        #expect(
            log.all.contains {
                $0.contains("\(script.path):3: bad argument #3 to 'post' (a table of header names to strings expected)")
            })
    }

    @Test func setmetatable_withoutAFinalizer_stillWorks_andProtectedMetatablesStayProtected() throws {
        let script = try TemporaryScript(
            """
            local t = setmetatable({}, { __index = function() return 7 end })
            assert(t.anything == 7)
            assert(debug.setmetatable(5, nil) == 5)
            local p = setmetatable({}, { __metatable = "locked" })
            local ok, err = pcall(setmetatable, p, {})
            assert(not ok and err:find("cannot change a protected metatable"), err)
            assert(getmetatable(io.stdout) == "file" and debug.getmetatable(io.stdout) == "file")
            assert(debug.getmetatable("").__index == string)
            urls = { "http://127.0.0.1:9/" }
            """)
        _ = try ScriptHost(path: script.path, logger: Logger(label: "test"))
    }
}
