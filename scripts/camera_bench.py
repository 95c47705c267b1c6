#!/usr/bin/env python3
"""Camera pipeline benchmark (issue 7's numbers).

    python3 scripts/camera_bench.py               # 8 cameras x 5 fps for 60 s
    python3 scripts/camera_bench.py --cameras 4 --seconds 20

1. Motion detection per 320x180 frame: the criterion benches of the
   `vision` crate (`cargo bench -p vision --bench motion`), target <= 1 ms.
2. N synthetic live cameras (lavfi: a box crossing a noisy scene, 640x360)
   analysed at 5 fps by one release `detector`: its CPU over the run, as a
   percentage of one core (target < 50 % for 8 cameras), and, separately,
   the CPU of its ffmpeg decoders. Sampled from /proc after a warm-up.

Results are printed and written to docs/bench/cameras.json.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import tempfile
import time
from pathlib import Path

from bench import BIN, OUT, REPO, Proc, cpu_seconds

WARMUP_SECONDS = 5.0


def criterion_estimates():
    """Median time per iteration, in ms, of each vision bench."""
    out = subprocess.run(
        ["cargo", "bench", "--locked", "-p", "vision", "--bench", "motion", "--",
         "--warm-up-time", "1", "--measurement-time", "5", "--noplot"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout
    units = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}
    found = {}
    for name, value, unit in re.findall(r"^(\w+)\s+time:\s+\[\S+ \S+ ([\d.]+) (\S+) ", out, re.MULTILINE):
        found[name] = float(value) * units[unit]
    return found


def ffmpeg_children(pid):
    """Pids of the ffmpeg processes started by `pid`."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and name == "ffmpeg":
            children.append(int(entry))
    return children


def cameras_run(n, seconds):
    graph = ("lavfi:color=c=0x303030:s=640x360:r=5[bg];color=c=white:s=80x80:r=5[box];"
             "[bg][box]overlay=x='mod(t*{speed},720)-80':y={y},noise=alls=6:allf=t")
    with tempfile.TemporaryDirectory(prefix="lookout-camera-bench-") as data:
        args = [BIN / "detector", "--data-dir", data]
        for i in range(n):
            args += ["--camera", f"cam{i}=" + graph.format(speed=60 + 15 * i, y=40 + 30 * (i % 8))]
        detector = Proc(args, "detector")
        try:
            for i in range(n):
                detector.wait_for(f"camera up camera=cam{i}", timeout=60)
            time.sleep(WARMUP_SECONDS)
            decoders = ffmpeg_children(detector.p.pid)
            start = time.time()
            own0 = cpu_seconds(detector.p.pid)
            dec0 = sum(cpu_seconds(p) for p in decoders)
            time.sleep(seconds)
            wall = time.time() - start
            own = (cpu_seconds(detector.p.pid) - own0) / wall * 100
            dec = (sum(cpu_seconds(p) for p in decoders) - dec0) / wall * 100
        finally:
            detector.stop()
        summary = detector.p.stdout.read()
    frames = re.search(r"frames analysed\s+(\d+) \(([\d.]+)/s\)", summary)
    events = re.search(r"events created\s+(\d+)", summary)
    return {
        "cameras": n,
        "seconds": round(wall, 1),
        "detector_cpu_percent": round(own, 1),
        "ffmpeg_cpu_percent": round(dec, 1),
        "ffmpeg_processes": len(decoders),
        "frames_per_second": float(frames.group(2)) if frames else None,
        "events": int(events.group(1)) if events else None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "detector"], cwd=REPO, check=True)
    print("== vision criterion benches (ms per frame)", flush=True)
    frame = criterion_estimates()
    for name, ms in frame.items():
        print(f"  {name:<32}{ms:.3f} ms")
    print(f"== {args.cameras} cameras at 5 fps for {args.seconds:.0f} s", flush=True)
    run = cameras_run(args.cameras, args.seconds)
    print(f"  detector CPU   {run['detector_cpu_percent']} % of one core (target < 50 %)")
    print(f"  ffmpeg CPU     {run['ffmpeg_cpu_percent']} % of one core, {run['ffmpeg_processes']} decoders (excluded)")
    print(f"  frames         {run['frames_per_second']}/s analysed, {run['events']} events")
    OUT.mkdir(parents=True, exist_ok=True)
    result = {
        "command": "python3 scripts/camera_bench.py " + f"--cameras {args.cameras} --seconds {args.seconds:g}",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "per_frame_ms": frame,
        "cameras": run,
    }
    (OUT / "cameras.json").write_text(json.dumps(result, indent=2) + "\n")
    ok = frame.get("motion_moving_object_320x180", 99) <= 1.0 and run["detector_cpu_percent"] < 50
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
