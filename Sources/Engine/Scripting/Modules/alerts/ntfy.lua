-- urlpoll.alerts.ntfy: ntfy.sh or a self-hosted ntfy server.
-- Publishes as JSON: POST {server}/ with { topic, message, title, priority (1-5), tags }, as documented
-- at https://docs.ntfy.sh/publish/#publish-as-json (topic is required). A token, when given, is sent as
-- "Authorization: Bearer <token>" (https://docs.ntfy.sh/publish/#access-tokens).
--
--   local ntfy = require("urlpoll.alerts.ntfy").new{ topic = "my-urlpoll-alerts" }
local event = require "urlpoll.alerts.event"
local M = {}

-- new{ topic = TOPIC [, server = "https://ntfy.sh"] [, token = TOKEN] [, priority = 4] } -> notifier
function M.new(opts)
  local who = "urlpoll.alerts.ntfy"
  opts = event.options(opts, who)
  local topic = event.need(opts, "topic", who)
  local server = (opts.server or "https://ntfy.sh"):gsub("/+$", "")
  local priority = opts.priority or 4
  if math.type(priority) ~= "integer" or priority < 1 or priority > 5 then
    event.raise(who .. ": option 'priority' must be an integer from 1 to 5 (got " .. tostring(priority) .. ")")
  end
  local headers = opts.token and { Authorization = "Bearer " .. opts.token } or nil
  local n = {}
  function n.send(_, x)
    local e = event.normalize(x, "send")
    urlpoll.post(server .. "/", {
      topic = topic, title = e.title, message = e.text,
      priority = e.ok and 3 or priority, tags = { e.ok and "white_check_mark" or "rotating_light" },
    }, headers)
  end
  return n
end

return M
