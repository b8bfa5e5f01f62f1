-- example script that demonstrates a custom reporter: a header on each tick, one aligned line per URL
-- with its latency and how long it has had its status, and a summary after the last URL.
local base = urlpoll.args[1] or "http://127.0.0.1:8080"

urls = {
  { url = base .. "/healthy", name = "healthy" },
  { url = base .. "/failing", name = "failing" },
  { url = base .. "/missing", name = "missing" },
}

local down = 0

function report(s)
  if s.index == 1 then
    down = 0
    print(string.format("%-10s %-28s %9s %7s", "NAME", "STATUS", "LATENCY", "FOR"))
  end
  if not s.ok then down = down + 1 end
  print(string.format("%-10s %-28s %7.1fms %6.0fs", s.name, s.status, s.latency * 1000, s.checked_at - s.since))
  if s.index == s.count then print(string.format("%d of %d down", down, s.count)) end
end
