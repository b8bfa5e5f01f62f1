"""bench/cluster.py: several urlpoll instances sharing one schedule in PostgreSQL (`run --store`, issue 15).

Starts a throwaway PostgreSQL (initdb in a temporary folder as the postgres user, a free loopback port,
pg_stat_statements loaded), nginx on loopback (access log with each request's time), and 3 `urlpoll run`
instances of the same script (N URLs at interval I); SIGKILLs one at T/2 and stops the others at T. Reports
polls done vs due (nginx's access log: the server's count), lateness p50/p99/max before and after the kill
(each instance's on_result prints every poll's lateness), PostgreSQL's CPU (/proc of its processes) and
statements per poll (pg_stat_statements), with a projection, to stdout and bench/results/DATE.cluster.md.

    python3 bench/cluster.py            # 100,000 URLs at 60 s for 180 s, one instance killed at 90 s
    python3 bench/cluster.py --quick    # 10,000 URLs at 20 s for 60 s, killed at 30 s

`--status-interval S` sets the script's status_interval (every instance reads the fleet's states that often),
`--kill-at S` when instance #0 is killed, `--pin` pins each instance to a core of its own (taskset; the
server and nginx on what is left), `--series` adds lateness per 5 s and PostgreSQL's lock waits (sampled
every second from pg_stat_activity) to the results, to set them against the instances' periodic work, with
each instance's polls and p99 per window. `--stagger S` starts instance n at n × S seconds; the default starts
them together, as a fleet deployed at once does (staggered, the first instance takes the whole first pass alone
until the others come: at 100,000 URLs on 2 cores that made the first 15 s worse, p99 2.1 s, not better).
`--logs DIR` keeps each instance's log, each poll's time and lateness (instanceN.samples) and PostgreSQL's
statements of 250 ms or more (server.log), to read a start's timeline.

Loopback only; bounded in time; stops and removes what it starts. Run as root (initdb runs as postgres).
"""
import argparse, datetime, os, shutil, signal, socket, subprocess, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
PG_VERSIONS = "/usr/lib/postgresql"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=30):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {limit} s")


def cpu_seconds(pid, children=False):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


class Postgres:
    """A throwaway cluster, as .ci/run makes one."""

    def __init__(self, workdir):
        versions = sorted((v for v in os.listdir(PG_VERSIONS) if v.isdigit()), key=int)
        if not versions:
            raise SystemExit("PostgreSQL is not installed (apt-get install -y postgresql)")
        self.bin = os.path.join(PG_VERSIONS, versions[-1], "bin")
        self.dir = os.path.join(workdir, "pg")
        self.port = free_port()
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres")
        self.as_postgres(["initdb", "-D", self.dir + "/data", "-U", "postgres", "-A", "trust", "--no-sync",
                          "-E", "UTF8"])
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                   "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all "
                   "-c log_min_duration_statement=250 -c log_line_prefix='%m [%p] '")
        self.as_postgres(["pg_ctl", "-D", self.dir + "/data", "-l", self.dir + "/server.log", "-o", options,
                          "-w", "-t", "60", "start"])
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"
        self.sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def as_postgres(self, argv):
        subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(self.bin, argv[0]), *argv[1:]],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def sql(self, query):
        out = subprocess.run([os.path.join(self.bin, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                              "postgres", "-d", "postgres", "-At", "-F", "\t", "-c", query],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise SystemExit(f"psql: {out.stderr.strip()}")
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    def pids(self):
        """The postmaster and its children (backends, background workers)."""
        master = int(open(self.dir + "/data/postmaster.pid").readline())
        pids = [master]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(entry))
                except (OSError, IndexError):
                    pass
        return pids

    def cpu(self):
        """CPU seconds of the server's processes, including children that exited (reaped by the postmaster)."""
        master, *children = self.pids()
        return cpu_seconds(master, children=True) + sum(cpu_seconds(pid) for pid in children)

    def stop(self):
        try:
            self.as_postgres(["pg_ctl", "-D", self.dir + "/data", "-m", "immediate", "-w", "-t", "30", "stop"])
        except (subprocess.SubprocessError, OSError):
            pass


NGINX = """worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    log_format t '$msec';
    access_log {d}/access.log t buffer=256k flush=1s;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200; }}
    }}
}}
"""

# Every poll's lateness on standard output; no report (the leader would print every URL each tick).
SCRIPT = """pollers = {pollers}
poll_interval = {interval}
status_interval = {status_interval}
timeout = 5
urls = {{}}
for i = 1, {urls} do urls[i] = "http://127.0.0.1:{port}/u/" .. i end
function on_result(s) print(string.format("L %.3f %.6f", urlpoll.now(), s.lateness)) end
function report(s) end
"""


class Instance:
    def __init__(self, urlpoll, script, store, workdir, n, cpu=None, log_level="warning"):
        self.n = n
        self.stderr = open(os.path.join(workdir, f"instance{n}.log"), "w")
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        self.proc = subprocess.Popen(pin + [urlpoll, "run", script, "--store", store, "--log-level", log_level],
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True, bufsize=1 << 16)
        self.started = time.time()
        self.samples = []  # (wall time, lateness s)
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self):
        for line in self.proc.stdout:
            if line.startswith("L "):
                _, at, late = line.split()
                self.samples.append((float(at), float(late)))

    def cpu(self):
        return cpu_seconds(self.proc.pid)


