-- example script that raises alerts through a command: when a URL goes down or comes back, it runs
-- COMMAND MESSAGE (no shell; default command: logger, which writes to the system log).
-- Usage: urlpoll run scripts/alert-exec.lua -- BASE_URL [COMMAND]
local base = urlpoll.args[1] or "http://127.0.0.1:8080"
local command = urlpoll.args[2] or os.getenv("ALERT_COMMAND") or "logger"

urls = { base .. "/healthy", base .. "/failing" }

function on_change(s, prev)
  if not s.ok and (prev == nil or prev.ok) then
    urlpoll.exec({ command, string.format("urlpoll: %s is down (%s)", s.name, s.status) })
  elseif s.ok and prev and not prev.ok then
    urlpoll.exec({ command, string.format("urlpoll: %s is up again (%s)", s.name, s.status) })
  end
end
