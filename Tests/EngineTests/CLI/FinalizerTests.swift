import Foundation
import Testing

/// Lua runs finalizers with every hook off, so the instruction budget cannot stop one; `urlpoll check`
/// must refuse every way a script could install one, rather than hang. Run as a process, killed after
/// 30 s, so a regression fails instead of hanging the test run.
@Suite(.timeLimit(.minutes(2))) struct FinalizerTests {
    @Test(arguments: [
        "debug.setmetatable({}, { __gc = function() while true do end end }); collectgarbage()",
        "setmetatable({}, { __gc = function() while true do end end }); collectgarbage()",
        "getmetatable(io.stdout).__gc = function() while true do end end; io.open('/dev/null'); collectgarbage()",
        "debug.getmetatable(io.stdout).__gc = function() while true do end end; io.open('/dev/null'); collectgarbage()",
        "debug.getregistry()['FILE*'].__gc = function() while true do end end; io.open('/dev/null'); collectgarbage()",
        "local mt = {}; setmetatable({}, mt); mt.__gc = function() while true do end end; setmetatable({}, mt); collectgarbage()",
    ])
    func check_whenAScriptInstallsAnEndlessFinalizer_failsAtItsLine_insteadOfHanging(line: String) async throws {
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }\n\(line)\n")
        let process = try CLIProcess(["check", script.path])
        let status = await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await process.wait() }
            group.addTask {
                guard (try? await Task.sleep(for: .seconds(30))) != nil else { return nil }
                process.signal(SIGKILL)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        #expect(status == 2, "urlpoll check hung (killed after 30 s)")
        #expect(process.stderr.contains("\(script.path):2: "), "\(process.stderr)")
    }
}
