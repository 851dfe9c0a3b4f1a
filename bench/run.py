#!/usr/bin/env python3
"""raftka benchmark orchestrator (issue 9): `make bench`.

Starts the raftka release binary itself (1 node, then 3 nodes on 127.0.0.1 with
--controller-quorum), drives it with two independent load generators
(examples/raftka_bench.rs on rust-rdkafka, and librdkafka's rdkafka_performance), measures
the data disk with fio, and prints a markdown table that is also written to
bench/results/<timestamp>.md (raw JSON lines next to it, in <timestamp>.jsonl).

Not a test: nothing here passes or fails except a broken run. Figures are noisy on a shared
2-core machine: /proc/loadavg is recorded with every result.

Usage (see bench/README.md; `make bench` passes the paths):
  bench/run.py --raftka BIN --bench BIN [--rdkafka-perf BIN] [--seconds 10] [--only s1,s3,...]
  bench/run.py ... --profile      # perf record of the 1-node 100 B produce and the consume path
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from raftka_harness import Cluster

REPO = Path(__file__).resolve().parents[1]

KiB = 1024
SIZES = [100, 1 * KiB, 16 * KiB]
PARTITIONS = [1, 6]

RESULTS: list[dict] = []  # every measurement, written as JSON lines
LOG = None  # file object for the run log


def log(msg: str) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, file=sys.stderr, flush=True)
    if LOG:
        LOG.write(line + "\n")
        LOG.flush()


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


def record(kind: str, **fields) -> dict:
    r = {"kind": kind, "loadavg": fields.pop("loadavg", None) or loadavg(), **fields}
    RESULTS.append(r)
    return r


# ---- raftka processes ------------------------------------------------------------------------
# Nodes and clusters come from the shared harness (tests/harness, `raftka_harness`): node i of a
# cluster in <root>/<name>/n<i>, data in n<i>/data, log in n<i>/n<i>.log.

# Startup is timed from spawn to the first ApiVersions reply, polled this often.
STARTUP_POLL_S = 0.002


class RssSampler:
    """Max VmRSS per node while a load runs (sampled every 200 ms)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.max: dict[int, float] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.2):
            for k, v in self.cluster.memory_mb().items():
                if v is not None:
                    self.max[k] = max(self.max.get(k, 0.0), v)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


# ---- load generators -------------------------------------------------------------------------

class Tools:
    def __init__(self, args):
        self.bench = args.bench
        self.perf = args.rdkafka_perf
        self.perf_ssl = args.rdkafka_perf_ssl
        self.seconds = args.seconds
        self.warmup = args.warmup


def run_bench(tools: Tools, mode: str, bootstrap: str, topic: str, extra: list[str],
              timeout: float = 300) -> dict:
    cmd = [str(tools.bench), mode, "--bootstrap", bootstrap, "--topic", topic, *extra]
    log("$ " + " ".join(cmd))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout}s", "cmd": cmd}
    for line in p.stderr.strip().splitlines()[-5:]:
        log("  " + line)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    out = json.loads(lines[-1]) if lines else {"error": f"no JSON output (exit {p.returncode})"}
    out["cmd"] = " ".join(cmd)
    out["exit"] = p.returncode
    return out


def produce_args(tools: Tools, size: int, parts: int, acks: str, idem: bool, rf: int,
                 rate: float | None = None, seconds: float | None = None,
                 warmup: float | None = None) -> list[str]:
    a = ["--record-size", str(size), "--partitions", str(parts), "--replication-factor", str(rf),
         "--acks", acks, "--seconds", str(seconds or tools.seconds),
         "--warmup", str(tools.warmup if warmup is None else warmup)]
    if rf >= 3:
        a += ["--min-isr", "2"]
    if idem:
        a += ["--idempotence"]
    if rate:
        a += ["--rate", f"{rate:.0f}"]
    return a


PERF_PRODUCE_RE = re.compile(
    r"% (\d+) messages produced \((\d+) bytes\), (\d+) delivered .*?(\d+) failed\) in (\d+)ms: "
    r"(\d+) msgs/s and ([\d.]+) MB/s")
PERF_CONSUME_RE = re.compile(
    r"% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms: (\d+) msgs/s \(([\d.]+) MB/s\)")


def run_rdkafka_perf(tools: Tools, argv: list[str], timeout: float = 300,
                     perf: Path | None = None) -> dict:
    cmd = [str(perf or tools.perf), *argv]
    log("$ " + " ".join(cmd))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout}s", "cmd": " ".join(cmd)}
    text = p.stdout + p.stderr
    res: dict = {"tool": "rdkafka_performance", "cmd": " ".join(cmd), "exit": p.returncode,
                 "loadavg": loadavg()}
    m = None
    for m in PERF_PRODUCE_RE.finditer(text):
        pass
    if m:
        res.update(records=int(m.group(3)), errors=int(m.group(4)), elapsed_s=int(m.group(5)) / 1000,
                   records_per_s=float(m.group(6)), mb_per_s=float(m.group(7)))
        log(f"  {m.group(0)}")
        return res
    for m in PERF_CONSUME_RE.finditer(text):
        pass
    if m:
        res.update(records=int(m.group(1)), elapsed_s=int(m.group(3)) / 1000,
                   records_per_s=float(m.group(4)), mb_per_s=float(m.group(5)))
        log(f"  {m.group(0)}")
        return res
    res["error"] = "no summary line: " + text[-500:]
    log("  " + res["error"])
    return res


# ---- disk ------------------------------------------------------------------------------------

def disk_probe(directory: Path, seconds: float) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    if shutil.which("fio"):
        def fio(*extra):
            cmd = ["fio", "--name=probe", f"--directory={directory}", "--ioengine=psync",
                   "--output-format=json", *extra]
            log("$ " + " ".join(cmd))
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            job = json.loads(p.stdout)["jobs"][0]["write"]
            return job, " ".join(cmd)
        seq, seq_cmd = fio("--rw=write", "--bs=1M", "--size=2G", "--direct=1", "--end_fsync=1",
                           f"--runtime={max(3, seconds):.0f}", "--time_based=0")
        fs, fs_cmd = fio("--rw=write", "--bs=4k", "--size=256M", "--fsync=1",
                         f"--runtime={max(3, min(seconds, 10)):.0f}", "--time_based")
        for f in directory.glob("probe*"):
            f.unlink()
        r = record("disk", tool="fio", seq_write_mb_s=seq["bw_bytes"] / 1e6,
                   fsync_per_s=fs["iops"], cmd=f"{seq_cmd}\n{fs_cmd}")
    else:
        path = directory / "probe.bin"
        block = os.urandom(1 << 20)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < max(2, seconds / 2) and n < 2048:
            os.write(fd, block)
            n += 1
        os.fsync(fd)
        seq_mb = n * len(block) / (time.perf_counter() - t0) / 1e6
        os.lseek(fd, 0, 0)
        t0 = time.perf_counter()
        k = 0
        while time.perf_counter() - t0 < 3:
            os.write(fd, block[:4096])
            os.fsync(fd)
            k += 1
        os.close(fd)
        path.unlink()
        r = record("disk", tool="built-in probe (fio missing)", seq_write_mb_s=seq_mb,
                   fsync_per_s=k / (time.perf_counter() - t0), cmd="bench/run.py disk_probe")
    log(f"disk: sequential write {r['seq_write_mb_s']:.0f} MB/s, {r['fsync_per_s']:.0f} fsync/s ({r['tool']})")
    return r


# ---- scenarios -------------------------------------------------------------------------------

def produce_matrix(tools, cluster, name, acks, idem, rf, sizes=SIZES, parts_list=PARTITIONS):
    by_size = {}
    for size in sizes:
        for parts in parts_list:
            topic = f"{name}-p{parts}-s{size}"
            out = run_bench(tools, "produce", cluster.bootstrap, topic,
                            produce_args(tools, size, parts, acks, idem, rf))
            r = record("produce", cluster=name, nodes=len(cluster.nodes), size=size, partitions=parts,
                       acks=acks, idempotence=idem, rf=rf, tool="raftka_bench", **strip(out))
            if "records_per_s" in r and (size not in by_size
                                         or r["records_per_s"] > by_size[size]["records_per_s"]):
                by_size[size] = r
    return by_size


def strip(out: dict) -> dict:
    return {k: v for k, v in out.items() if k not in ("partitions", "acks", "idempotence", "tool",
                                                      "replication_factor", "record_size", "mode",
                                                      "topic")}


