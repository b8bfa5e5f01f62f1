-- example script that is the seed's program as a config: Go's urlpoll.go with its three URLs,
-- 2 pollers, a 60 s poll interval, a 10 s status interval and the linear backoff
-- poll_interval + error_backoff * error_count (the default when no backoff hook is defined).
pollers = 2
poll_interval = 60
status_interval = 10
error_backoff = 10

urls = {
  "http://www.google.com/",
  "http://golang.org/",
  "http://blog.golang.org/",
}
