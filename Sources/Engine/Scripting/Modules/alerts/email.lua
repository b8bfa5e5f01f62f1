-- urlpoll.alerts.email: mail through the local sendmail (Postfix, Exim, msmtp, OpenSMTPD all install one).
-- Runs `sendmail -t -i` through urlpoll.exec with an RFC 5322 message on its standard input:
-- From, To, Subject (RFC 2047 encoded when not ASCII), Date, MIME-Version, a UTF-8 text/plain body.
-- -t takes the recipients from the To header and -i keeps a lone "." line from ending the message, as
-- documented in sendmail(8) (https://www.postfix.org/sendmail.1.html).
--
--   local mail = require("urlpoll.alerts.email").new{ to = "ops@example.org", from = "urlpoll@example.org" }
local event = require "urlpoll.alerts.event"
local M = {}

local b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  return ((s:gsub(".", function(c)
    local bits, byte = "", c:byte()
    for i = 8, 1, -1 do bits = bits .. ((byte >> (i - 1)) & 1) end
    return bits
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(bits)
    if #bits < 6 then return "" end
    local v = 0
    for i = 1, 6 do v = v * 2 + (bits:byte(i) - 48) end
    return b64:sub(v + 1, v + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end

-- A header value on one line; RFC 2047 "encoded-word" when it is not plain ASCII.
local function header(value)
  value = tostring(value):gsub("[\r\n]+", " ")
  if value:find("[\128-\255]") then return "=?UTF-8?B?" .. base64(value) .. "?=" end
  return value
end
M.header = header

-- new{ to = ADDRESS or { ADDRESS, ... }, from = ADDRESS [, subject_prefix = "[urlpoll] "]
--      [, sendmail = { "/usr/sbin/sendmail" }] } -> notifier
function M.new(opts)
  local who = "urlpoll.alerts.email"
  opts = event.options(opts, who)
  local to = opts.to
  if type(to) == "string" then to = { to } end
  if type(to) ~= "table" or #to == 0 then
    event.raise(who .. ": option 'to' must be an address or a list of addresses (got " .. type(opts.to) .. ")")
  end
  local from = event.need(opts, "from", who)
  local prefix = opts.subject_prefix or "[urlpoll] "
  local argv = {}
  for i, a in ipairs(opts.sendmail or { "/usr/sbin/sendmail" }) do argv[i] = a end
  argv[#argv + 1] = "-t"
  argv[#argv + 1] = "-i"
  local n = {}
  function n.send(_, x)
    local e = event.normalize(x, "send")
    local lines = { e.text, "" }
    for _, one in ipairs(event.each(e)) do
      if one.url then lines[#lines + 1] = string.format("%s  %s  %s", one.name, one.status or "", one.url) end
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = "-- urlpoll " .. urlpoll.version
    local message = table.concat({
      "From: " .. header(from),
      "To: " .. header(table.concat(to, ", ")),
      "Subject: " .. header(prefix .. e.title),
      "Date: " .. os.date("!%a, %d %b %Y %H:%M:%S +0000", math.floor(e.at)),
      "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: 8bit",
      "",
      table.concat(lines, "\n"),
      "",
    }, "\n")
    urlpoll.exec(argv, { stdin = message })
  end
  return n
end

return M
