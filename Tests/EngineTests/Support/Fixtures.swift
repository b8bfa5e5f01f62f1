import Engine
import Foundation
import Logging
import Synchronization

/// A Lua script written to a temporary file for one test; removed when the value is released.
final class TemporaryScript: Sendable {
    let path: String

    init(_ text: String, name: String = "script.lua") throws {
        // Short: Lua shortens chunk names past 60 characters in its messages.
        let directory = URL(fileURLWithPath: "/tmp")
            .appendingPathComponent("urlpoll-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.path = directory.appendingPathComponent(name).path
        try text.write(toFile: self.path, atomically: true, encoding: .utf8)
    }

    /// A file beside the script.
    func sibling(_ name: String) -> String {
        URL(fileURLWithPath: self.path).deletingLastPathComponent().appendingPathComponent(name).path
    }

    deinit {
        try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: self.path).deletingLastPathComponent().path)
    }
}

/// RecordingLogHandler keeps every log message, for tests that assert what the user is told.
struct RecordingLogHandler: LogHandler {
    final class Box: Sendable {
        let messages = Mutex([String]())
        /// Each message's metadata, in the same order.
        let metadata = Mutex([Logger.Metadata]())
        var all: [String] { self.messages.withLock { $0 } }
    }

    let box: Box
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        self.box.messages.withLock { $0.append("\(event.level): \(event.message)") }
        self.box.metadata.withLock { $0.append(event.metadata ?? [:]) }
    }

    static func make() -> (Logger, Box) {
        let box = Box()
        return (Logger(label: "test") { _ in RecordingLogHandler(box: box) }, box)
    }
}

/// The package's root folder, for the example scripts.
let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func loadHost(_ text: String, args: [String] = [], logger: Logger = Logger(label: "test")) throws -> (
    ScriptHost, TemporaryScript
) {
    let script = try TemporaryScript(text)
    return (try ScriptHost(path: script.path, args: args, logger: logger), script)
}
