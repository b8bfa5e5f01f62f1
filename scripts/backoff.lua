-- example script that demonstrates a custom exponential backoff with a cap and jitter: a failing URL
-- waits between half and all of min(cap, interval * 2^error_count) seconds, so many URLs failing at once
-- do not all retry at the same moment. Healthy URLs poll every interval.
local base = urlpoll.args[1] or "http://127.0.0.1:8080"

poll_interval = 30
urls = { base .. "/healthy", base .. "/failing" }

local cap = 600

function backoff(r)
  if r.ok then return r.interval end
  local ceiling = math.min(cap, r.interval * 2 ^ r.error_count)
  return ceiling / 2 + math.random() * ceiling / 2
end
