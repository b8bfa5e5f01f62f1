-- urlpoll.alerts.opsgenie: Opsgenie Alert API v2.
-- Down: POST {api}/v2/alerts with { message, alias, description, priority, entity, source, tags, details };
-- up: POST {api}/v2/alerts/{alias}/close?identifierType=alias with { source, note }; both with the header
-- "Authorization: GenieKey <key>", as documented at https://docs.opsgenie.com/docs/alert-api ("Create
-- Alert": message is required, at most 130 characters; alias, at most 512, de-duplicates open alerts;
-- "Close Alert": identifierType=alias). Use api = "https://api.eu.opsgenie.com" for EU accounts.
-- A grouped event is sent as one request per URL, so each recovery closes its own alert.
--
--   local og = require("urlpoll.alerts.opsgenie").new{ api_key = os.getenv("OPSGENIE_KEY") }
local event = require "urlpoll.alerts.event"
local M = {}

-- new{ api_key = KEY [, priority = "P3"] [, tags = { ... }] [, api = "https://api.opsgenie.com"] } -> notifier
function M.new(opts)
  local who = "urlpoll.alerts.opsgenie"
  opts = event.options(opts, who)
  local headers = { Authorization = "GenieKey " .. event.need(opts, "api_key", who) }
  local api = (opts.api or "https://api.opsgenie.com"):gsub("/+$", "")
  local priority = opts.priority or "P3"
  if not tostring(priority):match("^P[1-5]$") then
    event.raise(who .. ": option 'priority' must be P1 to P5 (got " .. tostring(priority) .. ")")
  end
  local n = {}
  function n.send(_, x)
    local e = event.normalize(x, "send")
    for _, one in ipairs(event.each(e)) do
      local alias = event.cut(one.key, 512)
      if one.ok then
        urlpoll.post(api .. "/v2/alerts/" .. event.escape(alias) .. "/close?identifierType=alias",
          { source = "urlpoll", note = one.text }, headers)
      else
        urlpoll.post(api .. "/v2/alerts", {
          message = event.cut(one.title, 130), alias = alias, description = event.cut(one.text, 15000),
          priority = priority, entity = one.name, source = "urlpoll", tags = opts.tags,
          details = { url = one.url, status = one.status, detail = one.detail },
        }, headers)
      end
    end
  end
  return n
end

return M