def latency_sweep(tools, cluster, name, base: dict, acks, idem, rf):
    """Open-loop runs at 25/50/75 % of the measured closed-loop max of `base`."""
    if "records_per_s" not in base:
        return
    size, parts = base["size"], base["partitions"]
    for frac in (0.25, 0.5, 0.75):
        rate = base["records_per_s"] * frac
        topic = f"{name}-lat{int(frac * 100)}-p{parts}-s{size}"
        out = run_bench(tools, "produce", cluster.bootstrap, topic,
                        produce_args(tools, size, parts, acks, idem, rf, rate=rate))
        record("latency", cluster=name, size=size, partitions=parts, acks=acks, idempotence=idem,
               rf=rf, fraction=frac, max_rate=base["records_per_s"], tool="raftka_bench", **strip(out))


STAGE_METRIC = "raftka_produce_stage_duration_seconds"
STAGE_SAMPLE = re.compile(STAGE_METRIC + r'_(bucket|sum|count)\{stage="(\w+)"(?:,le="([^"]+)")?\} (\S+)$')


def stage_histograms(cluster) -> dict:
    """Every node's produce-stage histograms, summed: {stage: {"sum", "count", "buckets": {le: n}}}."""
    import urllib.request
    out: dict = {}
    for node in cluster.nodes:
        try:
            with urllib.request.urlopen(node.http_url + "/metrics", timeout=5) as r:
                body = r.read().decode()
        except OSError as e:
            log(f"stage histograms: node {node.node_id} not scraped: {e}")
            continue
        for line in body.splitlines():
            m = STAGE_SAMPLE.match(line)
            if not m:
                continue
            kind, stage, le, v = m.group(1), m.group(2), m.group(3), float(m.group(4))
            h = out.setdefault(stage, {"sum": 0.0, "count": 0.0, "buckets": {}})
            if kind == "bucket":
                h["buckets"][le] = h["buckets"].get(le, 0.0) + v
            else:
                h[kind] += v
    return out


def record_stages(cluster_name, scenario, before: dict, after: dict):
    """Per stage over one scenario (after - before): count, mean and the bucket bounds that
    hold p50 and p99 (a histogram gives a bound, not an exact quantile)."""
    for stage, h in after.items():
        b = before.get(stage, {"sum": 0.0, "count": 0.0, "buckets": {}})
        n = h["count"] - b["count"]
        if n <= 0:
            continue
        cum = sorted(((float(le), v - b["buckets"].get(le, 0.0)) for le, v in h["buckets"].items()),
                     key=lambda x: x[0])

        def bound(q):
            return next((le for le, v in cum if v >= q * n), None)
        record("stage", cluster=cluster_name, scenario=scenario, stage=stage, count=int(n),
               mean_ms=1000 * (h["sum"] - b["sum"]) / n,
               p50_le_ms=None if bound(0.5) is None else 1000 * bound(0.5),
               p99_le_ms=None if bound(0.99) is None else 1000 * bound(0.99))


def e2e(tools, cluster, name, base: dict, acks, idem, rf, frac=0.5):
    if "records_per_s" not in base:
        return
    size, parts = max(base["size"], 16), base["partitions"]
    rate = base["records_per_s"] * frac
    topic = f"{name}-e2e-p{parts}-s{size}"
    out = run_bench(tools, "e2e", cluster.bootstrap, topic,
                    produce_args(tools, size, parts, acks, idem, rf, rate=rate))
    record("e2e", cluster=name, size=size, partitions=parts, acks=acks, idempotence=idem, rf=rf,
           fraction=frac, max_rate=base["records_per_s"], tool="raftka_bench", **strip(out))


def consume(tools, cluster, name, topic, size, parts):
    out = run_bench(tools, "consume", cluster.bootstrap, topic, ["--timeout", "120"])
    record("consume", cluster=name, topic=topic, size=size, partitions=parts, tool="raftka_bench",
           **strip(out))
    if tools.perf and parts == 1:
        backlog = out.get("backlog") or out.get("records") or 0
        if backlog:
            perf = run_rdkafka_perf(tools, [
                "-C", "-b", cluster.bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e",
                "-c", str(backlog), "-X", "fetch.wait.max.ms=100",
                "-X", "queued.max.messages.kbytes=1048576", "-X", "fetch.max.bytes=52428800",
                "-X", "max.partition.fetch.bytes=10485760", "-X", "check.crcs=false",
                "-X", "broker.address.family=v4", "-i", "5000"])
            record("consume", cluster=name, topic=topic, size=size, partitions=parts, **perf)
            # The same backlog read by a client of the old message format (issue 16): librdkafka
            # told the broker is 0.10.1 (no ApiVersions) fetches message sets of magic 1, which
            # raftka down-converts from its v2 batches. The gap to the row above is its cost.
            old = run_rdkafka_perf(tools, [
                "-C", "-b", cluster.bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e",
                "-c", str(backlog), "-X", "fetch.wait.max.ms=100",
                "-X", "queued.max.messages.kbytes=1048576", "-X", "fetch.max.bytes=52428800",
                "-X", "max.partition.fetch.bytes=10485760", "-X", "check.crcs=false",
                "-X", "api.version.request=false", "-X", "broker.version.fallback=0.10.1.0",
                "-X", "broker.address.family=v4", "-i", "5000"])
            record("consume", cluster=name, topic=topic, size=size, partitions=parts,
                   fetch="magic 1 (down-converted)", **old)


def rdkafka_perf_produce(tools, cluster, name, size, parts, acks, idem, rf, rate_hint):
    """rdkafka_performance -P for about `seconds` (a count from the measured rate)."""
    if not tools.perf:
        return
    topic = f"{name}-rdkperf-p{parts}-s{size}"
    # Create the topic with the Rust tool (1 record), rdkafka_performance then produces to it.
    run_bench(tools, "produce", cluster.bootstrap, topic,
              produce_args(tools, size, parts, acks, idem, rf, warmup=0) + ["--count", "1"])
    count = int(max(10_000, rate_hint * tools.seconds))
    argv = ["-P", "-b", cluster.bootstrap, "-t", topic, "-s", str(size), "-c", str(count),
            "-a", acks.replace("all", "-1"), "-X", "linger.ms=5", "-X", "batch.size=1000000",
            "-X", "batch.num.messages=10000", "-X", "queue.buffering.max.messages=1000000",
            "-X", "queue.buffering.max.kbytes=32768", "-X", "broker.address.family=v4",
            "-i", "5000"]
    if parts == 1:
        argv += ["-p", "0"]
    if idem:
        argv += ["-X", "enable.idempotence=true"]
    out = run_rdkafka_perf(tools, argv)
    record("produce", cluster=name, nodes=len(cluster.nodes), size=size, partitions=parts, acks=acks,
           idempotence=idem, rf=rf, **out)


