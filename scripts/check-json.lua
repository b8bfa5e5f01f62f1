-- example script with a response-aware check: it parses a JSON health document, reports "down" when a
-- dependency is down, "degraded" when the answer is slow, and "up" otherwise.
-- Usage: urlpoll run scripts/check-json.lua -- BASE_URL
local base = urlpoll.args[1] or "http://127.0.0.1:8080"

urls = {
  { url = base .. "/health.json?db=up", name = "api" },
  { url = base .. "/health.json?db=down", name = "api-db-down" },
  { url = base .. "/health.json?db=up&delay=1500", name = "api-slow" },
}

local slow = 1.0 -- seconds

function check(res)
  if res.code ~= 200 then return "down", "status " .. res.status end
  local ok, doc = pcall(urlpoll.json.decode, res.body)
  if not ok then return "down", "not JSON: " .. doc end
  for name, state in pairs(doc.checks or {}) do
    if state ~= "up" then return "down", name .. " is " .. state end
  end
  if res.latency > slow then return "degraded", string.format("slow: %.0f ms", res.latency * 1000) end
  return "up", "version " .. tostring(doc.version)
end
