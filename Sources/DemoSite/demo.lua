-- example script that `urlpoll demo` runs: a loopback site with healthy, failing, slow and flapping
-- pages, polled every 2 s, with a capped exponential backoff, a compact reporter and a line per change.
-- Run it against your own copy of the site with: urlpoll run scripts/demo.lua -- http://127.0.0.1:PORT
local base = urlpoll.args[1] or "http://127.0.0.1:8080"

pollers = 4
poll_interval = 2
status_interval = 3
error_backoff = 1
timeout = 1

urls = {
  base .. "/healthy",
  base .. "/failing",
  base .. "/flapping",
  { url = base .. "/slow", name = "slow (3 s, timeout 1 s)" },
  { url = base .. "/missing", expect = 404, name = "missing (404 expected)" },
  { url = base .. "/redirect", method = "GET" },
}

-- Failing URLs wait 2, 4, 8, then 10 s (the cap) between polls; healthy ones poll_interval.
function backoff(r)
  if r.ok then return r.interval end
  return math.min(r.interval * 2 ^ (r.error_count - 1), 10)
end

-- Transitions print as they happen, between ticks.
function on_change(s, prev)
  if prev then
    local name = s.name:sub(1, #base) == base and s.name:sub(#base + 1) or s.name
    print(string.format("%s %s: %s -> %s", os.date("%H:%M:%S"), name, prev.status, s.status))
  end
end

function report(s)
  if s.index == 1 then print(os.date("%H:%M:%S") .. string.rep("-", 52)) end
  local mark = s.ok and "up  " or "DOWN"
  local name = s.name:sub(1, #base) == base and s.name:sub(#base + 1) or s.name
  print(string.format("%s %-26s %-26s errors=%d", mark, name, s.status, s.error_count))
end