def failover(cluster: Cluster, name: str, rounds: int) -> None:
    """kill -9 of the partition leader -> first successful acks=all idempotent produce.

    Rounds alternate between a victim that leads the partition only and one that is also the
    Raft controller leader (the slower case: a controller election comes first): each round's
    1-partition RF 3 topic is created with that node as its preferred leader."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    deadline = time.time() + 60
    while True:
        try:
            if len(admin.list_topics(timeout=5).brokers) >= len(cluster.nodes):
                break
        except Exception:  # noqa: BLE001 - a busy machine times out; retried until the deadline
            pass
        if time.time() > deadline:
            raise RuntimeError("not all brokers registered after 60 s")
        time.sleep(0.1)

    def md(node, topic) -> dict:
        """Partition 0 as `node` itself sees it, asked of that node alone (a Kafka client sends
        its Metadata request to any broker it has learned of, so every "view" could have been
        one node's): {"leader", "isr", ..., "controller"}."""
        m = node.metadata(timeout=5)
        return {**m["topics"][topic]["partitions"][0], "controller": m["controller_id"]}

    for r in range(rounds):
        want_controller = r % 2 == 1
        topic = f"{name}-failover-{r + 1}"
        created = False
        last_error = None
        deadline = time.time() + 90
        while True:
            try:
                ids = sorted(x.node_id for x in cluster.nodes)
                if not created:
                    # The node restarted last round is back in the previous topic's ISR (so it
                    # is unfenced and can lead the new topic) and every node names the same
                    # controller (a restarted node's view lags).
                    if r > 0 and not all(len(md(x, f"{name}-failover-{r}")["isr"]) == 3 for x in cluster.nodes):
                        raise RuntimeError("the restarted node is not back in the ISR yet")
                    ctls = {x.metadata(timeout=5)["controller_id"] for x in cluster.nodes}
                    ctl = ctls.pop()
                    if ctls or ctl not in ids:
                        raise RuntimeError("no agreed controller yet")
                    first = ctl if want_controller else next(i for i in ids if i != ctl)
                    assignment = [[first] + [i for i in ids if i != first]]
                    # kafka-python: confluent-kafka 2.16's NewTopic refuses a replica assignment
                    # ("a default partition count and a replica assignment are mutually exclusive").
                    from kafka.admin import KafkaAdminClient, NewTopic as KNewTopic
                    ka = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
                    try:
                        ka.create_topics([KNewTopic(topic, num_partitions=-1, replication_factor=-1,
                                                    replica_assignments={0: assignment[0]},
                                                    topic_configs={"min.insync.replicas": "2"})])
                    finally:
                        ka.close()
                    created = True
                # Every node must report the same leader, controller and a full ISR, so the
                # victim is the real leader (a restarted node's metadata can lag).
                views = [md(x, topic) for x in cluster.nodes]
                p0 = views[0]
                if all(len(v["isr"]) == 3 and v["leader"] == p0["leader"] > 0
                       and v["controller"] == p0["controller"] for v in views):
                    if (p0["leader"] == p0["controller"]) != want_controller:
                        raise RuntimeError(f"leader {p0['leader']}, controller {p0['controller']}: "
                                           "not the round's case (the controller moved)")
                    break
            except Exception as e:  # noqa: BLE001 - retried until the deadline
                last_error = e
            if time.time() > deadline:
                log(f"failover round {r + 1}: ISR never full again ({last_error!r}); stopping")
                return
            time.sleep(0.2)
        prod = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 0,
                         "topic.metadata.refresh.interval.ms": 200, "retry.backoff.ms": 20,
                         "retry.backoff.max.ms": 100, "message.timeout.ms": 60000})
        prod.produce(topic, b"warmup", partition=0)
        prod.flush(10)
        victim = next(x for x in cluster.nodes if x.node_id == p0["leader"])
        victim.kill()
        t0 = time.perf_counter()
        done = []
        prod.produce(topic, b"after", partition=0, on_delivery=lambda err, _m: done.append(err))
        while not done and time.perf_counter() - t0 < 60:
            prod.poll(0.005)
        elapsed = time.perf_counter() - t0
        ok = bool(done) and done[0] is None
        record("failover", cluster=name, round=r + 1, victim=victim.node_id, seconds=elapsed, ok=ok,
               victim_was_controller=victim.node_id == p0["controller"],
               error=None if ok else str(done[0] if done else "timeout"))
        log(f"failover round {r + 1}: killed node {victim.node_id} (controller: {p0['controller']}); first acks=all produce "
            f"{'ok' if ok else 'FAILED'} after {elapsed * 1000:.0f} ms")
        victim.start()


