-- urlpoll.alerts.slack: Slack incoming webhooks.
-- Payload: { text = "..." } posted as JSON to the webhook URL, as documented at
-- https://api.slack.com/messaging/webhooks ("Sending messages using incoming webhooks"): `text` is the
-- one required field, and doubles as the notification's fallback text.
--
--   local slack = require("urlpoll.alerts.slack").new{ webhook = os.getenv("SLACK_WEBHOOK") }
--   function on_change(s, prev) slack:send(s) end
local event = require "urlpoll.alerts.event"
local M = {}

-- new{ webhook = URL [, icons = { down = ":red_circle:", up = ":large_green_circle:" }] } -> notifier
function M.new(opts)
  local who = "urlpoll.alerts.slack"
  opts = event.options(opts, who)
  local webhook = event.need(opts, "webhook", who)
  local icons = opts.icons or { down = ":red_circle:", up = ":large_green_circle:" }
  local n = {}
  -- send(x): x is an event, a state or a string. Returns nothing; delivery is urlpoll.post's.
  function n.send(_, x)
    local e = event.normalize(x, "send")
    local icon = e.ok and icons.up or icons.down
    urlpoll.post(webhook, { text = (icon and icon .. " " or "") .. e.text })
  end
  return n
end

return M
