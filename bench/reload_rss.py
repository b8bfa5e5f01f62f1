#!/usr/bin/env python3
"""Memory after reloads (issue 11, item 11): runs `urlpoll run` on a list of URLs, reloads it with SIGHUP
N times, each time with a same-sized list where half the URLs are new, and samples VmRSS from
/proc/PID/status after each reload has settled. Passes when the RSS after the last reload is within 10 %
of the RSS after the first. Loopback only: every URL points at a closed port on 127.0.0.1 (polls fail at
once as `refused`), so no traffic leaves the machine.

    bench/reload_rss.py [--binary .build/release/urlpoll] [--urls 50000] [--reloads 20] [--settle 5]
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def write_list(path, port, count, generation):
    half = count // 2
    with open(path + ".tmp", "w") as f:
        for i in range(half):
            f.write(f"http://127.0.0.1:{port}/kept/{i}\n")
        for i in range(count - half):
            f.write(f"http://127.0.0.1:{port}/g{generation}/{i}\n")
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "urlpoll"))
    parser.add_argument("--urls", type=int, default=50_000)
    parser.add_argument("--reloads", type=int, default=20)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait after each reload")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="urlpoll-reload-")
    port = closed_port()
    listing = os.path.join(work, "urls.txt")
    script = os.path.join(work, "reload.lua")
    write_list(listing, port, args.urls, 0)
    with open(script, "w") as f:
        f.write(
            "pollers = 16\npoll_interval = 30\nerror_backoff = 0\nstatus_interval = 3600\n"
            f'urls = {{}}\nfor line in io.lines("{listing}") do urls[#urls + 1] = line end\n'
        )
    log = open(os.path.join(work, "stderr.log"), "w+")
    process = subprocess.Popen([args.binary, "run", script], stdout=subprocess.DEVNULL, stderr=log)
    samples = []
    try:
        time.sleep(args.settle)
        samples.append(rss_kb(process.pid))
        for generation in range(1, args.reloads + 1):
            write_list(listing, port, args.urls, generation)
            process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 60
            while True:
                log.seek(0)
                if log.read().count("reloaded ") >= generation:
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"reload {generation} did not finish")
                time.sleep(0.1)
            time.sleep(args.settle)
            samples.append(rss_kb(process.pid))
            print(f"reload {generation:2}: VmRSS {samples[-1] / 1024:.0f} MB", flush=True)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    first, last = samples[1], samples[-1]
    print(f"start {samples[0] / 1024:.0f} MB, after reload 1 {first / 1024:.0f} MB, "
          f"after reload {args.reloads} {last / 1024:.0f} MB ({(last / first - 1) * 100:+.1f} %)")
    sys.exit(0 if last <= first * 1.10 else 1)


if __name__ == "__main__":
    main()
