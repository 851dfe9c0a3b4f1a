#!/usr/bin/env python3
"""Broker CPU per produced megabyte at a fixed, sub-saturation rate (issue 18's per-byte cost).

Throughput on a shared 2-core machine moves by ±20 % between runs of one binary (the brokers,
the generator and everything else share the cores), so a before/after of a change to the
per-byte cost is measured as CPU instead: each binary gets a fresh cluster, `raftka_bench
produce --rate R` sends the same records at the same rate, and the brokers' CPU time
(utime + stime of every node process, /proc/PID/stat) over the measured phase is divided by
the megabytes produced. Binaries are run in alternation, `--rounds` times.

  .venv/bin/python bench/cpu_cost.py --bench $T/examples/raftka_bench \\
      --binary before=/tmp/raftka-before --binary after=$T/raftka --rounds 3
  # where the CPU goes (perf, every node; reports per symbol, library and thread):
  .venv/bin/python bench/cpu_cost.py --bench $T/examples/raftka_bench --binary now=$T/raftka \\
      --rounds 1 --only "3 nodes" --perf-dir bench/results/cpu-profile
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "harness"))
from raftka_harness import Cluster  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from run import perf_reports  # noqa: E402  (bench/run.py, the `make bench` driver)

TICK = os.sysconf("SC_CLK_TCK")

# (label, nodes, record size, partitions, acks, rate records/s)
SCENARIOS = [
    ("1 node, 1 KiB, 6 p, acks=1", 1, 1024, 6, "1", 40_000),
    ("1 node, 16 KiB, 6 p, acks=all", 1, 16384, 6, "all", 3_000),
    ("3 nodes RF 3, 1 KiB, 6 p, acks=all", 3, 1024, 6, "all", 20_000),
]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (after the state field)
    return total / TICK


def disk_written(pids: list[int]) -> int:
    """Bytes the node processes (and their threads) caused to be written to storage
    (/proc/PID/io `write_bytes`): WAL, flushes and compactions — the write amplification."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    total += int(line.split()[1])
    return total


def run(bench: Path, binary: Path, root: Path, nodes: int, size: int, parts: int, acks: str,
        rate: int, seconds: float, perf: Path | None = None) -> dict:
    extra = ["-o", f"default.replication.factor={nodes}", "-o", f"offsets.topic.replication.factor={nodes}",
             "-o", f"min.insync.replicas={min(2, nodes)}"]
    c = Cluster.local(binary, root, nodes, extra)
    c.start()
    try:
        time.sleep(2)
        pids = [n.pid for n in c.nodes]
        argv = [str(bench), "produce", "--bootstrap", c.bootstrap, "--topic", f"cpu-{nodes}-{size}",
                "--record-size", str(size), "--partitions", str(parts), "--replication-factor", str(nodes),
                "--acks", acks, "--rate", str(rate), "--seconds", str(seconds), "--warmup", "2"]
        if acks == "all":
            argv.append("--idempotence")
        # The warm-up creates the topic and fills the pipes; CPU is sampled around the measured
        # phase only (the generator prints nothing until it ends, so sample by time).
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        time.sleep(2.5)
        rec = None
        if perf is not None:
            rec = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "999", "-g",
                                    "-p", ",".join(map(str, pids)), "-o", f"{perf}.perf.data"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c0, w0, t0 = cpu_seconds(pids), disk_written(pids), time.monotonic()
        time.sleep(seconds - 1)
        c1, w1, t1 = cpu_seconds(pids), disk_written(pids), time.monotonic()
        if rec is not None:
            rec.send_signal(signal.SIGINT)
            rec.wait(60)
        out, _ = p.communicate(timeout=seconds + 120)
        if perf is not None:
            perf_reports(Path(f"{perf}.perf.data"), perf, threads=True)
        res = json.loads(out.strip().splitlines()[-1])
        mb = rate * size * (t1 - t0) / 1e6
        return {"cpu_s": c1 - c0, "wall_s": t1 - t0, "mb": mb, "cpu_ms_per_mb": 1000 * (c1 - c0) / mb,
                # Bytes written to storage by all nodes per produced byte (RF 3: 3 copies of
                # each byte at least, counting the WAL only; flushes and compactions add).
                "disk_written_per_byte": (w1 - w0) / 1e6 / mb,
                "cores": (c1 - c0) / (t1 - t0), "achieved": res.get("records_per_s"),
                "p50": (res.get("latency_ms") or {}).get("p50"), "p99": (res.get("latency_ms") or {}).get("p99"),
                "loadavg": open("/proc/loadavg").read().split()[:3]}
    finally:
        c.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, required=True)
    ap.add_argument("--binary", action="append", required=True, help="label=path, repeatable")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--only", help="substring of the scenario labels to run")
    ap.add_argument("--perf-dir", type=Path,
                    help="also perf record (cpu-clock, call graphs) every node during the measured phase "
                         "of each run; reports by symbol, shared object and thread name go here")
    args = ap.parse_args()
    bins = [b.split("=", 1) for b in args.binary]
    for label, nodes, size, parts, acks, rate in SCENARIOS:
        if args.only and args.only not in label:
            continue
        for rnd in range(args.rounds):
            for name, path in bins:
                with tempfile.TemporaryDirectory(prefix="raftka-cpu-", dir=REPO / "data" if (REPO / "data").is_dir() else None) as d:
                    perf = None
                    if args.perf_dir:
                        args.perf_dir.mkdir(parents=True, exist_ok=True)
                        slug = "".join(ch if ch.isalnum() else "-" for ch in label).strip("-")
                        perf = args.perf_dir / f"{slug}-{name}-r{rnd}"
                    r = run(args.bench, Path(path), Path(d), nodes, size, parts, acks, rate, args.seconds, perf)
                print(json.dumps({"scenario": label, "binary": name, "round": rnd, **r}), flush=True)


if __name__ == "__main__":
    main()
