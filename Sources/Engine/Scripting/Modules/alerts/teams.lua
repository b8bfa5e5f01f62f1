-- urlpoll.alerts.teams: Microsoft Teams, through a Workflows "When a Teams webhook request is received"
-- flow (the Office 365 connectors are retired). Workflows accept Adaptive Cards only, as documented at
-- https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
-- Payload: { type = "message", attachments = { { contentType = "application/vnd.microsoft.card.adaptive",
-- content = <an AdaptiveCard, https://adaptivecards.io/explorer/AdaptiveCard.html> } } }.
--
--   local teams = require("urlpoll.alerts.teams").new{ webhook = os.getenv("TEAMS_WORKFLOW_URL") }
local event = require "urlpoll.alerts.event"
local M = {}

-- new{ webhook = URL } -> notifier
function M.new(opts)
  local who = "urlpoll.alerts.teams"
  opts = event.options(opts, who)
  local webhook = event.need(opts, "webhook", who)
  local n = {}
  function n.send(_, x)
    local e = event.normalize(x, "send")
    local facts = {}
    for _, one in ipairs(event.each(e)) do
      if one.url then facts[#facts + 1] = { title = one.name, value = (one.status or "") .. " — " .. one.url } end
    end
    local body = {
      { type = "TextBlock", text = e.title, weight = "Bolder", size = "Medium", wrap = true,
        color = e.ok and "Good" or "Attention" },
      { type = "TextBlock", text = e.text, wrap = true },
    }
    if #facts > 0 then body[#body + 1] = { type = "FactSet", facts = facts } end
    urlpoll.post(webhook, {
      type = "message",
      attachments = { {
        contentType = "application/vnd.microsoft.card.adaptive",
        content = {
          ["$schema"] = "http://adaptivecards.io/schemas/adaptive-card.json",
          type = "AdaptiveCard", version = "1.4", body = body,
        },
      } },
    })
  end
  return n
end

return M