def retention_soak(args, tools, root):
    """Issue 6: steady open-loop produce for minutes on a topic whose retention keeps rolling and
    deleting segments. After every window: the window's achieved rate and latency, the data dir
    on disk, the partition's log start offset / high watermark, the node's RSS."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    name = "retention"
    total, window = args.retention_seconds, args.retention_window
    rate, size = args.retention_rate, args.retention_record_size
    topic_cfg = {"retention.ms": str(args.retention_ms), "segment.bytes": str(args.retention_segment_bytes)}
    extra = ["-o", f"log.retention.check.interval.ms={args.retention_check_ms}", *args.node_arg]
    c = Cluster.local(args.raftka, root / name, 1, extra)
    node = c.nodes[0]
    log(f"== {name}: starting 1 node ({' '.join(extra)})")
    c.start()
    topic = f"{name}-p1-s{size}"
    try:
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        # A CreateTopics sent in the same millisecond as the broker's registration once went
        # unanswered for 30 s (2026-11-25): wait for the broker in the metadata, retry on timeout.
        deadline = time.time() + 90
        while True:
            try:
                if admin.list_topics(timeout=5).brokers:
                    admin.create_topics([NewTopic(topic, 1, 1, config=topic_cfg)])[topic].result(15)
                    break
            except Exception as e:  # noqa: BLE001 - retried until the deadline
                if "TOPIC_ALREADY_EXISTS" in str(e):
                    break
                log(f"create {topic}: {e!r}; retrying")
            if time.time() > deadline:
                raise RuntimeError(f"could not create {topic} in 90 s")
            time.sleep(0.5)
        log(f"topic {topic}: {topic_cfg}")
        cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "raftka-bench-retention",
                         "enable.auto.commit": False})
        tp = TopicPartition(topic, 0)
        data = node.data_dir

        def sample() -> dict:
            du = subprocess.run(["du", "-sb", str(data)], capture_output=True, text=True).stdout.split()
            low, high = cons.get_watermark_offsets(tp, timeout=10, cached=False)
            files = sum(1 for f in data.rglob("*") if f.is_file())
            return {"disk_mb": int(du[0]) / 1e6 if du else None, "log_start": low, "hw": high,
                    "files": files, "rss_mb": node.memory_mb().get("VmRSS")}

        t0 = time.time()
        i = 0
        while time.time() - t0 < total - window / 2:
            i += 1
            secs = min(window, max(1.0, total - (time.time() - t0)))
            out = run_bench(tools, "produce", c.bootstrap, topic,
                            produce_args(tools, size, 1, "1", False, 1, rate=rate, seconds=secs,
                                         warmup=0), timeout=secs + 120)
            s = sample()
            r = record("retention", cluster=name, window=i, soak_s=time.time() - t0, size=size,
                       partitions=1, acks="1", retention_ms=args.retention_ms,
                       segment_bytes=args.retention_segment_bytes, tool="raftka_bench", **s, **strip(out))
            lm = r.get("latency_ms") or {}
            log(f"window {i}: {r.get('records_per_s', 0):,.0f}/s p99 {lm.get('p99')} ms, disk {s['disk_mb']:.0f} MB, "
                f"{s['files']} files, log start {s['log_start']:,}, HW {s['hw']:,}, RSS {s['rss_mb']:.0f} MB")
            if not node.is_running():
                raise RuntimeError(f"node exited during the soak; see {node.log_path}")
        cons.close()
        record("retention_verdict", cluster=name, **retention_verdict(args))
    finally:
        c.stop()


def retention_verdict(args) -> dict:
    ws = [r for r in RESULTS if r["kind"] == "retention" and not r.get("error")]
    if len(ws) < 3:
        return {"ok": False, "text": f"only {len(ws)} windows"}
    horizon = args.retention_ms / 1000 + args.retention_check_ms / 1000
    # "After the first retention horizon": windows that end after retention.ms + one check interval.
    after = [r for r in ws if r["soak_s"] > horizon + args.retention_window] or ws[1:]
    half = max(1, len(after) // 2)
    first, second = after[:half], after[half:] or after[-1:]
    d1, d2 = max(r["disk_mb"] for r in first), max(r["disk_mb"] for r in second)
    disk_ok = d2 <= 1.5 * d1
    p99s = sorted(r["latency_ms"]["p99"] for r in ws if r.get("latency_ms"))
    med = p99s[len(p99s) // 2] if len(p99s) % 2 else (p99s[len(p99s) // 2 - 1] + p99s[len(p99s) // 2]) / 2
    last = ws[-1]["latency_ms"]["p99"]
    p99_ok = last <= 2 * med
    rates = sorted(r["records_per_s"] for r in ws)
    rmed = rates[len(rates) // 2]
    rate_ok = ws[-1]["records_per_s"] >= 0.9 * rmed
    ls = [r["log_start"] for r in ws]
    ls_ok = ls[-1] > 0 and all(b >= a for a, b in zip(ls, ls[1:])) and ls[-1] > ls[0]
    hw_ok = all(b > a for a, b in zip([r["hw"] for r in ws], [r["hw"] for r in ws][1:]))
    text = (f"disk bounded: {'yes' if disk_ok else '**no**'} (max {d2:.0f} MB in the second half vs "
            f"{d1:.0f} MB in the first, after the first retention horizon; limit 1.5×) · "
            f"p99 not degrading: {'yes' if p99_ok else '**no**'} (last window {last:.2f} ms vs median "
            f"{med:.2f} ms; limit 2×; window 1, before the first deletion: {ws[0]['latency_ms']['p99']:.2f} ms) · throughput steady: {'yes' if rate_ok else '**no**'} (last "
            f"{ws[-1]['records_per_s']:,.0f}/s vs median {rmed:,.0f}/s; limit 90 %) · log start advancing: "
            f"{'yes' if ls_ok else '**no**'} ({ls[0]:,} → {ls[-1]:,}) · HW advancing: {'yes' if hw_ok else '**no**'}")
    return {"ok": disk_ok and p99_ok and rate_ok and ls_ok and hw_ok, "text": text,
            "disk_first_mb": d1, "disk_second_mb": d2, "p99_last": last, "p99_median": med}


# ---- report ----------------------------------------------------------------------------------

def fmt(v, digits=0):
    if v is None or v == "":
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def lat(r, key="latency_ms"):
    l_ = r.get(key) or {}
    return [fmt(l_.get(k), 2) for k in ("p50", "p99", "p999", "max")]


def size_name(s):
    return f"{s // KiB} KiB" if s >= KiB else f"{s} B"


def report(meta: dict) -> str:
    disk = next((r for r in RESULTS if r["kind"] == "disk"), {})
    seq = disk.get("seq_write_mb_s")
    L = []
    L.append(f"Run {meta['started']} · {meta['host']} · {meta['cpus']} CPUs · commit {meta['commit']} · "
             f"{meta['seconds']} s per run (+{meta['warmup']} s warm-up) · "
             f"load before start {meta['load_start']}")
    L.append("")
    if disk:
        L.append(f"**Data disk** ({disk['tool']}): sequential write {disk['seq_write_mb_s']:,.0f} MB/s, "
                 f"{disk['fsync_per_s']:,.0f} fsync/s (4 KiB write + fsync).")
        L.append("")
    L.append("### Produce (closed loop, max throughput)")
    L.append("")
    L.append("| cluster | size | parts | acks | tool | records/s | MB/s | disk % | p50 ms | p99 ms | p99.9 ms | max ms | load |")
    L.append("| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in RESULTS:
        if r["kind"] != "produce" or r.get("records") in (None, 1) or r.get("listener") or r.get("txn"):
            continue
        acks = r.get("acks", "?") + (" idem" if r.get("idempotence") else "") + (f" RF{r['rf']}" if r.get("rf", 1) > 1 else "")
        # Every replica writes to the same disk on one machine: disk bytes = MB/s x RF.
        dpct = f"{100 * r['mb_per_s'] * r.get('rf', 1) / seq:.0f} %" if seq and "mb_per_s" in r else "–"
        err = " (errors)" if r.get("error") or r.get("errors") else ""
        L.append(f"| {r['cluster']} | {size_name(r['size'])} | {r['partitions']} | {acks} | {r.get('tool')}{err} | "
                 f"{fmt(r.get('records_per_s'))} | {fmt(r.get('mb_per_s'), 1)} | {dpct} | "
                 + " | ".join(lat(r)) + f" | {r['loadavg']} |")
    L.append("")
    L.append("### Produce latency, open loop (from the scheduled send time; no coordinated omission)")
    L.append("")
    L.append("| cluster | size | parts | acks | % of max | target rate/s | achieved/s | p50 ms | p99 ms | p99.9 ms | max ms | load |")
    L.append("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in RESULTS:
        if r["kind"] != "latency":
            continue
        acks = r["acks"] + (" idem" if r.get("idempotence") else "") + (f" RF{r['rf']}" if r.get("rf", 1) > 1 else "")
        L.append(f"| {r['cluster']} | {size_name(r['size'])} | {r['partitions']} | {acks} | {r['fraction'] * 100:.0f} % | "
                 f"{fmt(r.get('rate_target'))} | {fmt(r.get('records_per_s'))} | " + " | ".join(lat(r)) + f" | {r['loadavg']} |")
    L.append("")
    L.append("### End-to-end latency (open-loop producer + concurrent consumer; payload timestamp → consumer)")
    L.append("")
    L.append("| cluster | size | parts | acks | rate/s | produce p50/p99 ms | e2e p50 ms | e2e p99 ms | e2e p99.9 ms | e2e max ms | load |")
    L.append("| --- | --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for r in RESULTS:
        if r["kind"] != "e2e":
            continue
        acks = r["acks"] + (" idem" if r.get("idempotence") else "") + (f" RF{r['rf']}" if r.get("rf", 1) > 1 else "")
        pl = lat(r)
        L.append(f"| {r['cluster']} | {size_name(r['size'])} | {r['partitions']} | {acks} | {fmt(r.get('rate_target'))} | "
                 f"{pl[0]} / {pl[1]} | " + " | ".join(lat(r, "e2e_ms")) + f" | {r['loadavg']} |")
    L.append("")
    stages = [r for r in RESULTS if r["kind"] == "stage"]
    if stages:
        L.append("### Produce latency by stage (`raftka_produce_stage_duration_seconds`, all nodes, over one scenario)")
        L.append("")
        L.append("| cluster | scenario | stage | samples | mean ms | p50 ≤ ms | p99 ≤ ms |")
        L.append("| --- | --- | --- | ---: | ---: | ---: | ---: |")
        for r in stages:
            le = lambda v: "+Inf" if v == float("inf") else ("–" if v is None else fmt(v, 2))  # noqa: E731
            L.append(f"| {r['cluster']} | {r['scenario']} | {r['stage']} | {r['count']:,} | {fmt(r['mean_ms'], 2)} | "
                     f"{le(r['p50_le_ms'])} | {le(r['p99_le_ms'])} |")
        L.append("")
    L.append("### Consume a backlog (from the beginning)")
    L.append("")
    L.append("| cluster | topic | size | parts | tool | records | records/s | MB/s | load |")
    L.append("| --- | --- | --- | ---: | --- | ---: | ---: | ---: | --- |")
    for r in RESULTS:
        if r["kind"] != "consume" or r.get("listener") or r.get("isolation"):
            continue
        tool = r.get('tool') + (f", {r['fetch']}" if r.get('fetch') else "")
        L.append(f"| {r['cluster']} | {r['topic']} | {size_name(r['size'])} | {r['partitions']} | {tool} | "
                 f"{fmt(r.get('records'))} | {fmt(r.get('records_per_s'))} | {fmt(r.get('mb_per_s'), 1)} | {r['loadavg']} |")
    L.append("")
    L.extend(secure_report())
    L.extend(txn_report())
    ws = [r for r in RESULTS if r["kind"] == "retention"]
    if ws:
        w0 = ws[0]
        L.append(f"### Retention soak (1 node, 1 partition, {size_name(w0['size'])} acks=1 open loop; "
                 f"retention.ms={w0['retention_ms']}, segment.bytes={w0['segment_bytes']})")
        L.append("")
        L.append("| window | elapsed s | target/s | achieved/s | p50 ms | p99 ms | max ms | disk MB | files | log start | HW | RSS MB | load |")
        L.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for r in ws:
            p50, p99, _p999, mx = lat(r)
            L.append(f"| {r['window']} | {r['soak_s']:.0f} | {fmt(r.get('rate_target'))} | {fmt(r.get('records_per_s'))} | "
                     f"{p50} | {p99} | {mx} | {fmt(r.get('disk_mb'), 0)} | {fmt(r.get('files'))} | "
                     f"{fmt(r.get('log_start'))} | {fmt(r.get('hw'))} | {fmt(r.get('rss_mb'), 1)} | {r['loadavg']} |")
        L.append("")
        v = next((r for r in RESULTS if r["kind"] == "retention_verdict"), None)
        if v:
            L.append(f"**Verdict:** {v['text']}.")
            L.append("")
    L.append("### Start-up, memory, failover")
    L.append("")
    L.append("| measurement | node | value | load |")
    L.append("| --- | --- | ---: | --- |")
    for r in RESULTS:
        if r["kind"] == "startup":
            L.append(f"| start → first ApiVersions reply ({r['cluster']}, fresh data dir) | {r['node']} | {r['seconds'] * 1000:.0f} ms | {r['loadavg']} |")
        elif r["kind"] == "rss":
            L.append(f"| {r['phase']} RSS ({r['cluster']}) | {r['node']} | {r['mb']:.1f} MB | {r['loadavg']} |")
        elif r["kind"] == "failover":
            ok = "" if r["ok"] else f" FAILED ({r['error']})"
            ctl = ", also the controller" if r.get("victim_was_controller") else ""
            L.append(f"| failover: kill -9 leader{ctl} → first acks=all produce ({r['cluster']}, round {r['round']}){ok} | {r['victim']} | {r['seconds'] * 1000:.0f} ms | {r['loadavg']} |")
    L.append("")
    for r in RESULTS:
        if r["kind"] == "error":
            L.append(f"**Scenario group `{r['group']}` failed:** `{r['error']}` (see the run log).")
            L.append("")
    L.append("### Targets (issues 9 and 18)")
    L.append("")
    L.append("| target | measured | met |")
    L.append("| --- | --- | --- |")
    for name, value, ok in targets(seq):
        L.append(f"| {name} | {value} | {'yes' if ok else ('**no**' if ok is not None else 'not measured')} |")
    # Drop the sections of groups that did not run (a heading followed by a header-only table).
    blocks = "\n".join(L).split("\n\n")
    keep = []
    for i, b in enumerate(blocks):
        nxt = blocks[i + 1] if i + 1 < len(blocks) else ""
        if (b.startswith("### ") and nxt.startswith("|") and len(nxt.splitlines()) == 2) or (
                b.startswith("|") and len(b.splitlines()) == 2 and keep and keep[-1] is None):
            keep.append(None)
            continue
        keep.append(b)
    return "\n\n".join(b for b in keep if b is not None)


def secure_report() -> list[str]:
    """PLAINTEXT and SASL_SSL rows side by side, with the SASL_SSL figure as % of PLAINTEXT."""
    rows = [r for r in RESULTS if r.get("listener")]
    if not rows:
        return []
    L = ["### SASL_SSL (SCRAM-SHA-512) vs PLAINTEXT: rdkafka_performance with TLS, same nodes, one after the other",
         "",
         "| cluster | size | parts | acks | listener | produce records/s | produce MB/s | consume records/s (partition 0) | consume MB/s | load |",
         "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    base: dict = {}
    for r in rows:
        if r["kind"] != "produce":
            continue
        c = next((x for x in rows if x["kind"] == "consume" and x.get("topic") == r.get("topic")), {})
        key = (r["cluster"], r["size"], r["partitions"])
        def rel(v, k):
            b = base.get(key, {}).get(k)
            return f" ({100 * v / b:.0f} %)" if r["listener"] != "PLAINTEXT" and b and v else ""
        acks = r["acks"] + (" idem" if r.get("idempotence") else "") + (f" RF{r['rf']}" if r.get("rf", 1) > 1 else "")
        err = " (errors)" if r.get("error") or r.get("errors") or c.get("error") else ""
        L.append(f"| {r['cluster']} | {size_name(r['size'])} | {r['partitions']} | {acks} | {r['listener']}{err} | "
                 f"{fmt(r.get('records_per_s'))}{rel(r.get('records_per_s'), 'p')} | {fmt(r.get('mb_per_s'), 1)} | "
                 f"{fmt(c.get('records_per_s'))}{rel(c.get('records_per_s'), 'c')} | {fmt(c.get('mb_per_s'), 1)} | {r['loadavg']} |")
        if r["listener"] == "PLAINTEXT":
            base[key] = {"p": r.get("records_per_s"), "c": c.get("records_per_s")}
    L.append("")
    return L


def best(pred, key="records_per_s"):
    """The row of RESULTS with the largest `key` among those `pred` accepts (errors left out)."""
    rs = [r for r in RESULTS if pred(r) and r.get(key) is not None and not r.get("error")]
    return max(rs, key=lambda r: r[key]) if rs else None


def targets(seq):
    out = []
    b = best(lambda r: r["kind"] == "produce" and r.get("cluster") == "1node" and r.get("size") == 100
             and r.get("acks") == "1")
    out.append(("1 node, 100 B, acks=1: ≥ 280,000 records/s produced",
                f"{b['records_per_s']:,.0f} ({b.get('tool')}, {b['partitions']} p)" if b else "–",
                b["records_per_s"] >= 280_000 if b else None))
    b = best(lambda r: r["kind"] == "consume" and r.get("cluster") == "1node" and r.get("size") == 100
             and not r.get("fetch"))
    out.append(("1 node, 100 B backlog: ≥ 1,000,000 records/s consumed",
                f"{b['records_per_s']:,.0f} ({b.get('tool')})" if b else "–",
                b["records_per_s"] >= 1_000_000 if b else None))
    b = best(lambda r: r["kind"] == "produce" and r.get("cluster") == "3nodes" and r.get("size") == KiB,
             key="mb_per_s")
    out.append(("3 nodes, RF 3, acks=all, 1 KiB: ≥ 60 MB/s",
                f"{b['mb_per_s']:.1f} MB/s ({b['partitions']} p)" if b else "–",
                b["mb_per_s"] >= 60 if b else None))
    h = [r for r in RESULTS if r["kind"] == "latency" and r.get("cluster") == "3nodes" and r.get("fraction") == 0.5]
    if h:
        p99 = (h[0].get("latency_ms") or {}).get("p99")
        out.append(("3 nodes, 1 KiB acks=all: p99 at half of max ≤ 10 ms",
                    f"{p99} ms at {h[0].get('rate_target', 0):,.0f}/s", p99 is not None and p99 <= 10))
    else:
        out.append(("3 nodes, 1 KiB acks=all: p99 at half of max ≤ 10 ms", "–", None))
    b = best(lambda r: r["kind"] == "produce" and r.get("cluster") == "1node" and r.get("size") == 16 * KiB
             and r.get("acks") == "all", key="mb_per_s")
    if b and seq:
        out.append(("16 KiB, 1 node, acks=all: ≥ 60 % of sequential write",
                    f"{b['mb_per_s']:.0f} MB/s = {100 * b['mb_per_s'] / seq:.0f} % of {seq:.0f} MB/s",
                    b["mb_per_s"] >= 0.6 * seq))
    else:
        out.append(("16 KiB, 1 node, acks=all: ≥ 60 % of sequential write", "–", None))
    idle = [r for r in RESULTS if r["kind"] == "rss" and r["phase"] == "idle"]
    out.append(("idle RSS ≤ 50 MB per node", f"max {max(r['mb'] for r in idle):.1f} MB" if idle else "–",
                max(r["mb"] for r in idle) <= 50 if idle else None))
    st = [r for r in RESULTS if r["kind"] == "startup" and r["cluster"] == "1node"]
    out.append(("start to serving ≤ 0.5 s (1 node, fresh)",
                f"{st[0]['seconds'] * 1000:.0f} ms" if st else "–", st[0]["seconds"] <= 0.5 if st else None))
    fo_all = [r for r in RESULTS if r["kind"] == "failover"]
    for cl in dict.fromkeys(r["cluster"] for r in fo_all):
        fo = [r for r in fo_all if r["cluster"] == cl]
        worst = max(r["seconds"] for r in fo)
        out.append((f"failover ≤ 2 s (kill -9 leader → first acks=all produce), {cl}",
                    f"max {worst * 1000:,.0f} ms over {len(fo)} rounds",
                    worst <= 2 and all(r["ok"] for r in fo)))
    if not fo_all:
        out.append(("failover ≤ 2 s", "–", None))
    out.extend(targets_issue18(seq))
    return out


def targets_issue18(seq):
    """Issue 18's targets (3 nodes RF 3 acks=all at the machine's limit, a flat tail)."""
    def row(name, r, text, ok):
        return (name, text(r) if r else "–", ok(r) if r else None)

    out = []
    three_kib = lambda r: r["kind"] == "produce" and r.get("cluster") == "3nodes" and r.get("size") == KiB  # noqa: E731
    out.append(row("issue 18: 3 nodes, RF 3, acks=all idempotent, 1 KiB: ≥ 150 MB/s",
                   best(three_kib, "mb_per_s"), lambda r: f"{r['mb_per_s']:.1f} MB/s ({r.get('tool')}, {r['partitions']} p)",
                   lambda r: r["mb_per_s"] >= 150))
    out.append(row("issue 18: rdkafka_performance, 3 nodes RF 3 acks=all idempotent 1 KiB 6 p: ≥ 42,000 msgs/s",
                   best(lambda r: three_kib(r) and r.get("tool") == "rdkafka_performance" and r.get("partitions") == 6),
                   lambda r: f"{r['records_per_s']:,.0f}", lambda r: r["records_per_s"] >= 42_000))
    out.append(row("issue 18: rdkafka_performance, 1 node, 100 B, acks=1: ≥ 1,700,000 msgs/s",
                   best(lambda r: r["kind"] == "produce" and r.get("cluster") == "1node" and r.get("size") == 100
                        and r.get("acks") == "1" and r.get("tool") == "rdkafka_performance"),
                   lambda r: f"{r['records_per_s']:,.0f}", lambda r: r["records_per_s"] >= 1_700_000))
    half = next((r for r in RESULTS if r["kind"] == "latency" and r.get("cluster") == "3nodes"
                 and r.get("fraction") == 0.5), None)
    lat = lambda r, k: (r.get("latency_ms") or {}).get(k)  # noqa: E731
    out.append(row("issue 18: 3 nodes 1 KiB acks=all at half of max: p99 ≤ 10 ms, p99.9 ≤ 25 ms", half,
                   lambda r: f"p99 {lat(r, 'p99')} ms, p99.9 {lat(r, 'p999')} ms at {r.get('rate_target', 0):,.0f}/s",
                   lambda r: lat(r, "p99") is not None and lat(r, "p99") <= 10 and (lat(r, "p999") or 1e9) <= 25))
    e = next((r for r in RESULTS if r["kind"] == "e2e" and r.get("cluster") == "3nodes"), None)
    out.append(row("issue 18: 3 nodes end-to-end p99 ≤ 15 ms", e,
                   lambda r: f"{lat_e2e(r)} ms", lambda r: lat_e2e(r) is not None and lat_e2e(r) <= 15))
    b = best(lambda r: r["kind"] == "produce" and r.get("cluster") == "1node" and r.get("size") == 16 * KiB
             and r.get("acks") == "all", key="mb_per_s")
    out.append(row("issue 18: 1 node, 16 KiB, acks=all: ≥ 50 % of fio sequential write", b if seq else None,
                   lambda r: f"{r['mb_per_s']:.0f} MB/s = {100 * r['mb_per_s'] / seq:.0f} % of {seq:.0f} MB/s",
                   lambda r: r["mb_per_s"] >= 0.5 * seq))
    one_consume = lambda size: lambda r: (r["kind"] == "consume" and r.get("cluster") == "1node"  # noqa: E731
                                          and r.get("size") == size and not r.get("fetch"))
    out.append(row("issue 18: consume a 100 B backlog, 1 node: ≥ 5,000,000 records/s", best(one_consume(100)),
                   lambda r: f"{r['records_per_s']:,.0f} ({r.get('tool')})", lambda r: r["records_per_s"] >= 5_000_000))
    out.append(row("issue 18: consume a 16 KiB backlog, 1 node: ≥ 1 GB/s", best(one_consume(16 * KiB), "mb_per_s"),
                   lambda r: f"{r['mb_per_s']:,.0f} MB/s ({r.get('tool')})", lambda r: r["mb_per_s"] >= 1000))
    fo = [r for r in RESULTS if r["kind"] == "failover" and r.get("cluster") in ("3nodes", "3nodes-default")]
    worst = max(fo, key=lambda r: r["seconds"]) if fo else None
    out.append(row("issue 18: failover ≤ 2 s every round, default settings, also when the leader was the controller",
                   worst, lambda r: f"max {r['seconds'] * 1000:,.0f} ms over {len(fo)} rounds "
                                    f"({sum(1 for x in fo if x.get('victim_was_controller'))} with the controller)",
                   lambda r: r["seconds"] <= 2 and all(x["ok"] for x in fo)))
    loaded = [r for r in RESULTS if r["kind"] == "rss" and r["phase"] != "idle"]
    m = max(loaded, key=lambda r: r["mb"]) if loaded else None
    out.append(row("issue 18: loaded RSS per node ≤ 512 MB", m, lambda r: f"max {r['mb']:.1f} MB",
                   lambda r: r["mb"] <= 512))
    return out


def lat_e2e(r):
    return (r.get("e2e_ms") or {}).get("p99")


# ---- main ------------------------------------------------------------------------------------

def bench_root(args) -> Path:
    base = Path(args.tmpdir) if args.tmpdir else Path(tempfile.gettempdir())
    if os.stat(base).st_dev != os.stat(REPO).st_dev:
        base = REPO / "data"  # same disk as the repo, as the issue asks
        base.mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="raftka-bench-", dir=base))


def single_node(args, tools, root):
    name = "1node"
    c = Cluster.local(args.raftka, root / name, 1, args.node_arg)
    log(f"== {name}: starting {args.raftka}")
    secs = c.start(interval=STARTUP_POLL_S)
    record("startup", cluster=name, node=1, seconds=secs[0])
    log(f"start → serving: {secs[0] * 1000:.0f} ms")
    try:
        time.sleep(2)
        for k, v in c.memory_mb().items():
            record("rss", cluster=name, node=k, phase="idle", mb=v)
        with RssSampler(c) as s:
            best = produce_matrix(tools, c, name, "1", False, 1)
            produce_matrix(tools, c, name + "-all", "all", True, 1, sizes=[16 * KiB])
            for r in RESULTS:  # the acks=all rows belong to the 1-node cluster too
                if r.get("cluster") == name + "-all":
                    r["cluster"] = name
            if 100 in best:
                rdkafka_perf_produce(tools, c, name, 100, 1, "1", False, 1, best[100]["records_per_s"])
            b1 = next((r for r in RESULTS if r["kind"] == "produce" and r.get("cluster") == name
                       and r.get("size") == 100 and r.get("partitions") == 1 and r.get("tool") == "raftka_bench"), None)
            if b1:
                latency_sweep(tools, c, name, b1, "1", False, 1)
                e2e(tools, c, name, b1, "1", False, 1)
            consume(tools, c, name, f"{name}-p1-s100", 100, 1)
            consume(tools, c, name, f"{name}-p6-s100", 100, 6)
            consume(tools, c, name, f"{name}-p6-s{KiB}", KiB, 6)
            consume(tools, c, name, f"{name}-all-p6-s{16 * KiB}", 16 * KiB, 6)
        for k, v in s.max.items():
            record("rss", cluster=name, node=k, phase="loaded (max)", mb=v)
    finally:
        c.stop()


def three_nodes(args, tools, root):
    name = "3nodes"
    extra = ["-o", "default.replication.factor=3", "-o", "offsets.topic.replication.factor=3",
             "-o", "min.insync.replicas=2", *args.node_arg]
    c = Cluster.local(args.raftka, root / name, 3, extra)
    log(f"== {name}: starting 3 nodes")
    secs = c.start(interval=STARTUP_POLL_S)
    for x, t in zip(c.nodes, secs):
        record("startup", cluster=name, node=x.node_id, seconds=t)
    try:
        time.sleep(3)
        for k, v in c.memory_mb().items():
            record("rss", cluster=name, node=k, phase="idle", mb=v)
        with RssSampler(c) as s:
            best = produce_matrix(tools, c, name, "all", True, 3)
            if KiB in best:
                latency_sweep(tools, c, name, best[KiB], "all", True, 3)
                before = stage_histograms(c)
                e2e(tools, c, name, best[KiB], "all", True, 3)
                record_stages(name, "e2e at 50 % of max, 1 KiB acks=all", before, stage_histograms(c))
                # Issue 18's side-by-side generator: rdkafka_performance, 1 KiB, 6 partitions.
                rdkafka_perf_produce(tools, c, name, KiB, 6, "all", True, 3, best[KiB]["records_per_s"])
        for k, v in s.max.items():
            record("rss", cluster=name, node=k, phase="loaded (max)", mb=v)
        if args.failover_rounds:
            failover(c, name, args.failover_rounds)
    finally:
        c.stop()


# ---- SASL_SSL (issue 15) -----------------------------------------------------------------------
# The same generator (rdkafka_performance, built with TLS by `build-rdkafka-perf.sh --ssl`) over
# a PLAINTEXT and a SASL_SSL (SCRAM-SHA-512) listener of the same nodes, one after the other, so
# that the gap between the two rows is the cost of TLS and SASL.
SECURE_USER, SECURE_PASSWORD = "bench", "bench-secret"


def secure_cluster(args, root: Path, n: int) -> tuple[Cluster, dict[str, str]]:
    from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialUpsertion)
    from raftka_harness import Node, free_ports
    from raftka_harness.pki import make_ca, make_cert

    name = f"{n}node{'s' if n > 1 else ''}-secure"
    pki = root / name / "pki"
    pki.mkdir(parents=True)
    make_ca(pki, "ca")
    make_cert(pki, "server", "/CN=raftka", "ca")
    extra = ["-o", f"ssl.keystore.location={pki / 'server.pem'}",
             "-o", "sasl.enabled.mechanisms=SCRAM-SHA-512"]
    if n > 1:
        extra += ["-o", "default.replication.factor=3", "-o", "offsets.topic.replication.factor=3",
                  "-o", "min.insync.replicas=2"]
    ports = free_ports(n)
    nodes = [Node(args.raftka, root / name / f"n{i}", i, name=f"n{i}",
                  listeners=f"PLAINTEXT://{{host}}:{{kafka_port}},SASL_SSL://{{host}}:{ports[i - 1]}",
                  extra_args=extra + list(args.node_arg)) for i in range(1, n + 1)]
    c = Cluster(nodes)
    log(f"== {name}: starting {n} node(s) with PLAINTEXT and SASL_SSL listeners")
    c.start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
        SECURE_USER, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
        SECURE_PASSWORD.encode())])[SECURE_USER].result(60)
    sasl = ",".join(f"127.0.0.1:{p}" for p in ports)
    confs = {"PLAINTEXT": ["-b", c.bootstrap],
             "SASL_SSL": ["-b", sasl, "-X", "security.protocol=SASL_SSL",
                          "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", f"sasl.username={SECURE_USER}",
                          "-X", f"sasl.password={SECURE_PASSWORD}",
                          "-X", f"ssl.ca.location={pki / 'ca.crt'}"]}
    return c, confs


def secure_pair(args, tools, c: Cluster, confs: dict, name: str, size: int, parts: int, acks: str,
                idem: bool, rf: int) -> None:
    """rdkafka_performance -P then -C (partition 0, from the beginning) per listener, twice
    in alternation (PLAINTEXT, SASL_SSL, PLAINTEXT, SASL_SSL) so that drift on a shared machine
    shows as a difference between the rounds rather than between the listeners. Each produce
    sends about `--seconds` worth of records at the rate this configuration reaches."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    mb_per_s = (150 if size < KiB else 250) if len(c.nodes) == 1 else 50
    count = int(max(20_000, args.seconds * mb_per_s * 1e6 / size))
    for round_, (proto, conn) in enumerate(list(confs.items()) * 2):
        topic = f"{name}-{proto.lower()}-p{parts}-s{size}-r{round_ // 2}"
        run_bench(tools, "produce", c.bootstrap, topic,
                  produce_args(tools, size, parts, acks, idem, rf, warmup=0) + ["--count", "1"])
        argv = ["-P", *conn, "-t", topic, "-s", str(size), "-c", str(count),
                "-a", acks.replace("all", "-1"), "-X", "linger.ms=5", "-X", "batch.size=1000000",
                "-X", "queue.buffering.max.kbytes=32768", "-X", "broker.address.family=v4", "-i", "5000"]
        if idem:
            argv += ["-X", "enable.idempotence=true"]
        out = run_rdkafka_perf(tools, argv, perf=tools.perf_ssl)
        record("produce", cluster=name, nodes=len(c.nodes), size=size, partitions=parts, acks=acks,
               idempotence=idem, rf=rf, listener=proto, topic=topic, **out)
        out = run_rdkafka_perf(tools, [
            "-C", *conn, "-t", topic, "-p", "0", "-o", "beginning", "-e",
            "-X", "fetch.wait.max.ms=100", "-X", "queued.max.messages.kbytes=1048576",
            "-X", "fetch.max.bytes=52428800", "-X", "max.partition.fetch.bytes=10485760",
            "-X", "check.crcs=false", "-X", "broker.address.family=v4", "-i", "5000"],
            perf=tools.perf_ssl)
        record("consume", cluster=name, topic=topic, size=size, partitions=parts, listener=proto, **out)
        # Each row writes ~seconds x 150-250 MB; deleting it keeps the group's disk use bounded.
        try:
            admin.delete_topics([topic])[topic].result(60)
        except Exception as e:  # noqa: BLE001 - space only; the figures are recorded
            log(f"  deleting {topic} failed: {e!r}")


