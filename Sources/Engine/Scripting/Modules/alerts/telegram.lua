-- urlpoll.alerts.telegram: a Telegram bot's sendMessage.
-- POST {api}/bot<token>/sendMessage with { chat_id, text } (both required; text at most 4096
-- characters), as documented at https://core.telegram.org/bots/api#sendmessage.
--
--   local tg = require("urlpoll.alerts.telegram").new{ token = os.getenv("TG_TOKEN"), chat_id = "-1001234" }
local event = require "urlpoll.alerts.event"
local M = {}

-- new{ token = BOT_TOKEN, chat_id = ID [, silent_recovery = false] [, api = "https://api.telegram.org"] } -> notifier
function M.new(opts)
  local who = "urlpoll.alerts.telegram"
  opts = event.options(opts, who)
  local token = event.need(opts, "token", who)
  local chat = opts.chat_id
  if type(chat) == "number" then chat = string.format("%d", chat) end
  if type(chat) ~= "string" or chat == "" then
    event.raise(who .. ": option 'chat_id' must be a chat id or @channel name (got " .. type(chat) .. ")")
  end
  local url = (opts.api or "https://api.telegram.org"):gsub("/+$", "") .. "/bot" .. token .. "/sendMessage"
  local n = {}
  function n.send(_, x)
    local e = event.normalize(x, "send")
    urlpoll.post(url, {
      chat_id = chat, text = event.cut((e.ok and "✅ " or "🔴 ") .. e.text, 4096),
      disable_notification = (e.ok and opts.silent_recovery) or nil,
    })
  end
  return n
end

return M
