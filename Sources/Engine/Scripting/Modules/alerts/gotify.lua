-- urlpoll.alerts.gotify: a Gotify server's message API.
-- POST {server}/message with { title, message, priority } and the application token in the
-- "X-Gotify-Key" header, as documented at https://gotify.net/docs/pushmsg and the API reference
-- https://gotify.net/api-docs#/message/createMessage (message is required; priority 0-10).
--
--   local gotify = require("urlpoll.alerts.gotify").new{ server = "https://push.example.org", token = os.getenv("GOTIFY_TOKEN") }
local event = require "urlpoll.alerts.event"
local M = {}

-- new{ server = URL, token = APP_TOKEN [, priority = 8] } -> notifier
function M.new(opts)
  local who = "urlpoll.alerts.gotify"
  opts = event.options(opts, who)
  local server = event.need(opts, "server", who):gsub("/+$", "")
  local headers = { ["X-Gotify-Key"] = event.need(opts, "token", who) }
  local priority = opts.priority or 8
  if math.type(priority) ~= "integer" or priority < 0 or priority > 10 then
    event.raise(who .. ": option 'priority' must be an integer from 0 to 10 (got " .. tostring(priority) .. ")")
  end
  local n = {}
  function n.send(_, x)
    local e = event.normalize(x, "send")
    urlpoll.post(server .. "/message", { title = e.title, message = e.text, priority = e.ok and 4 or priority }, headers)
  end
  return n
end

return M
