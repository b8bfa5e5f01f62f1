-- wrk script for bench/run: HEAD requests, as urlpoll sends by default.
wrk.method = "HEAD"
