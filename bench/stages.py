#!/usr/bin/env python3
"""Client latency and the brokers' produce stages at one fixed rate (issue 18's latency path).

Starts a fresh local cluster (3 nodes, RF 3, min.insync.replicas 2 by default), runs one
open-loop `raftka_bench produce` at `--rate`, prints the generator's JSON line, then per node
the quantiles of `raftka_produce_stage_duration_seconds` from `/metrics` (queue, append,
leader_fsync, replication, response) as histogram bucket upper bounds in ms.

  .venv/bin/python bench/stages.py --raftka $T/raftka --bench $T/examples/raftka_bench \\
      --rate 20000 --partitions 6 [--acks 1] [--nodes 3] [--seconds 8]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "harness"))
from raftka_harness import Cluster  # noqa: E402

METRIC = "raftka_produce_stage_duration_seconds_bucket"


def stage_quantiles(metrics_text: str, qs=(0.5, 0.99, 0.999)) -> dict[str, dict]:
    """Per stage: count and, per quantile, the upper bound (ms) of the bucket that reaches it."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    for line in metrics_text.splitlines():
        if not line.startswith(METRIC):
            continue
        labels, value = line.rsplit(" ", 1)
        stage = labels.split('stage="')[1].split('"')[0]
        le = labels.split('le="')[1].split('"')[0]
        buckets.setdefault(stage, []).append((float("inf") if le == "+Inf" else float(le), float(value)))
    out = {}
    for stage, b in buckets.items():
        b.sort()
        total = b[-1][1]
        if total == 0:
            continue
        out[stage] = {"count": int(total),
                      **{f"p{q * 100:g}": next(le for le, v in b if v >= q * total) * 1000 for q in qs}}
    return out


def written(pid: int) -> int:
    """`write_bytes` of /proc/PID/io: what the process caused to be written to storage."""
    with open(f"/proc/{pid}/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("write_bytes:"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raftka", type=Path, required=True)
    ap.add_argument("--bench", type=Path, required=True)
    ap.add_argument("--rate", type=int, required=True)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--acks", default="all")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                    help="a node setting, repeatable (as raftka's own -o)")
    args = ap.parse_args()
    n = args.nodes
    extra = ["-o", f"default.replication.factor={n}", "-o", f"offsets.topic.replication.factor={n}",
             "-o", f"min.insync.replicas={min(2, n)}"]
    for kv in args.option:
        extra += ["-o", kv]
    with tempfile.TemporaryDirectory(prefix="raftka-stages-") as d:
        c = Cluster.local(args.raftka, Path(d), n, extra)
        c.start()
        try:
            time.sleep(2)
            argv = [str(args.bench), "produce", "--bootstrap", c.bootstrap, "--topic", "stages",
                    "--record-size", str(args.size), "--partitions", str(args.partitions),
                    "--replication-factor", str(n), "--acks", args.acks, "--rate", str(args.rate),
                    "--seconds", str(args.seconds), "--warmup", "2"]
            if args.acks == "all":
                argv.append("--idempotence")
            w0 = [written(node.pid) for node in c.nodes]
            out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            print(out.strip().splitlines()[-1], flush=True)
            for i, node in enumerate(c.nodes, 1):
                text = urllib.request.urlopen(node.http_url + "/metrics", timeout=10).read().decode()
                # Bytes this node wrote to storage during the run (WAL, flushes, compactions),
                # as a multiple of the bytes produced: its write amplification.
                amp = (written(node.pid) - w0[i - 1]) / (args.rate * args.size * (args.seconds + 2))
                print(json.dumps({"node": i, "stages_ms": stage_quantiles(text),
                                  "disk_written_per_byte": round(amp, 2)}), flush=True)
        finally:
            c.stop()


if __name__ == "__main__":
    main()
