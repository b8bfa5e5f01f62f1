-- example script: TLS certificates. Every site is degraded 21 days before its certificate (or any
-- certificate of its chain) expires, and down once it has expired or no longer verifies; one alert per
-- certificate per day while that lasts.
-- Usage: urlpoll run scripts/certificates.lua -- HOST:PORT... [CA.pem]
-- (default: two public sites on 443); a .pem argument trusts that private CA instead of the system's roots.
local sites, ca_file = {}, nil
for _, arg in ipairs(urlpoll.args) do
  if arg:match("%.pem$") then ca_file = arg else sites[#sites + 1] = arg end
end
if #sites == 0 then sites = { "example.com:443", "www.debian.org:443" } end

poll_interval = 3600 -- certificates change slowly; once an hour is plenty

urls = {}
for _, site in ipairs(sites) do
  urls[#urls + 1] = { url = "tls://" .. site, name = site, tls = { cert_expiry = 21, ca_file = ca_file } }
end

local alerted = {} -- certificate subject and day -> true

function on_result(s)
  if s.state == "up" then return end
  local subject = s.tls and s.tls.subject or s.name
  local key = subject .. " " .. os.date("!%Y-%m-%d", math.floor(s.checked_at))
  if alerted[key] then return end
  alerted[key] = true
  -- Swap print for urlpoll.post(WEBHOOK, { text = ... }) to send it somewhere.
  print(string.format("certificate alert: %s (%s): %s", s.name, subject, s.detail or s.status))
end
