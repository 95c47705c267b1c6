#!/usr/bin/env python3
"""A month of retention in half an hour (SPEC §11, "run it for months").

Runs `detector --dry-run` at 50 events/s with the webserver beside it, with
retention days scaled down (`--retention-day-secs`: a "day" of a few
seconds, so `--retain-days 30` keeps a few minutes and the logs rotate
every "day") and a `--max-disk` limit, and samples every 10 s what the data
directory holds (database with its WAL, snapshots, logs — measured here,
not asked of Lookout) and both processes' RSS. Fails when the directory
ever goes over the limit or an RSS keeps growing; writes the curve to
docs/soak.md (+ docs/soak.svg) and the samples to docs/bench/soak.json.

    cargo build --release -p detector -p webserver
    python3 scripts/soak.py                 # 30 minutes
    python3 scripts/soak.py --minutes 3     # a quick look
"""

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import rss_bytes as rss  # the same /proc reading as the benchmark

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / "target" / "release"
DOCS = REPO / "docs"
SAMPLE_EVERY = 10.0


def usage(data_dir):
    """Bytes per kind, as retention counts them (reserve.bin excluded)."""
    d = Path(data_dir)
    size = lambda paths: sum(p.stat().st_size for p in paths if p.is_file())
    return {
        "database": size([d / "events.db", d / "events.db-wal", d / "events.db-shm"]),
        "snapshots": size((d / "snapshots").rglob("*")) if (d / "snapshots").exists() else 0,
        "logs": size(list(d.glob("events*.jsonl")) + list(d.glob("events*.log"))),
    }


def kept(data_dir):
    db = sqlite3.connect(f"file:{Path(data_dir) / 'events.db'}?mode=ro", uri=True, timeout=10)
    try:
        count, = db.execute("SELECT count(*) FROM events").fetchone()
        deleted, = db.execute("SELECT coalesce(max(deleted_events), 0) FROM retention").fetchone()
        return count, deleted
    finally:
        db.close()


