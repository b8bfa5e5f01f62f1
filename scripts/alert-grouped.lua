-- example script that sends one grouped alert when many URLs are down at once, instead of one alert per
-- URL: the reporter sees the whole fleet on every tick. Usage: urlpoll run scripts/alert-grouped.lua --
-- BASE_URL WEBHOOK_URL
local base = urlpoll.args[1] or "http://127.0.0.1:8080"
local webhook = urlpoll.args[2] or os.getenv("WEBHOOK_URL") or "http://127.0.0.1:9000/hook"
local threshold = 3 -- this many down at once is one incident

urls = { base .. "/healthy" }
for _, code in ipairs({ 500, 502, 503, 504 }) do urls[#urls + 1] = base .. "/status/" .. code end

local down, incident = {}, false

function report(s)
  if s.index == 1 then down = {} end
  if not s.ok then down[#down + 1] = s.name .. " (" .. s.status .. ")" end
  if s.index < s.count then return end
  -- Last URL of the tick: decide once for the whole fleet.
  if #down >= threshold and not incident then
    incident = true
    urlpoll.post(webhook, { text = #down .. " of " .. s.count .. " URLs are down", down = down })
  elseif #down < threshold and incident then
    incident = false
    urlpoll.post(webhook, { text = "resolved: " .. #down .. " of " .. s.count .. " URLs down" })
  end
end
