-- example script that alerts a webhook with Slack-style JSON after 3 consecutive failures of a URL, and
-- once more when it recovers. Usage: urlpoll run scripts/alert-webhook.lua -- BASE_URL WEBHOOK_URL
-- (the webhook also comes from $WEBHOOK_URL). Delivery never delays polling; failures are retried.
local base = urlpoll.args[1] or "http://127.0.0.1:8080"
local webhook = urlpoll.args[2] or os.getenv("WEBHOOK_URL") or "http://127.0.0.1:9000/hook"

poll_interval = 30
urls = { base .. "/healthy", base .. "/flapping" }

local alerted = {} -- url -> true while an outage has been announced

-- on_result runs after every poll: the third failure in a row raises the alert, once per outage.
function on_result(s)
  if s.error_count == 3 then
    alerted[s.url] = true
    urlpoll.post(webhook, {
      text = string.format(":red_circle: %s is down: %s (%s)", s.name, s.status, s.detail or ""),
    })
  end
end

-- on_change runs when a URL's status changes: a recovery closes an announced outage.
function on_change(s, prev)
  if s.ok and alerted[s.url] then
    alerted[s.url] = nil
    urlpoll.post(webhook, {
      text = string.format(":large_green_circle: %s recovered: %s after %d polls", s.name, s.status, s.polls),
    })
  end
end
