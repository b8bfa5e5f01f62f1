-- urlpoll.alerts.discord: Discord webhooks.
-- Payload: { content, username?, allowed_mentions } posted as JSON to the webhook URL, as documented at
-- https://discord.com/developers/docs/resources/webhook#execute-webhook: one of content, embeds, ... is
-- required; content is at most 2000 characters. allowed_mentions = { parse = {} } keeps a status text
-- such as "@everyone" from pinging anyone.
--
--   local discord = require("urlpoll.alerts.discord").new{ webhook = os.getenv("DISCORD_WEBHOOK") }
local event = require "urlpoll.alerts.event"
local M = {}

-- new{ webhook = URL [, username = "urlpoll"] } -> notifier
function M.new(opts)
  local who = "urlpoll.alerts.discord"
  opts = event.options(opts, who)
  local webhook = event.need(opts, "webhook", who)
  local n = {}
  function n.send(_, x)
    local e = event.normalize(x, "send")
    -- urlpoll.json writes an empty table as {}, and Discord needs "parse": [], so that part is spliced in.
    local json = urlpoll.json.encode{ content = event.cut((e.ok and "✅ " or "🔴 ") .. e.text, 2000), username = opts.username }
    urlpoll.post(webhook, json:sub(1, -2) .. ',"allowed_mentions":{"parse":[]}}', { ["Content-Type"] = "application/json" })
  end
  return n
end

return M