def parse_size(text):
    units = {"KB": 1e3, "MB": 1e6, "GB": 1e9, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}
    for unit, factor in units.items():
        if text.upper().endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def svg(samples, max_disk):
    """Disk use (stacked by kind) and RSS against time, no dependencies."""
    w, h, pad = 720, 300, 40
    t_max = max(s["t"] for s in samples) or 1
    y_max = max(max_disk, max(s["total"] for s in samples)) * 1.1
    r_max = max(max(s["rss_detector"], s["rss_webserver"]) for s in samples) * 1.2
    x = lambda t: pad + (w - 2 * pad) * t / t_max
    y = lambda v, top: h - pad - (h - 2 * pad) * v / top
    line = lambda key, top: " ".join(f"{x(s['t']):.1f},{y(s[key], top):.1f}" for s in samples)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{pad}" y1="{y(max_disk, y_max):.1f}" x2="{w - pad}" y2="{y(max_disk, y_max):.1f}" stroke="red" stroke-dasharray="4"/>',
           f'<text x="{pad + 4}" y="{y(max_disk, y_max) - 4:.1f}" fill="red">max_disk {max_disk / 1e6:.0f} MB</text>',
           f'<polyline fill="none" stroke="black" stroke-width="2" points="{line("total", y_max)}"/>',
           f'<polyline fill="none" stroke="#1f77b4" points="{line("database", y_max)}"/>',
           f'<polyline fill="none" stroke="#2ca02c" points="{line("logs", y_max)}"/>',
           f'<polyline fill="none" stroke="#ff7f0e" stroke-dasharray="2" points="{line("rss_detector", r_max)}"/>',
           f'<polyline fill="none" stroke="#9467bd" stroke-dasharray="2" points="{line("rss_webserver", r_max)}"/>',
           f'<text x="{pad}" y="16">disk: total (black), database (blue), logs (green), left axis to {y_max / 1e6:.0f} MB; '
           f'RSS dashed: detector (orange), webserver (purple), to {r_max / 1e6:.0f} MB</text>',
           f'<text x="{w - pad}" y="{h - 10}" text-anchor="end">{t_max / 60:.0f} min</text>',
           f'<text x="{pad}" y="{h - 10}">0</text>', "</svg>"]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--day-secs", type=float, default=6, help="seconds a retention day lasts (default 6: 30 days = 3 min)")
    ap.add_argument("--max-disk", default="32MB")
    ap.add_argument("--port", type=int, default=18300)
    ap.add_argument("--no-write", action="store_true", help="print, do not write docs/")
    args = ap.parse_args()
    max_disk = parse_size(args.max_disk)
    for binary in ("detector", "webserver"):
        if not (BIN / binary).exists():
            sys.exit(f"soak: build first: cargo build --release -p detector -p webserver ({BIN / binary} missing)")
    data_dir = tempfile.mkdtemp(prefix="lookout-soak-")
    common = ["--data-dir", data_dir]
    detector = subprocess.Popen([BIN / "detector", "--dry-run", "--rate", str(args.rate), *common,
                                 "--retain-days", "30", "--retention-day-secs", str(args.day_secs),
                                 "--max-disk", args.max_disk, "--sweep-secs", "10",
                                 "--log-level", "warn,detector::sweeper=info"],
                                stdout=subprocess.DEVNULL, stderr=open(Path(data_dir).parent / "soak-detector.log", "w"))
    webserver = subprocess.Popen([BIN / "webserver", "--bind", f"127.0.0.1:{args.port}", *common, "--log-level", "warn"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = []
    started = time.time()
    try:
        while time.time() - started < args.minutes * 60:
            time.sleep(SAMPLE_EVERY)
            for name, p in (("detector", detector), ("webserver", webserver)):
                if p.poll() is not None:
                    sys.exit(f"soak: the {name} exited with {p.returncode}")
            u = usage(data_dir)
            events, deleted = kept(data_dir)
            s = {"t": round(time.time() - started, 1), **u, "total": sum(u.values()), "events": events,
                 "deleted_events": deleted, "rss_detector": rss(detector.pid), "rss_webserver": rss(webserver.pid)}
            samples.append(s)
            print(f"{s['t'] / 60:5.1f} min: {s['total'] / 1e6:6.2f} MB (db {u['database'] / 1e6:.2f}, logs "
                  f"{u['logs'] / 1e6:.2f}, snapshots {u['snapshots'] / 1e6:.2f}), {events} events kept, {deleted} "
                  f"deleted; RSS detector {s['rss_detector'] / 1e6:.1f} MB, webserver {s['rss_webserver'] / 1e6:.1f} MB",
                  flush=True)
    finally:
        for p in (detector, webserver):
            p.terminate()
            p.wait(30)
        shutil.rmtree(data_dir, ignore_errors=True)

    over = [s for s in samples if s["total"] > max_disk]
    # RSS is flat when the last third's mean is within 10 % of the middle
    # third's (the first third is warm-up: the database filling to its
    # steady size).
    third = max(1, len(samples) // 3)
    flat = {}
    for key in ("rss_detector", "rss_webserver"):
        middle = sum(s[key] for s in samples[third:2 * third]) / max(1, len(samples[third:2 * third]))
        last = sum(s[key] for s in samples[2 * third:]) / max(1, len(samples[2 * third:]))
        flat[key] = {"middle_mb": round(middle / 1e6, 2), "last_mb": round(last / 1e6, 2),
                     "growth": round(last / middle - 1, 3) if middle else None}
    verdict = {"max_disk": max_disk, "max_total": max(s["total"] for s in samples), "samples_over": len(over),
               "rss": flat, "rate": args.rate, "day_secs": args.day_secs, "minutes": args.minutes,
               "deleted_events": samples[-1]["deleted_events"], "events_kept_last": samples[-1]["events"]}
    ok = not over and all(v["growth"] is not None and v["growth"] < 0.10 for v in flat.values())
    print(json.dumps(verdict, indent=1))
    if not args.no_write:
        (DOCS / "bench").mkdir(parents=True, exist_ok=True)
        (DOCS / "bench" / "soak.json").write_text(json.dumps({"verdict": verdict, "samples": samples}, indent=1))
        (DOCS / "soak.svg").write_text(svg(samples, max_disk))
        rows = [s for s in samples if int(s["t"]) % 60 < SAMPLE_EVERY] or samples
        table = "\n".join(
            f"| {s['t'] / 60:.0f} | {s['total'] / 1e6:.2f} | {s['database'] / 1e6:.2f} | {s['logs'] / 1e6:.2f} | "
            f"{s['events']:,} | {s['deleted_events']:,} | {s['rss_detector'] / 1e6:.1f} | {s['rss_webserver'] / 1e6:.1f} |"
            for s in rows)
        (DOCS / "soak.md").write_text(f"""# Soak: a month of retention in {args.minutes:g} minutes

Made by `python3 scripts/soak.py --minutes {args.minutes:g} --rate {args.rate:g} --day-secs {args.day_secs:g} --max-disk {args.max_disk}`
on {time.strftime('%Y-%m-%d', time.gmtime())} (release build, 2-core VM). A dry run at {args.rate:g} events/s with the
webserver beside it; a retention day lasts {args.day_secs:g} s, so `--retain-days 30` keeps
{30 * args.day_secs / 60:g} minutes and the logs rotate every {args.day_secs:g} s; `--max-disk {args.max_disk}`;
a sweep every 10 s. Sizes are measured by the script (database + WAL, snapshots, all logs).
Dry-run events have no snapshots yet, so that column is 0.

**Result: {'held' if ok else 'FAILED'}** — the directory peaked at {verdict['max_total'] / 1e6:.2f} MB of
{max_disk / 1e6:.0f} MB ({len(over)} of {len(samples)} samples over); {verdict['deleted_events']:,} events
deleted; RSS middle → last third: detector {flat['rss_detector']['middle_mb']} → {flat['rss_detector']['last_mb']} MB,
webserver {flat['rss_webserver']['middle_mb']} → {flat['rss_webserver']['last_mb']} MB.

![disk and RSS over the run](soak.svg)

| minute | total MB | database MB | logs MB | events kept | deleted so far | detector RSS MB | webserver RSS MB |
| --- | --- | --- | --- | --- | --- | --- | --- |
{table}
""")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
