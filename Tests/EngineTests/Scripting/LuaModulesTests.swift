import Engine
import Foundation
import Logging
import Testing

/// `require` of the modules built into urlpoll, their override by a file on `package.path`, and the
/// script's folder on that path.
@Suite(.timeLimit(.minutes(2))) struct LuaModulesTests {
    static let modules = [
        "urlpoll.alerts.event", "urlpoll.alerting", "urlpoll.alerts.slack", "urlpoll.alerts.discord",
        "urlpoll.alerts.teams", "urlpoll.alerts.pagerduty", "urlpoll.alerts.opsgenie", "urlpoll.alerts.telegram",
        "urlpoll.alerts.ntfy", "urlpoll.alerts.gotify", "urlpoll.alerts.webhook", "urlpoll.alerts.email",
    ]

    @Test func require_findsEveryEmbeddedModule_fromAnyWorkingFolder() throws {
        let (logger, log) = RecordingLogHandler.make()
        let list = Self.modules.map { "\"\($0)\"" }.joined(separator: ", ")
        _ = try loadHost(
            """
            urls = { "http://127.0.0.1:9/" }
            for _, name in ipairs{ \(list) } do
              local m, where = require(name)
              urlpoll.log("info", name, type(m), where)
            end
            """, logger: logger)
        #expect(log.all == Self.modules.map { "info: \($0) table urlpoll:\($0)" })
    }

    @Test func webhook_percentEncodesWhatItPutsInTheURL_only() throws {
        let (logger, log) = RecordingLogHandler.make()
        _ = try loadHost(
            """
            urls = { "http://127.0.0.1:9/" }
            local w = require "urlpoll.alerts.webhook"
            local e = { name = "http://a/b c?d=1", status = "500 Internal" }
            urlpoll.log("info", w.fill("http://r/h/{{name}}?s={{status}}", e, w.percent))
            urlpoll.log("info", w.fill("{{name}} is {{status}}", e))
            """, logger: logger)
        #expect(
            log.all == [
                "info: http://r/h/http%3A%2F%2Fa%2Fb%20c%3Fd%3D1?s=500%20Internal",
                "info: http://a/b c?d=1 is 500 Internal",
            ])
    }

    @Test func require_whenAFileOfTheSameNameSitsBesideTheScript_usesTheFile() throws {
        let (logger, log) = RecordingLogHandler.make()
        let script = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/" }
            local slack = require "urlpoll.alerts.slack"
            local mine = require "mine"
            urlpoll.log("info", slack.overridden, mine.answer)
            """)
        let folder = script.sibling("urlpoll/alerts")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "return { overridden = true }".write(toFile: folder + "/slack.lua", atomically: true, encoding: .utf8)
        try "return { answer = 42 }".write(toFile: script.sibling("mine.lua"), atomically: true, encoding: .utf8)
        _ = try ScriptHost(path: script.path, logger: logger)
        #expect(log.all == ["info: true 42"])
    }

    @Test func require_whenNoModuleHasTheName_saysWhereItLooked_atTheScriptsLine() throws {
        let script = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/" }
            local nope = require "urlpoll.alerts.nope"
            """)
        let error = #expect(throws: ScriptError.self) {
            try ScriptHost(path: script.path, logger: Logger(label: "test"))
        }
        let message = try #require(error?.message)
        #expect(message.hasPrefix("\(script.path):2: module 'urlpoll.alerts.nope' not found:"))
        #expect(message.contains("no module 'urlpoll.alerts.nope' built into urlpoll"))
        #expect(message.contains(script.sibling("urlpoll/alerts/nope.lua")))
    }

    @Test func exec_withStdin_whenTheOptionIsWrong_raisesAtTheCallingLine() throws {
        let script = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/" }
            local ok, err = pcall(urlpoll.exec, { "cat" }, { stdin = 42 })
            urlpoll.log("info", err)
            urlpoll.exec({ "cat" }, "text")
            """)
        let (logger, log) = RecordingLogHandler.make()
        let error = #expect(throws: ScriptError.self) {
            try ScriptHost(path: script.path, logger: logger)
        }
        // Through pcall too, the message names the calling line, as every host function's does.
        #expect(
            log.all == [
                "info: \(script.path):2: bad argument #2 to 'exec' (field 'stdin' must be a string, got number)"
            ])
        #expect(
            error?.message
                == "\(script.path):4: bad argument #2 to 'exec' (a table such as { stdin = \"text\" } expected, got string)"
        )
    }
}
