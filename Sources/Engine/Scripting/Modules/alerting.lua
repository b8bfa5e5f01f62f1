-- urlpoll.alerting: the alerting rules every operator rewrites, as one policy object.
-- Embedded in the urlpoll binary; a file urlpoll/alerting.lua on package.path wins.
--
--   local alerting = require "urlpoll.alerting"
--   local pd = require("urlpoll.alerts.pagerduty").new{ routing_key = os.getenv("PD_ROUTING_KEY") }
--   local policy = alerting.policy{ notify = pd, threshold = alerting.n_of_m(3, 5),
--     flap = { changes = 4, window = 600 }, maintenance = { file = "/etc/urlpoll/maintenance" } }
--   on_result = policy.on_result
--
-- Time comes from each state's checked_at (seconds since the epoch), never from a clock of its own, so
-- the rules behave the same when states are replayed.
local event = require "urlpoll.alerts.event"
local M = {}

local function fail(msg) event.raise("urlpoll.alerting: " .. msg) end

local function positive_integer(v, what)
  if math.type(v) ~= "integer" or v < 1 then
    fail(what .. " must be a positive integer (got " .. (v == nil and "nil" or type(v) .. " " .. tostring(v)) .. ")")
  end
  return v
end

local function seconds(v, what)
  if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
    fail(what .. " must be a number of seconds >= 0 (got " .. (v == nil and "nil" or type(v) .. " " .. tostring(v)) .. ")")
  end
  return v
end

-- after(n): a URL is down for alerting once n polls in a row have failed (s.error_count >= n), and up
-- again at its first successful poll.
function M.after(n)
  n = positive_integer(n, "after(n): n")
  return {
    describe = "after " .. n .. " failures",
    update = function(_, mem, s)
      if not s.ok then return (s.error_count or 0) >= n end
      return false
    end,
  }
end

