-- example script with a backoff that honours Retry-After: a URL answering 429 or 503 with a
-- Retry-After of N seconds is next polled after N seconds (capped at an hour); otherwise the seed's
-- linear backoff applies. Usage: urlpoll run scripts/retry-after.lua -- BASE_URL
local base = urlpoll.args[1] or "http://127.0.0.1:8080"

urls = { base .. "/healthy", base .. "/ratelimited" }

function backoff(r)
  local wait = tonumber(r.headers and r.headers["retry-after"] or nil)
  if (r.code == 429 or r.code == 503) and wait then return math.min(wait, 3600) end
  return r.default
end
