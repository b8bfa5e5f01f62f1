// `where()`, shared by the Lua preludes of the host functions that suspend (urlpoll.http, urlpoll.history).
extension LuaRuntime {
    /// Lua source that defines `local function where()` in a prelude: "file:line: " of the innermost script
    /// line on the stack, skipping the preludes' frames (chunk `=urlpoll`) and C functions (`pcall`, when a
    /// script writes `pcall(s.get, 42)`), as the host functions' trampoline places its errors. A prelude
    /// raises what a suspended call answered (nil and the error) with `error(where() .. err, 0)`.
    static let wherePrelude = """
        local getinfo = debug.getinfo
        local function where()
          local level = 2
          while true do
            local info = getinfo(level, "Sl")
            if not info then return "" end
            if info.source ~= "=urlpoll" and info.currentline > 0 then
              return info.short_src .. ":" .. info.currentline .. ": "
            end
            level = level + 1
          end
        end
        """
}