def secure(args, tools, root):
    if not tools.perf_ssl:
        log("rdkafka_performance with TLS missing (--rdkafka-perf-ssl); SASL_SSL rows skipped")
        return
    c, confs = secure_cluster(args, root, 1)
    try:
        for size in (100, KiB, 16 * KiB):
            secure_pair(args, tools, c, confs, "1node-secure", size, 1, "1", False, 1)
    finally:
        c.stop()
    c, confs = secure_cluster(args, root, 3)
    try:
        secure_pair(args, tools, c, confs, "3nodes-secure", KiB, 6, "all", True, 3)
        secure_pair(args, tools, c, confs, "3nodes-secure", 16 * KiB, 6, "all", True, 3)
    finally:
        c.stop()


TXN_BATCH_RECORDS = 100


def py_produce(bootstrap: str, topic: str, seconds: float, txn_records: int | None,
               size: int = KiB, warmup: float = 1.0) -> dict:
    """confluent-kafka (librdkafka in callback mode) closed loop: acks=all, idempotent,
    batch.num.messages TXN_BATCH_RECORDS, linger 5 ms; with `txn_records`, a transaction is
    committed every that many records. The same generator for every row of the txn group
    (rust-rdkafka's BaseProducer delivers reports as events, and librdkafka's commit then waits
    for them in 100 ms steps, which would measure the client, not the broker)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    conf = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "batch.num.messages": TXN_BATCH_RECORDS, "compression.type": "none",
            "queue.buffering.max.messages": 1000000, "queue.buffering.max.kbytes": 32768}
    if txn_records:
        conf["transactional.id"] = f"bench-{topic}"
    p = Producer(conf)
    if txn_records:
        p.init_transactions(30)
    payload = b"x" * size
    lat: list[float] = []

    def phase(secs: float) -> tuple[int, float, int]:
        sent, txns = 0, 0
        t0 = time.monotonic()
        end = t0 + secs
        if txn_records:
            p.begin_transaction()
        while time.monotonic() < end:
            try:
                p.produce(topic, payload, partition=0)
            except BufferError:
                p.poll(0.001)
                continue
            sent += 1
            if txn_records and sent % txn_records == 0:
                c0 = time.monotonic()
                p.commit_transaction(60)
                lat.append((time.monotonic() - c0) * 1000)
                txns += 1
                p.begin_transaction()
            elif sent % 1000 == 0:
                p.poll(0)
        if txn_records:
            p.commit_transaction(60)
            txns += 1
        p.flush(60)
        return sent, time.monotonic() - t0, txns

    phase(warmup)
    lat.clear()
    sent, elapsed, txns = phase(seconds)
    lat.sort()
    out = {"records": sent, "elapsed_s": elapsed, "records_per_s": sent / elapsed,
           "mb_per_s": sent * size / elapsed / 1e6, "transactions": txns, "tool": "confluent-kafka"}
    if lat:
        out["commit_ms"] = {"p50": lat[len(lat) // 2], "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))]}
    return out


def txn_bench(args, tools, root):
    """Issue 17: transactional produce with 1, 10 and 100 batches per transaction against the
    idempotent acks=all baseline (1 node, 1 partition, 1 KiB, batch.num.messages 100, so a
    transaction of k x 100 records is k batches), then read_committed vs read_uncommitted
    consume of the 100-batch transactions' topic (raftka_bench)."""
    name = "1node-txn"
    c = Cluster.local(args.raftka, root / name, 1, args.node_arg)
    c.start(interval=STARTUP_POLL_S)
    time.sleep(2)  # as the other groups: the node's first metadata settles
    try:
        rows = [("idempotent", None)] + [(f"txn {k} batch(es)", k) for k in (1, 10, 100)]
        last_topic = None
        for label, k in rows:
            topic = f"{name}-{'idem' if k is None else f'b{k}'}"
            log(f"txn group: {label} on {topic}")
            try:
                out = py_produce(c.bootstrap, topic, tools.seconds,
                                 None if k is None else k * TXN_BATCH_RECORDS)
            except Exception as e:  # noqa: BLE001 - one failed row keeps the others
                out = {"error": repr(e)}
            log(f"  {out}")
            record("produce", cluster=name, size=KiB, partitions=1, txn=label,
                   batches_per_txn=k, **out)
            last_topic = topic
        for iso in ("read_uncommitted", "read_committed"):
            out = run_bench(tools, "consume", c.bootstrap, last_topic,
                            ["--timeout", "120", "--set", f"isolation.level={iso}"])
            record("consume", cluster=name, topic=last_topic, size=KiB, partitions=1,
                   isolation=iso, tool="raftka_bench", **strip(out))
    finally:
        c.stop()


