-- example script: TCP ports. Each port is up when it accepts a connection; where the service speaks
-- first (SSH, SMTP) or answers a PING (Redis), its first line is checked too.
-- Usage: urlpoll run scripts/ports.lua -- HOST [SSH_PORT REDIS_PORT POSTGRES_PORT]
local host = urlpoll.args[1] or "127.0.0.1"
local ssh = urlpoll.args[2] or "22"
local redis = urlpoll.args[3] or "6379"
local postgres = urlpoll.args[4] or "5432"

timeout = 2

local function banner(pattern)
  return function(res)
    if res.body:find(pattern) then return "up" end
    return "down", string.format("unexpected reply %q", res.body:sub(1, 60))
  end
end

urls = {
  { url = "tcp://" .. host .. ":" .. ssh, name = "ssh", check = banner("^SSH%-2%.0%-") },
  { url = "tcp://" .. host .. ":" .. redis, name = "redis", send = "PING\r\n", check = banner("^%+PONG") },
  { url = "tcp://" .. host .. ":" .. postgres, name = "postgres" }, -- a connection is enough
}

function report(s)
  print(string.format("%-8s %-9s %-10s %s", s.state, s.name, s.status, s.detail or ""))
end