def quantiles(values):
    if not values:
        return "none"
    values = sorted(values)

    def q(p):
        return values[min(len(values) - 1, max(0, int(p * len(values) + 0.5) - 1))]

    return f"p50 {q(0.5) * 1000:.1f} ms, p99 {q(0.99) * 1000:.1f} ms, max {values[-1] * 1000:.1f} ms"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 URLs at 20 s for 60 s, kill at 30 s")
    parser.add_argument("--urls", type=int)
    parser.add_argument("--interval", type=float)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--pollers", type=int, default=64)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--urlpoll", default=os.path.join(ROOT, ".build", "release", "urlpoll"))
    parser.add_argument("--status-interval", type=float, default=10.0)
    parser.add_argument("--kill-at", type=float)
    parser.add_argument("--pin", action="store_true", help="each instance on a core of its own (taskset)")
    parser.add_argument("--stagger", type=float, default=0.0,
                        help="start instance n at n × this many seconds (0: all at once)")
    parser.add_argument("--series", action="store_true", help="lateness per 5 s and lock waits per second")
    parser.add_argument("--logs", help="copy the instances' logs (standard error) and each poll's written-back "
                        "time and lateness (instanceN.samples) into this folder")
    parser.add_argument("--log-level", default="warning", help="the instances' --log-level (warning)")
    args = parser.parse_args()
    urls = args.urls or (10_000 if args.quick else 100_000)
    interval = args.interval or (20.0 if args.quick else 60.0)
    seconds = args.seconds or (60.0 if args.quick else 180.0)
    kill_at = args.kill_at or seconds / 2

    load = os.getloadavg()[0]  # the machine's load before the run (1-minute average), for the record
    workdir = tempfile.mkdtemp(prefix="urlpoll-cluster-")
    os.chmod(workdir, 0o755)
    pg = nginx = None
    instances = []
    try:
        pg = Postgres(workdir)
        port = free_port()
        open(os.path.join(workdir, "nginx.conf"), "w").write(NGINX.format(d=workdir, port=port))
        nginx = subprocess.Popen(["nginx", "-c", os.path.join(workdir, "nginx.conf"), "-p", workdir],
                                 stderr=subprocess.DEVNULL)
        wait_port(port)
        script = os.path.join(workdir, "cluster.lua")
        open(script, "w").write(SCRIPT.format(pollers=args.pollers, interval=interval, urls=urls, port=port,
                                              status_interval=args.status_interval))
        if args.pin:
            # The server and nginx on the last core; instance n on core n (mod the cores).
            cores = os.cpu_count()
            for pid in pg.pids() + [nginx.pid]:
                subprocess.run(["taskset", "-pc", str(cores - 1), str(pid)], stdout=subprocess.DEVNULL)

        pg.sql("SELECT pg_stat_statements_reset()")
        pg_cpu0 = pg.cpu()
        xact0 = int(pg.sql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'")[0][0])
        start = time.time()
        if args.logs:
            os.makedirs(args.logs, exist_ok=True)
            open(os.path.join(args.logs, "start"), "w").write(f"{start:.3f}\n")
        for n in range(args.instances):
            time.sleep(max(0.0, start + n * args.stagger - time.time()))
            instances.append(Instance(args.urlpoll, script, pg.url, workdir, n,
                                      cpu=(n % os.cpu_count()) if args.pin else None, log_level=args.log_level))
        waits = []  # (wall time, backends waiting for a lock, active backends)
        sampling = threading.Event()

        def sample():
            while not sampling.wait(1.0):
                try:
                    row = pg.sql("SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), "
                                 "count(*) FILTER (WHERE state = 'active') - 1 FROM pg_stat_activity "
                                 "WHERE datname = 'postgres'")[0]
                    waits.append((time.time(), int(row[0]), int(row[1])))
                except (SystemExit, IndexError, ValueError, subprocess.SubprocessError):
                    pass

        sampler = threading.Thread(target=sample, daemon=True)
        if args.series:
            sampler.start()
        time.sleep(max(0.0, start + kill_at - time.time()))
        killed_at = time.time()
        victim = instances[0]
        victim_cpu = victim.cpu()
        victim.proc.kill()
        time.sleep(max(0.0, start + seconds - time.time()))
        end = time.time()
        sampling.set()
        pg_cpu = pg.cpu() - pg_cpu0
        cpus = [victim_cpu] + [i.cpu() for i in instances[1:]]
        statements = pg.sql(
            "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0) FROM pg_stat_statements "
            "WHERE query NOT LIKE '%pg_stat%'")[0]
        xact = int(pg.sql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'")[0][0]) - xact0
        for instance in instances[1:]:
            instance.proc.send_signal(signal.SIGTERM)
        for instance in instances:
            try:
                instance.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                instance.proc.kill()
                instance.proc.wait()
            instance.reader.join(timeout=10)
    finally:
        for instance in instances:
            if instance.proc.poll() is None:
                instance.proc.kill()
        if nginx:
            nginx.send_signal(signal.SIGQUIT)  # flushes the access log's buffer
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
        if pg:
            pg.stop()

    times = [float(line) for line in open(os.path.join(workdir, "access.log")) if line.strip()]
    if args.logs:
        os.makedirs(args.logs, exist_ok=True)
        for n in range(args.instances):
            shutil.copy(os.path.join(workdir, f"instance{n}.log"), args.logs)
            with open(os.path.join(args.logs, f"instance{n}.samples"), "w") as out:
                out.write(f"# started {instances[n].started - start:.3f} s after the bench's start; "
                          "each line: seconds from the start when the poll was written back, lateness in s\n")
                out.writelines(f"{at - start:.3f} {late:.6f}\n" for at, late in instances[n].samples)
        # Statements that took 250 ms or more, with their start times (log_min_duration_statement).
        shutil.copy(os.path.join(workdir, "pg", "server.log"), args.logs)
    shutil.rmtree(workdir, ignore_errors=True)
    done = [t for t in times if start <= t <= end]
    before = sum(1 for t in done if t < killed_at)
    after = len(done) - before
    # New URLs first fall due spread at 1,000 a second, squeezed into one poll_interval
    # (SharedSchedule.listings), then every interval: URL i is due at offset(i) + k * interval.
    batches = (urls + 999) // 1000
    step = min(1.0, interval / (batches - 1)) if batches > 1 else 0.0

    def due_between(a, b):
        """Polls due at times in [a, b)."""
        count = 0
        for batch in range(batches):
            offset, size = batch * step, min(1000, urls - batch * 1000)
            k = 0
            while offset + k * interval < b:
                count += size if offset + k * interval >= a else 0
                k += 1
        return count

    due_before, due_after = due_between(0, kill_at), due_between(kill_at, seconds)
    due = due_before + due_after
    samples = [s for i in instances for s in i.samples]
    late_before = [late for at, late in samples if at < killed_at]
    late_after = [late for at, late in samples if at >= killed_at]
    late_first = [late for at, late in samples if at < min(killed_at, start + interval)]
    late_rest = [late for at, late in samples if start + interval <= at < killed_at]
    polls = len(samples)
    calls, exec_ms = int(float(statements[0])), float(statements[1])
    pg_per_poll_ms = pg_cpu / max(1, polls) * 1000
    urlpoll_cpu = sum(cpus)
    urlpoll_per_poll_ms = urlpoll_cpu / max(1, polls) * 1000
    per_core_urls = interval / (pg_per_poll_ms / 1000) if pg_per_poll_ms else float("inf")
    per_instance_urls = interval / (urlpoll_per_poll_ms / 1000) if urlpoll_per_poll_ms else float("inf")
    lease = 5 + 10

    label = "quick" if args.quick else "full"
    now = datetime.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    rows = [
        ("polls done / due (nginx's count)", f"{len(done):,} / {due:,.0f} ({len(done) / due:.0%})",
         f"before the kill {before:,} / {due_before:,.0f}; after {after:,} / {due_after:,.0f}"),
        ("polls written back (on_result lines)", f"{polls:,}", "results whose write counted, all instances"),
        ("lateness before the kill", quantiles(late_before), f"{len(late_before):,} polls; target p99 < 200 ms"),
        ("lateness before the kill, first interval", quantiles(late_first),
         f"{len(late_first):,} polls (the first pass); the rest before the kill: {quantiles(late_rest)}"),
        ("lateness after the kill", quantiles(late_after),
         f"{len(late_after):,} polls; target p99 < one lease ({lease} s: timeout 5 s + 10 s)"),
        ("PostgreSQL CPU", f"{pg_cpu:.1f} s ({pg_cpu / seconds:.1%} of a core)",
         f"{pg_per_poll_ms:.3f} ms per poll"),
        ("statements per poll", f"{calls / max(1, polls):.3f}",
         f"{calls:,} statements (pg_stat_statements), {exec_ms / 1000:.1f} s executing; "
         f"{xact:,} commits ({xact / max(1, polls):.3f} per poll)"),
        ("urlpoll CPU, all instances", f"{urlpoll_cpu:.1f} s", f"{urlpoll_per_poll_ms:.3f} ms per poll; "
         + ", ".join(f"#{n}: {c:.1f} s" for n, c in enumerate(cpus)) + " (#0 killed at T/2)"),
    ]
    projection = (
        f"Projection from these figures: at {pg_per_poll_ms:.3f} ms of PostgreSQL CPU per poll, one PostgreSQL "
        f"core holds about {per_core_urls:,.0f} URLs at a {interval:g} s interval ({1000 / pg_per_poll_ms:,.0f} "
        f"polls/s) before it is saturated; at {urlpoll_per_poll_ms:.3f} ms of urlpoll CPU per poll, one "
        f"instance's core holds about {per_instance_urls:,.0f} URLs at that interval. Both are linear "
        f"extrapolations of one run on one machine (client and server sharing {os.cpu_count()} cores): the "
        "claim and write-back are one statement per batch, so the per-poll cost falls as batches fill, and "
        "rises with per-row work (changes, rollups) when many URLs change at once.")
    title = (f"urlpoll cluster bench, {now}, {os.cpu_count()} cores ({label}): {args.instances} instances, "
             f"{urls:,} URLs at {interval:g} s, {seconds:g} s, instance #0 SIGKILLed at {kill_at:g} s, "
             f"pollers={args.pollers}, status_interval={args.status_interval:g} s"
             f"{', instances pinned' if args.pin else ''}"
             f"{f', instances started {args.stagger:g} s apart' if args.stagger else ', instances started at once'}, "
             f"{os.path.relpath(args.urlpoll, ROOT)}, load before {load:.2f}")
    text = [title, "", "| measure | result | detail |", "|---|---|---|"]
    text += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text += ["", projection, ""]
    text += ["Starts: " + "; ".join(
        f"#{n} started at {i.started - start:.1f} s, its first poll written back at "
        + (f"{min(at for at, _ in i.samples) - start:.1f} s" if i.samples else "none")
        for n, i in enumerate(instances)) + ".", ""]
    if args.series:
        text += ["Lateness per 5 s (all instances; seconds from the start; the kill at "
                 f"{killed_at - start:.0f} s) beside PostgreSQL's backends waiting for a lock and active, "
                 "sampled every second (max in the window):", "",
                 "| from s | polls | p50 ms | p99 ms | max ms | lock waits | active | polls, p99 ms per instance |",
                 "|---|---|---|---|---|---|---|---|"]
        for w in range(0, int(seconds), 5):
            window = sorted(late for at, late in samples if start + w <= at < start + w + 5)
            seen = [(n, a) for at, n, a in waits if start + w <= at < start + w + 5]
            if not window:
                continue

            def q(p):
                return window[min(len(window) - 1, max(0, int(p * len(window) + 0.5) - 1))] * 1000

            mine = []
            for n, instance in enumerate(instances):
                own = sorted(late for at, late in instance.samples if start + w <= at < start + w + 5)
                if own:
                    p99 = own[min(len(own) - 1, max(0, int(0.99 * len(own) + 0.5) - 1))] * 1000
                    mine.append(f"#{n}: {len(own):,}, {p99:.0f}")
            text.append(f"| {w} | {len(window):,} | {q(0.5):.0f} | {q(0.99):.0f} | {window[-1] * 1000:.0f} | "
                        f"{max((n for n, _ in seen), default=0)} | {max((a for _, a in seen), default=0)} | "
                        f"{'; '.join(mine)} |")
        text.append("")
    print("\n".join(text))
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    path = os.path.join(ROOT, "bench", "results", f"{now}.cluster{'.quick' if args.quick else ''}.md")
    open(path, "w").write("\n".join(text))
    print(f"written to {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