def txn_report() -> list[str]:
    rows = [r for r in RESULTS if r.get("cluster") == "1node-txn"]
    if not rows:
        return []
    L = ["### Transactions (1 node, 1 partition, 1 KiB, acks=all idempotent, batch.num.messages 100; confluent-kafka closed loop)",
         "",
         "| produce | records/s | MB/s | % of idempotent | transactions | commit p50 / p99 ms | load |",
         "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    base = next((r.get("records_per_s") for r in rows
                 if r["kind"] == "produce" and r.get("batches_per_txn") is None), None)
    for r in rows:
        if r["kind"] != "produce":
            continue
        v = r.get("records_per_s")
        rel = f"{100 * v / base:.0f} %" if base and v else ""
        err = f" ({r.get('error')})" if r.get("error") else (" (errors)" if r.get("errors") else "")
        cm = r.get("commit_ms") or {}
        L.append(f"| {r['txn']}{err} | {fmt(v)} | {fmt(r.get('mb_per_s'), 1)} | {rel} | "
                 f"{fmt(r.get('transactions'))} | {fmt(cm.get('p50'), 2)} / {fmt(cm.get('p99'), 2)} | {r['loadavg']} |")
    L += ["", "| consume (100-batch transactions' topic; raftka_bench) | records/s | MB/s | load |",
          "| --- | ---: | ---: | --- |"]
    for r in rows:
        if r["kind"] == "consume":
            L.append(f"| {r['isolation']} | {fmt(r.get('records_per_s'))} | {fmt(r.get('mb_per_s'), 1)} | {r['loadavg']} |")
    L.append("")
    return L


