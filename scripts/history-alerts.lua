-- example script whose alerts quote the --data history: "api is back after 12 min down; 99.2 % up this
-- week" and "api is down (500 Internal Server Error), 3 times in 24 h".
-- Usage: WEBHOOK_URL=… urlpoll run scripts/history-alerts.lua --data /var/lib/urlpoll -- BASE_URL
-- urlpoll.history counts polls written up to the last tick (not the poll that calls on_change); the change
-- that calls on_change is committed before the hook runs, unless its write failed or took over 1 s. So
-- this outage's length comes from the states (prev.since), and the change at hand is counted here by its
-- time, whether or not the history has it.
local base = urlpoll.args[1] or "http://127.0.0.1:8080"
local hook = urlpoll.args[2] or os.getenv("WEBHOOK_URL") or "http://127.0.0.1:9/hook"

urls = {
  { url = base .. "/healthy", name = "shop" },
  { url = base .. "/flapping", name = "api" },
}

-- "99.2 % up": the share of polls not down, rounded down to a tenth, so that 99.96 % shows as 99.9 %, never as
-- a 100 % that hides an outage. A week is counted in whole hours, from the hour 7 days ago began.
local function uptime(h)
  if not h.uptime then return "no polls recorded" end
  return string.format("%.1f %% up", math.floor(h.uptime * 1000 + 1e-9) / 10)
end

function on_change(s, prev)
  if not prev then return end -- a URL's first result is no incident
  if s.ok and not prev.ok then
    -- prev.since is when this outage began: exact, where the history may not have its start yet (an
    -- outage shorter than status_interval is not written when it ends).
    local minutes = math.max(1, math.floor((s.checked_at - prev.since) / 60 + 0.5))
    local week = urlpoll.history(s.raw_url, 7 * 86400)
    urlpoll.post(hook, {
      text = string.format("%s is back after %d min down; %s this week", s.name, minutes, uptime(week)),
    })
  elseif not s.ok and prev.ok then
    -- The outages that began in the last 24 hours before this one, and this one (left out of the history's
    -- changes by its time, as the history has it when its commit worked).
    local day = urlpoll.history(s.raw_url, 86400)
    local downs = 1
    for _, c in ipairs(day.changes) do
      if c.to == "down" and c.at < s.checked_at then downs = downs + 1 end
    end
    urlpoll.post(hook, { text = string.format("%s is down (%s), %d times in 24 h", s.name, s.status, downs) })
  end
end
