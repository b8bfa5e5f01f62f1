-- example script for Prometheus: serves /metrics, /probe and /healthz on 127.0.0.1:9464, with each URL's
-- labels on its series and a blackbox-style module for /probe. Usage:
--   urlpoll run scripts/prometheus.lua -- BASE_URL
-- (`--listen HOST:PORT` on the command line overrides `listen`). See README "Run as a service" for the
-- Prometheus scrape config.
local base = urlpoll.args[1] or "http://127.0.0.1:8080"

listen = "127.0.0.1:9464"
poll_interval = 60

-- /probe?target=URL&module=http_2xx polls URL once with these options, as blackbox_exporter does.
modules = {
  http_2xx = { method = "GET", expect = "2xx" },
}

urls = {
  { url = base .. "/healthy", name = "home page", labels = { team = "web", tier = 1 } },
  { url = base .. "/health.json", method = "GET", labels = { team = "db", tier = 2 } },
  { url = base .. "/failing", method = "GET", labels = { team = "web", tier = 3 } },
}
