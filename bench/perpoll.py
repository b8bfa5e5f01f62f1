"""Per-poll costs of urlpoll builds side by side, for a noisy machine: each build's max-rate run (1,000 URLs,
interval 0, as bench/run's) under `perf stat`, the builds interleaved run by run, medians of --repeat runs.
Prints polls/s, CPU ms per 1,000 polls (perf's task-clock) and context switches per poll (thread wake-ups),
and writes the table to bench/results/DATE.perpoll.md. Starts nginx on 127.0.0.1:18480 like bench/run.

    python3 bench/perpoll.py BINARY[,BINARY...] [--pollers 2,16,64] [--repeat 3] [--seconds 6] [--port 18480]

--port puts nginx (and the URLs) on another loopback port, beside another engineer's bench on 18480.

This VM's perf has no hardware counters (`instructions` is "not supported"), so CPU time per poll stands in.
"""
import argparse, datetime, os, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def one_run(workdir, binary, pollers, seconds):
    path = os.path.join(workdir, f"rate-{pollers}.lua")
    open(path, "w").write(
        f"pollers = {pollers}\npoll_interval = 0\nerror_backoff = 0\nstatus_interval = 3600\n"
        f"urls = {{}}\nfor i = 1, 1000 do urls[i] = '{bench.BASE}/u/' .. i end\n" + bench.COUNT_REPORT)
    stats_path = os.path.join(workdir, "perf.txt")
    perf = subprocess.Popen(
        ["perf", "stat", "-x,", "-o", stats_path, "-e", "task-clock,context-switches", binary, "run", path,
         "--log-level", "error"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    child = int(subprocess.run(["pgrep", "-P", str(perf.pid)], capture_output=True, text=True).stdout.split()[0])
    start = time.monotonic()
    time.sleep(seconds)
    os.kill(child, signal.SIGINT)
    out, _ = perf.communicate(timeout=60)
    wall = time.monotonic() - start + 0.5
    polls = int([line for line in out.splitlines() if line.startswith("TICK")][-1].split()[2])
    stats = {}
    for line in open(stats_path):
        fields = line.strip().split(",")
        if len(fields) > 3 and fields[0][:1].isdigit():
            stats[fields[2]] = float(fields[0])
    return polls / wall, stats["task-clock"] / polls * 1000, stats["context-switches"] / polls


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binaries")
    parser.add_argument("--pollers", default="2,16,64")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--port", type=int, default=18480)
    args = parser.parse_args()
    bench.BASE = f"http://127.0.0.1:{args.port}"
    binaries = args.binaries.split(",")
    pool_sizes = [int(p) for p in args.pollers.split(",")]
    workdir = tempfile.mkdtemp(prefix="urlpoll-perpoll-")
    nginx = bench.start_nginx(workdir, args.port)
    runs = {}
    try:
        for r in range(args.repeat):
            for pollers in pool_sizes:
                for binary in binaries:
                    row = one_run(workdir, binary, pollers, args.seconds)
                    runs.setdefault((pollers, binary), []).append(row)
                    print(f"run {r + 1}, {pollers} pollers, {binary}: {row[0]:,.0f} polls/s, "
                          f"{row[1]:.1f} CPU ms/1k polls, {row[2]:.3f} context switches/poll", flush=True)
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)
    lines = ["| pollers | build | polls/s | CPU ms per 1,000 polls | context switches per poll |",
             "|---|---|---|---|---|"]
    for pollers in pool_sizes:
        for binary in binaries:
            rows = runs[(pollers, binary)]
            rate, cpu, switches = (statistics.median(row[i] for row in rows) for i in range(3))
            lines.append(f"| {pollers} | {binary} | {rate:,.0f} | {cpu:.1f} | {switches:.3f} |")
    date = datetime.datetime.now().isoformat(timespec="seconds")
    text = (f"urlpoll per-poll costs, {date}, {os.cpu_count()} cores, median of {args.repeat} interleaved runs of "
            f"{args.seconds:g} s (python3 bench/perpoll.py {' '.join(sys.argv[1:])})\n\n" + "\n".join(lines) + "\n")
    print("\n" + text)
    name = os.path.join(bench.ROOT, "bench", "results", date.replace(":", "") + ".perpoll.md")
    open(name, "w").write(text)
    print(f"written to {os.path.relpath(name, bench.ROOT)}")


if __name__ == "__main__":
    main()
