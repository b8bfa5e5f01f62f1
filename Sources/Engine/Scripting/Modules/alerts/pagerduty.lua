-- urlpoll.alerts.pagerduty: PagerDuty Events API v2.
-- POST https://events.pagerduty.com/v2/enqueue with { routing_key, event_action = "trigger" | "resolve",
-- dedup_key, payload = { summary, source, severity, timestamp, component, class, custom_details } },
-- as documented at https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ and
-- .../resolve-events/: summary (at most 1024 characters), source and severity (critical, error,
-- warning or info) are required to trigger; a resolve needs only routing_key, event_action and the
-- dedup_key of the trigger it closes. The dedup_key is "urlpoll:" .. url (at most 255 characters), so
-- every trigger for one URL lands on one incident and the recovery resolves it.
-- A grouped event is sent as one event per URL: a resolve must name its own trigger's key.
--
--   local pd = require("urlpoll.alerts.pagerduty").new{ routing_key = os.getenv("PD_ROUTING_KEY") }
local event = require "urlpoll.alerts.event"
local M = {}

local severities = { critical = true, error = true, warning = true, info = true }

-- new{ routing_key = KEY [, severity = "critical"] [, url = enqueue URL] } -> notifier
function M.new(opts)
  local who = "urlpoll.alerts.pagerduty"
  opts = event.options(opts, who)
  local key = event.need(opts, "routing_key", who)
  local severity = opts.severity or "critical"
  if not severities[severity] then
    event.raise(who .. ": option 'severity' must be critical, error, warning or info (got " .. tostring(severity) .. ")")
  end
  local url = opts.url or "https://events.pagerduty.com/v2/enqueue"
  local n = {}
  function n.send(_, x)
    local e = event.normalize(x, "send")
    for _, one in ipairs(event.each(e)) do
      local body = {
        routing_key = key, dedup_key = event.cut(one.key, 255),
        event_action = one.ok and "resolve" or "trigger",
      }
      if not one.ok then
        body.payload = {
          summary = event.cut(one.text, 1024), source = one.url or "urlpoll", severity = severity,
          timestamp = event.timestamp(one.at), component = one.name, class = one.status,
          custom_details = { status = one.status, detail = one.detail, error_count = one.error_count, kind = one.kind },
        }
        body.client = "urlpoll"
      end
      urlpoll.post(url, body)
    end
  end
  return n
end

return M
