-- urlpoll.alerts.webhook: any HTTP receiver, with a body you template.
-- `body` is a string or a table; every "{{field}}" in it (in a table, in every string inside it) is
-- replaced by that field of the event (kind, ok, key, url, name, status, detail, title, text, at,
-- error_count, count). A table is sent as JSON, a string as is (set its content type in `headers`).
-- Without a body the event's fields themselves are sent as JSON. In `url`, the values are percent-encoded
-- (RFC 3986 §2.3: all but letters, digits and -._~), so a URL or name lands in one path segment or query value.
--
--   local hook = require("urlpoll.alerts.webhook").new{ url = "http://127.0.0.1:9000/alerts",
--     body = { summary = "{{text}}", severity = "page", source = "{{url}}" } }
local event = require "urlpoll.alerts.event"
local M = {}

local fields = { "kind", "ok", "key", "url", "name", "status", "detail", "title", "text", "at", "error_count", "count" }

-- percent(s): s with every byte but letters, digits and -._~ written as %XX (RFC 3986 §2.1, §2.3).
local function percent(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
M.percent = percent

-- fill(template, event [, encode]): the template with each {{field}} replaced, through `encode` if given.
local function fill(template, e, encode)
  if type(template) == "string" then
    return (template:gsub("{{%s*([%w_]+)%s*}}", function(name)
      local v = e[name]
      if v == nil then return "" end
      return encode and encode(tostring(v)) or tostring(v)
    end))
  elseif type(template) == "table" then
    local out = {}
    for k, v in pairs(template) do out[fill(k, e, encode)] = fill(v, e, encode) end
    return out
  end
  return template
end
M.fill = fill

-- new{ url = URL [, body = string | table] [, headers = { name = value }] } -> notifier
function M.new(opts)
  local who = "urlpoll.alerts.webhook"
  opts = event.options(opts, who)
  local url = event.need(opts, "url", who)
  if opts.body ~= nil and type(opts.body) ~= "string" and type(opts.body) ~= "table" then
    event.raise(who .. ": option 'body' must be a string or a table template (got " .. type(opts.body) .. ")")
  end
  local n = {}
  function n.send(_, x)
    local e = event.normalize(x, "send")
    local body = opts.body
    if body == nil then
      body = {}
      for _, f in ipairs(fields) do body[f] = e[f] end
    else
      body = fill(body, e)
    end
    urlpoll.post(fill(url, e, percent), body, opts.headers)
  end
  return n
end

return M