def failover_cluster(args, root, session_ms: int | None):
    """Failover on a fresh 3-node cluster: default settings (broker.session.timeout.ms 9 s like
    Kafka's) when `session_ms` is None, else that session timeout with heartbeats at 1/6 of it."""
    extra = ["-o", "default.replication.factor=3", "-o", "min.insync.replicas=2"]
    name = "3nodes-default"
    if session_ms:
        name = f"3nodes-session{session_ms}ms"
        extra += ["-o", f"broker.session.timeout.ms={session_ms}",
                  "-o", f"broker.heartbeat.interval.ms={max(50, session_ms // 6)}",
                  "-o", "replica.lag.time.max.ms=2000"]
    c = Cluster.local(args.raftka, root / name, 3, extra + args.node_arg)
    log(f"== {name}: starting 3 nodes")
    c.start()
    try:
        failover(c, name, args.failover_rounds)
    finally:
        c.stop()


def perf_reports(data: Path, out: Path, threads: bool = False) -> None:
    """Flat text reports of one perf.data beside `out`: `<out>.symbols.txt` and `.dsos.txt`
    (self time, ≥ 0.5 %), `.children.txt` (inclusive, ≥ 2 %) and, with `threads`, `.threads.txt`
    (by thread name)."""
    sorts = [("symbol", "symbols", False), ("dso", "dsos", False)]
    if threads:
        sorts.append(("comm", "threads", False))
    sorts.append(("symbol", "children", True))
    for sort, suffix, children in sorts:
        rep = subprocess.run(["perf", "report", "-i", str(data), "--children" if children else "--no-children",
                              "--stdio", "--sort", sort, "-g", "none", "--percent-limit", "2" if children else "0.5"],
                             capture_output=True, text=True)
        (out.parent / f"{out.name}.{suffix}.txt").write_text(rep.stdout)


