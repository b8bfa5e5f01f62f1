/// HookRef names a Lua function held by the script host: its registry reference and where it was defined.
public struct HookRef: Sendable, Hashable {
    /// The Lua registry reference; meaningful only to the ``ScriptHost`` that loaded the script.
    let ref: Int32
    /// Where the function was defined, as `file:line`.
    public let location: String
}