-- n_of_m(n, m): a URL is down for alerting once n of its last m polls have failed, and up again when
-- its latest poll succeeded and fewer than n of the last m failed (so 3 of 5 needs 3 good polls to
-- recover from 3 bad ones).
function M.n_of_m(n, m)
  n = positive_integer(n, "n_of_m(n, m): n")
  m = positive_integer(m, "n_of_m(n, m): m")
  if n > m then fail("n_of_m(n, m): n must be at most m (got " .. n .. " of " .. m .. ")") end
  return {
    describe = n .. " of " .. m .. " failures",
    update = function(_, mem, s)
      local window = mem.window or {}
      mem.window = window
      window[#window + 1] = not s.ok
      if #window > m then table.remove(window, 1) end
      local failed = 0
      for _, f in ipairs(window) do if f then failed = failed + 1 end end
      if failed >= n then return true end
      if mem.down and not s.ok then return true end -- never recover on a failing poll
      return false
    end,
  }
end

-- "HH:MM-HH:MM" (UTC, daily; may wrap past midnight) -> start and end, in seconds of the day.
local function daily(spec)
  local h1, m1, h2, m2 = spec:match("^(%d%d?):(%d%d)%-(%d%d?):(%d%d)$")
  if not h1 then fail("maintenance: '" .. spec .. "' is not a daily window such as \"02:00-03:30\" (UTC)") end
  local a, b = tonumber(h1) * 3600 + tonumber(m1) * 60, tonumber(h2) * 3600 + tonumber(m2) * 60
  if a >= 86400 or b > 86400 then fail("maintenance: '" .. spec .. "' has an hour past 24:00") end
  return a, b
end

-- maintenance(spec): a function(t) -> true while t (seconds since the epoch) is inside a window.
-- spec is a list of windows, each { from = t1, to = t2 } (seconds since the epoch) or "HH:MM-HH:MM"
-- (every day, UTC), plus optionally file = PATH: maintenance while that file exists.
function M.maintenance(spec)
  if type(spec) ~= "table" then fail("maintenance must be a table of windows (got " .. type(spec) .. ")") end
  local windows = {}
  for i, w in ipairs(spec) do
    if type(w) == "string" then
      local a, b = daily(w)
      windows[i] = function(t)
        local d = t % 86400
        if a <= b then return d >= a and d < b end
        return d >= a or d < b
      end
    elseif type(w) == "table" then
      local from, to = seconds(w.from, "maintenance[" .. i .. "].from"), seconds(w.to, "maintenance[" .. i .. "].to")
      windows[i] = function(t) return t >= from and t < to end
    else
      fail("maintenance[" .. i .. "] must be { from = t1, to = t2 } or \"HH:MM-HH:MM\" (got " .. type(w) .. ")")
    end
  end
  local file = spec.file
  if file ~= nil and type(file) ~= "string" then fail("maintenance.file must be a path (got " .. type(file) .. ")") end
  return function(t)
    for _, inside in ipairs(windows) do if inside(t) then return true end end
    if file then
      local f = io.open(file, "r")
      if f then f:close() return true end
    end
    return false
  end
end

-- The notify option: a notifier (a table with send), a function(event), or a list of them.
local function sender(notify)
  local function one(x, i)
    if type(x) == "function" then return x end
    if type(x) == "table" and type(x.send) == "function" then return function(e) x:send(e) end end
    fail("notify" .. (i and "[" .. i .. "]" or "") .. " must be a notifier (such as require(\"urlpoll.alerts.slack\").new{...}), a function(event) or a list of them (got " .. type(x) .. ")")
  end
  if type(notify) == "table" and notify.send == nil and #notify > 0 then
    local all = {}
    for i, x in ipairs(notify) do all[i] = one(x, i) end
    return function(e) for _, f in ipairs(all) do f(e) end end
  end
  return one(notify)
end

-- policy{ notify, threshold, recovery, flap, remind, depends_on, maintenance, group } -> policy
--   notify      where events go (required): a notifier, a function(event), or a list of them
--   threshold   after(n) or n_of_m(n, m); default after(1)
--   recovery    send an "up" event when an alerted URL recovers (default true)
--   flap        { changes = k, window = w }: while a URL changed up/down more than k times in the last
--               w seconds, send nothing for it; when it settles, one "settled" event with its state
--   remind      { every = seconds, max = count }: "reminder" events while an alerted URL stays down
--   depends_on  { [name or URL] = parent name or URL }: no alerts for a URL while its parent's last poll
--               failed
--   maintenance a maintenance(spec) table: no alerts (and no reminders) inside a window; recoveries
--               of outages already announced are still sent
--   group       true: hold the tick's events and send one "down" and one "up" event per tick from
--               policy.report (set report = policy.report, or call it from your own report)
-- The policy has on_result(s, prev) (set on_result = policy.on_result) and report(s).
function M.policy(opts)
  if type(opts) ~= "table" then fail("policy expects a table of options (got " .. type(opts) .. ")") end
  local known = { notify = 1, threshold = 1, recovery = 1, flap = 1, remind = 1, depends_on = 1, maintenance = 1, group = 1 }
  for k in pairs(opts) do
    if not known[k] then fail("policy: unknown option '" .. tostring(k) .. "' (known: notify, threshold, recovery, flap, remind, depends_on, maintenance, group)") end
  end
  if opts.notify == nil then fail("policy: option 'notify' is required") end
  local send = sender(opts.notify)
  local threshold = opts.threshold or M.after(1)
  if type(threshold) ~= "table" or type(threshold.update) ~= "function" then
    fail("policy: option 'threshold' must be alerting.after(n) or alerting.n_of_m(n, m)")
  end
  local recovery = opts.recovery ~= false
  local flap = opts.flap
  if flap ~= nil then
    if type(flap) ~= "table" then fail("policy: option 'flap' must be { changes = k, window = seconds }") end
    positive_integer(flap.changes, "flap.changes")
    seconds(flap.window, "flap.window")
  end
  local remind = opts.remind
  if remind ~= nil then
    if type(remind) ~= "table" then fail("policy: option 'remind' must be { every = seconds, max = count }") end
    seconds(remind.every, "remind.every")
    if remind.max ~= nil then positive_integer(remind.max, "remind.max") end
  end
  local parents = opts.depends_on or {}
  if type(parents) ~= "table" then fail("policy: option 'depends_on' must be a table of URL (or name) = parent") end
  local maintenance = opts.maintenance
  if type(maintenance) == "table" then maintenance = M.maintenance(maintenance) end
  local group = opts.group == true

  local memory = {}   -- url -> what the policy remembers of it
  local last_ok = {}  -- url and name -> whether its last poll succeeded
  local pending = {}  -- held events while grouping
  local policy = {}

  local function emit(e)
    if group then pending[#pending + 1] = e else send(e) end
  end

  local function parent_down(s)
    local parent = parents[s.url] or parents[s.name]
    return parent ~= nil and last_ok[parent] == false
  end

  -- Called after every poll (set on_result = policy.on_result).
  function policy.on_result(s, prev)
    local now = s.checked_at or urlpoll.now()
    last_ok[s.url] = s.ok
    if s.name then last_ok[s.name] = s.ok end
    local mem = memory[s.url]
    if not mem then
      mem = { changes = {} }
      memory[s.url] = mem
    end
    local down = threshold:update(mem, s)
    mem.down = down
    -- When the current run of failed polls began: an outage's length is counted from there.
    if s.ok then mem.failing_since = nil else mem.failing_since = mem.failing_since or now end

    -- Flapping: count up/down changes of the raw state in the last `window` seconds.
    if flap then
      if prev and prev.ok ~= s.ok then mem.changes[#mem.changes + 1] = now end
      while mem.changes[1] and mem.changes[1] <= now - flap.window do table.remove(mem.changes, 1) end
      if #mem.changes > flap.changes then
        mem.flapping = true
        mem.flaps = (mem.flaps or 0) + (prev and prev.ok ~= s.ok and 1 or 0)
        return
      elseif mem.flapping then
        mem.flapping = false
        local changes = mem.flaps
        mem.flaps = nil
        if maintenance and maintenance(now) and not mem.alerted then return end
        mem.alerted = down
        mem.down_since = down and (mem.down_since or mem.failing_since or now) or nil
        mem.reminded, mem.last_notice = 0, now
        emit(event.from("settled", s, { ok = not down, changes = changes }))
        return
      end
    end

    if down and not mem.alerted then
      if maintenance and maintenance(now) then return end
      if parent_down(s) then return end
      mem.alerted, mem.down_since, mem.reminded, mem.last_notice = true, mem.failing_since or now, 0, now
      emit(event.from("down", s))
    elseif down and mem.alerted then
      if remind and (remind.max == nil or mem.reminded < remind.max) and now - mem.last_notice >= remind.every
        and not (maintenance and maintenance(now)) then
        mem.reminded, mem.last_notice = mem.reminded + 1, now
        emit(event.from("reminder", s, { down_for = now - mem.down_since, reminder = mem.reminded }))
      end
    elseif not down and mem.alerted then
      mem.alerted = false
      if recovery then emit(event.from("up", s, { down_for = now - (mem.down_since or now) })) end
      mem.down_since = nil
    end
  end

  -- Sends the tick's held events when grouping: one for everything that went down (or is still down:
  -- reminders), one for everything that recovered. Call it from report (or set report = policy.report).
  function policy.report(s)
    if not s or s.index == s.count then policy.flush() end
  end

  -- Sends what grouping holds now.
  function policy.flush()
    if #pending == 0 then return end
    local downs, ups = {}, {}
    for _, e in ipairs(pending) do
      if e.ok then ups[#ups + 1] = e else downs[#downs + 1] = e end
    end
    pending = {}
    if #downs > 0 then send(event.group(downs)) end
    if #ups > 0 then send(event.group(ups)) end
  end

  -- Whether the policy has announced an outage of `url` that has not recovered.
  function policy.alerted(url)
    return memory[url] ~= nil and memory[url].alerted == true
  end

  return policy
end

return M