def profile(args, tools, root):
    """perf record (cpu-clock) on the broker during the 1-node 100 B acks=1 produce and consume."""
    if subprocess.run(["perf", "record", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"],
                      capture_output=True).returncode != 0:
        log("perf record does not work here; profile skipped")
        return
    outdir = args.results_dir / f"profile-{args.stamp}"
    outdir.mkdir(parents=True, exist_ok=True)
    c = Cluster.local(args.raftka, root / "profile", 1, args.node_arg)
    c.start()
    pid = c.nodes[0].pid
    try:
        for phase, fn in (("produce", lambda: run_bench(tools, "produce", c.bootstrap, "prof-p1-s100",
                                                       produce_args(tools, 100, 1, "1", False, 1))),
                          ("consume", lambda: run_bench(tools, "consume", c.bootstrap, "prof-p1-s100", []))):
            data = outdir / f"{phase}.perf.data"
            rec = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-p", str(pid),
                                    "-o", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out = fn()
            rec.send_signal(signal.SIGINT)
            rec.wait(60)
            log(f"{phase}: {out.get('records_per_s', 0):,.0f} records/s under perf")
            perf_reports(data, outdir / phase)
        log(f"profiles in {outdir}")
    finally:
        c.stop()


def main():
    global LOG
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raftka", type=Path, required=True, help="raftka release binary")
    ap.add_argument("--bench", type=Path, required=True, help="raftka_bench example binary")
    ap.add_argument("--rdkafka-perf", type=Path, help="rdkafka_performance binary (optional)")
    ap.add_argument("--rdkafka-perf-ssl", type=Path,
                    help="rdkafka_performance built with TLS and SASL, for the `secure` group (optional)")
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 10)))
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY", "disk,1node,3nodes,failover,secure,txn,retention"),
                    help="comma list of: disk, 1node, 3nodes, failover, secure, retention")
    env = os.environ.get
    ap.add_argument("--retention-seconds", type=float, default=float(env("BENCH_RETENTION_SECONDS", 180)),
                    help="length of the retention soak (0: skip it)")
    ap.add_argument("--retention-window", type=float, default=float(env("BENCH_RETENTION_WINDOW", 20)),
                    help="seconds per produce run (one table row) of the soak")
    ap.add_argument("--retention-rate", type=float, default=float(env("BENCH_RETENTION_RATE", 20000)),
                    help="open-loop records/s of the soak")
    ap.add_argument("--retention-record-size", type=int, default=1024)
    ap.add_argument("--retention-ms", type=int, default=20000, help="topic retention.ms of the soak")
    ap.add_argument("--retention-segment-bytes", type=int, default=4 << 20, help="topic segment.bytes")
    ap.add_argument("--retention-check-ms", type=int, default=2000,
                    help="broker log.retention.check.interval.ms of the soak node")
    ap.add_argument("--failover-rounds", type=int, default=2)
    ap.add_argument("--failover-session-ms", type=int, default=1500,
                    help="broker.session.timeout.ms of the extra fast-failover cluster (0: skip it)")
    ap.add_argument("--node-arg", action="append", default=[], help="extra raftka serve argument")
    ap.add_argument("--tmpdir", help="parent of the data dirs (default: $TMPDIR if on the repo's disk)")
    ap.add_argument("--results-dir", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--keep", action="store_true", help="keep the data dirs")
    ap.add_argument("--profile", action="store_true", help="only the perf profile")
    args = ap.parse_args()
    for p in (args.raftka, args.bench):
        if not os.access(p, os.X_OK):
            sys.exit(f"not executable: {p}")
    if args.rdkafka_perf and not os.access(args.rdkafka_perf, os.X_OK):
        log(f"rdkafka_performance not found at {args.rdkafka_perf}; second generator skipped")
        args.rdkafka_perf = None
    if args.rdkafka_perf_ssl and not os.access(args.rdkafka_perf_ssl, os.X_OK):
        log(f"rdkafka_performance with TLS not found at {args.rdkafka_perf_ssl}; SASL_SSL rows skipped")
        args.rdkafka_perf_ssl = None
    args.stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    LOG = open(args.results_dir / f"{args.stamp}.log", "w")
    tools = Tools(args)
    root = bench_root(args)
    only = set(args.only.split(","))
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    meta = {"started": args.stamp, "host": socket.gethostname(), "cpus": os.cpu_count(),
            "commit": commit, "seconds": args.seconds, "warmup": args.warmup,
            "load_start": loadavg(), "root": str(root)}
    log(f"bench: data under {root}, results in {args.results_dir}/{args.stamp}.*")
    t_start = time.time()
    try:
        if args.profile:
            profile(args, tools, root)
            return
        def group(fn, *a):
            # One broken group (a timeout on a busy machine) must not lose the others' figures.
            try:
                fn(*a)
            except Exception as e:  # noqa: BLE001 - reported in the log and the table
                log(f"group {fn.__name__} failed: {e!r}")
                record("error", group=fn.__name__, error=repr(e))

        if "disk" in only:
            group(disk_probe, root / "disk", args.seconds)
        if "1node" in only:
            group(single_node, args, tools, root)
        rounds = args.failover_rounds
        if "3nodes" in only:
            # The loaded 3-node cluster also measures failover (default settings) at its end.
            args.failover_rounds = rounds if "failover" in only else 0
            group(three_nodes, args, tools, root)
            args.failover_rounds = rounds
        elif "failover" in only and rounds:
            group(failover_cluster, args, root, None)
        if "failover" in only and args.failover_session_ms and rounds:
            group(failover_cluster, args, root, args.failover_session_ms)
        if "secure" in only:
            group(secure, args, tools, root)
        if "txn" in only:
            group(txn_bench, args, tools, root)
        if "retention" in only and args.retention_seconds > 0:
            group(retention_soak, args, tools, root)
    finally:
        meta["wall_s"] = time.time() - t_start
        with open(args.results_dir / f"{args.stamp}.jsonl", "w") as f:
            f.write(json.dumps({"kind": "meta", **meta}) + "\n")
            for r in RESULTS:
                f.write(json.dumps(r) + "\n")
        if not args.profile:
            table = report(meta) + f"\n\nWall time {meta['wall_s'] / 60:.1f} min.\n"
            (args.results_dir / f"{args.stamp}.md").write_text(table)
            shutil.copy(args.results_dir / f"{args.stamp}.md", args.results_dir / "latest.md")
            print(table)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
