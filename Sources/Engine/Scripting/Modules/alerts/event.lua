-- urlpoll.alerts.event: the one event shape every provider in urlpoll.alerts sends, and the helpers
-- they share. Embedded in the urlpoll binary; a file urlpoll/alerts/event.lua on package.path wins.
--
-- An event is a table:
--   kind    "down", "up", "reminder" or "settled" (wording only), or any word a script picks
--   ok      true when the event closes an outage (providers resolve, close, colour it green)
--   key     a stable key per URL ("urlpoll:" .. url): PagerDuty's dedup_key, Opsgenie's alias
--   url, name, status, detail, error_count, since, checked_at   copied from the state
--   title   one short line ("api is down"); text: one line with the status and detail
--   at      seconds since the epoch (the state's checked_at)
--   events  for a grouped event: the per-URL events it stands for (then url and name are nil)
local M = {}

local function label(s) return s.name or s.url or "?" end

-- "5m 3s" for 303 seconds.
function M.duration(seconds)
  seconds = math.floor((seconds or 0) + 0.5)
  if seconds < 60 then return seconds .. "s" end
  if seconds < 3600 then return string.format("%dm %ds", seconds // 60, seconds % 60) end
  if seconds < 86400 then return string.format("%dh %dm", seconds // 3600, seconds % 3600 // 60) end
  return string.format("%dd %dh", seconds // 86400, seconds % 86400 // 3600)
end

-- An event of `kind` for the state `s` (the table hooks receive). `extra` fields are copied in.
function M.from(kind, s, extra)
  local e = {
    kind = kind, url = s.url, name = label(s), status = s.status, detail = s.detail,
    error_count = s.error_count, since = s.since, checked_at = s.checked_at, at = s.checked_at or urlpoll.now(),
    key = "urlpoll:" .. tostring(s.url or label(s)), state = s.state,
  }
  if kind == "up" then e.ok = true elseif kind == "settled" then e.ok = s.ok == true else e.ok = false end
  for k, v in pairs(extra or {}) do e[k] = v end
  local why = e.status or ""
  if e.detail and e.detail ~= "" and e.detail ~= e.status then why = why .. " (" .. e.detail .. ")" end
  if kind == "down" then
    e.title = e.name .. " is down"
    e.text = e.title .. ": " .. why
  elseif kind == "up" then
    e.title = e.name .. " is up"
    e.text = e.title .. ": " .. (e.status or "")
    if e.down_for then e.text = e.text .. " after " .. M.duration(e.down_for) .. " down" end
  elseif kind == "reminder" then
    e.title = e.name .. " is still down"
    e.text = e.title .. ": " .. why
    if e.down_for then e.text = e.text .. " for " .. M.duration(e.down_for) end
  elseif kind == "settled" then
    e.title = e.name .. " stopped flapping and is " .. (e.ok and "up" or "down")
    e.text = e.title .. ": " .. why
    if e.changes then e.text = e.text .. " (" .. e.changes .. " changes while flapping)" end
  else
    e.title = e.name .. ": " .. tostring(kind)
    e.text = e.title .. ": " .. why
  end
  return e
end

-- One event for many: every per-URL event of one tick, all down or all up.
function M.group(events)
  local ok = events[1].ok
  local names = {}
  for i, e in ipairs(events) do names[i] = e.name .. " (" .. (e.status or "") .. ")" end
  local n = #events
  local title
  if ok then
    title = n == 1 and "1 URL is up" or n .. " URLs are up"
  else
    title = n == 1 and "1 URL is down" or n .. " URLs are down"
  end
  return {
    kind = ok and "up" or "down", ok = ok, title = title, text = title .. ": " .. table.concat(names, ", "),
    events = events, count = n, at = events[n].at, key = "urlpoll:group",
  }
end

-- What a provider's send(x) accepts: an event, a state (down unless ok), or a string (an "info" event).
-- `who` names the caller in errors, which point at the script line that called send.
function M.normalize(x, who)
  if type(x) == "string" then
    return { kind = "info", ok = false, title = x, text = x, key = "urlpoll:info", at = urlpoll.now() }
  end
  if type(x) ~= "table" then
    M.raise("bad argument #1 to '" .. who .. "' (an event, a state or a string expected, got " .. type(x) .. ")")
  end
  if x.kind == nil and x.url ~= nil and x.ok ~= nil then return M.from(x.ok and "up" or "down", x) end
  if x.text == nil and x.title == nil then
    M.raise("bad argument #1 to '" .. who .. "' (the event has no text or title)")
  end
  local e = {}
  for k, v in pairs(x) do e[k] = v end
  e.text = e.text or e.title
  e.title = e.title or e.text
  e.key = e.key or ("urlpoll:" .. tostring(e.url or e.title))
  e.at = e.at or urlpoll.now()
  if e.ok == nil then e.ok = e.kind == "up" end
  return e
end

-- The per-URL events inside `e` (itself, unless it is a grouped event).
function M.each(e)
  return e.events or { e }
end

-- "file:line: " of the innermost caller outside urlpoll's modules: where a script's mistake is.
function M.where()
  for level = 2, 30 do
    local info = debug.getinfo(level, "Sl")
    if info == nil then break end
    if info.currentline > 0 and not info.source:find("urlpoll/alert", 1, true) and info.source ~= "=urlpoll" then
      return info.short_src .. ":" .. info.currentline .. ": "
    end
  end
  return ""
end

-- Raises `message` at the script's line that called into the module (see where).
function M.raise(message)
  error(M.where() .. message, 0)
end

-- Checks a provider option: a non-empty string.
function M.need(opts, field, who)
  local v = opts[field]
  if type(v) ~= "string" or v == "" then
    M.raise(who .. ": option '" .. field .. "' must be a non-empty string (got " .. (v == nil and "nil" or type(v) .. " " .. tostring(v)) .. ")")
  end
  return v
end

-- Checks that new() got a table of options.
function M.options(opts, who)
  if type(opts) ~= "table" then
    M.raise(who .. ": expected a table of options, such as new{ ... } (got " .. type(opts) .. ")")
  end
  return opts
end

-- Percent-encodes a string for a URL path segment or query value (RFC 3986 unreserved kept).
function M.escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- RFC 3339 UTC time for seconds since the epoch.
function M.timestamp(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t or urlpoll.now()))
end

-- Cuts `s` to at most `n` bytes, marking the cut with "…" (without splitting a UTF-8 sequence).
function M.cut(s, n)
  s = tostring(s or "")
  if #s <= n then return s end
  local cut = n - 3
  while cut > 0 and (s:byte(cut + 1) or 0) & 0xC0 == 0x80 do cut = cut - 1 end
  return s:sub(1, cut) .. "…"
end

return M
