/// ScriptError is a problem with the user's Lua script: it would not load, a setting or URL entry is
/// wrong, or a hook failed. `message` leads with the script's `file:line` wherever one is known.
public struct ScriptError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// The file is missing or unreadable, or is not valid Lua.
        case syntax
        /// The script raised an error while running.
        case runtime
        /// A setting, a `urls` entry or a hook has the wrong type or value.
        case configuration
        /// The script ran past its instruction budget.
        case budget
        /// The script grew past its memory limit.
        case memory
        /// A hook returned something that is not what it must return.
        case badReturn
        /// A hook waiting on `urlpoll.http` ran past its wall-clock deadline and was abandoned.
        case deadline
        /// urlpoll stopped while a hook waited on `urlpoll.http`; the hook was abandoned.
        case stopped
    }

    /// Which kind of problem; errors compare equal by kind alone (the message names the file and line).
    public var kind: Kind
    /// One line, starting with `file:line:` where known.
    public var message: String
    /// Lua's stack traceback, when the error was raised by running code.
    public var traceback: String?

    public init(_ kind: Kind, _ message: String, traceback: String? = nil) {
        self.kind = kind
        self.message = message
        self.traceback = traceback
    }

    public var description: String { self.message }

    /// Errors compare by kind only, never by message.
    public static func == (lhs: ScriptError, rhs: ScriptError) -> Bool { lhs.kind == rhs.kind }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.kind) }
}
