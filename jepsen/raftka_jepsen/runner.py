"""`python -m raftka_jepsen run`: start a cluster, run the workloads under a seeded nemesis,
heal, drain, check. Results go to jepsen/results/<timestamp>/:

    history.jsonl   every invocation/completion (see history.py)
    schedule.json   the seeded fault schedule, the arguments and node commands
    summary.txt     the checker's table; summary.json the same as JSON
    nodes/nI.log    each node's stdout/stderr across restarts
    harness.txt     harness-side problems (worker exceptions, nemesis errors), kept apart
                    from the verdict about raftka
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import traceback
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from . import checker, nemesis, workload
from .cluster import LocalCluster, NetnsCluster, default_binary
from .history import Recorder, read_history

JEPSEN_DIR = Path(__file__).resolve().parents[1]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", type=int, default=1, help="raftka nodes on 127.0.0.1 (1, 3 or 5)")
    p.add_argument("--time", type=float, default=60, help="workload seconds (faults included)")
    p.add_argument("--nemesis", default="kill,pause",
                   help=f"comma list of {','.join(nemesis.NEMESES)}, or '{nemesis.MIXED}' "
                        "(two concurrent fault streams: kill/pause and partition/clock/"
                        "membership), or 'none'")
    p.add_argument("--aim", default=",".join(nemesis.AIMS),
                   help="whom faults aim at, drawn per fault from this list: any (a random "
                        "node), controller (the Raft leader), leader (a partition leader)")
    p.add_argument("--netns-slot", type=int, default=0,
                   help="netns topology: namespaces rk<slot>-n<i> on 10.77.<slot>.0/24, so "
                        "runs with different slots can go on side by side")
    p.add_argument("--seed", type=int, default=None, help="fault schedule seed (default: random)")
    p.add_argument("--interval", default="5,10", help="quiet gap between faults: min,max s")
    p.add_argument("--fault-duration", default="3,8", help="fault duration: min,max s")
    p.add_argument("--partitions", type=int, default=4, help="partitions of the jepsen topic")
    p.add_argument("--rf", type=int, default=None, help="replication factor (default: nodes)")
    p.add_argument("--producers", type=int, default=2)
    p.add_argument("--assign-consumers", type=int, default=1)
    p.add_argument("--subscribe-consumers", type=int, default=2)
    p.add_argument("--zk-workers", type=int, default=3)
    p.add_argument("--txn-producers", type=int, default=0,
                   help="transactional producers (the txn workload on topic jepsen-txn)")
    p.add_argument("--txn-ctp", type=int, default=0,
                   help="consume-transform-produce workers (read jepsen-txn and write it in "
                        "one transaction, offsets committed with it; with --txn-producers)")
    p.add_argument("--txn-readers", type=int, default=1,
                   help="read_committed readers of jepsen-txn (with --txn-producers)")
    p.add_argument("--no-zk-sync", action="store_true",
                   help="plain getData (no sync first); ZooKeeper reads are only sequentially "
                        "consistent, so stale reads may then be legal on a multi-node facade")
    p.add_argument("--topology", choices=["local", "netns"], default="local",
                   help="local: processes on 127.0.0.1; netns: one network namespace per node "
                        "(10.77.0.i, needs root; enables the partition nemesis)")
    p.add_argument("--results", default=str(JEPSEN_DIR / "results"))
    p.add_argument("--binary", default=None, help="raftka binary (default $RAFTKA_BIN or "
                                                 "~/.cache/raftka/target/debug/raftka)")
    p.add_argument("--keep-data", action="store_true", help="keep node data dirs even if valid")
    p.add_argument("--secure", action="store_true",
                   help="SASL_SSL listeners (PLAIN), mTLS between nodes; every client authenticates")
    p.add_argument("--node-arg", action="append", default=[],
                   help="extra raftka -o key=value (repeatable)")
    p.set_defaults(fn=cmd_run)


def _pair(s: str) -> tuple[float, float]:
    a, b = (float(x) for x in s.split(","))
    return a, b


def create_topic(bootstrap: str, partitions: int, rf: int, timeout_s: float = 60,
                 name: str = workload.TOPIC) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({**workload.CLIENT_SECURITY, "bootstrap.servers": bootstrap},
                        logger=workload.CLIENT_LOG)
    cfg = {"min.insync.replicas": str(max(1, min(2, rf - 1)))} if rf > 1 else {}
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fs = admin.create_topics([NewTopic(name, partitions, rf, config=cfg)],
                                     request_timeout=15)
            fs[name].result(timeout=20)
            break
        except KafkaException as e:
            if "TOPIC_ALREADY_EXISTS" in str(e):
                break
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    while True:
        md = admin.list_topics(name, timeout=10)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions and \
                all(p.leader >= 0 for p in t.partitions.values()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"topic {name} has no leaders after {timeout_s}s: {t}")
        time.sleep(0.5)


def cmd_run(args: argparse.Namespace) -> int:
    rc, _summary, _out = run_once(args)
    return rc


def run_once(args: argparse.Namespace) -> tuple[int, dict, Path]:
    kinds = [] if args.nemesis in ("", "none") else [k.strip() for k in args.nemesis.split(",")]
    mixed = nemesis.MIXED in kinds
    if mixed:
        if kinds != [nemesis.MIXED]:
            raise SystemExit(f"--nemesis {nemesis.MIXED} stands alone")
        kinds = [k for stream in nemesis.MIXED_STREAMS for k in stream]
    for k in kinds:
        if k not in nemesis.NEMESES:
            raise SystemExit(f"unknown nemesis {k!r}; known: {', '.join(nemesis.NEMESES)}, "
                             f"{nemesis.MIXED}")
    aims = tuple(a.strip() for a in args.aim.split(",") if a.strip())
    seed = args.seed if args.seed is not None else int(time.time()) % 100000
    rf = args.rf or args.nodes
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    # Unique even for runs started in the same second (parallel suites on other netns
    # slots); it ends in -s<seed>, which the clock nemesis reads back.
    name = f"{stamp}-{args.nemesis.replace(',', '+') or 'none'}-n{args.nodes}-s{seed}"
    for k in range(1, 100):
        out = Path(args.results) / (name if k == 1 else name.replace(stamp, f"{stamp}.{k}"))
        try:
            out.mkdir(parents=True, exist_ok=False)
            break
        except FileExistsError:
            continue
    node_args = ["-o", "group.initial.rebalance.delay.ms=500",
                 "-o", "offsets.topic.num.partitions=4",
                 "-o", f"offsets.topic.replication.factor={rf}",
                 "-o", "auto.create.topics.enable=false"]
    for kv in args.node_arg:
        node_args += ["-o", kv]
    cluster_cls = NetnsCluster if getattr(args, "topology", "local") == "netns" else LocalCluster
    extra = {"slot": args.netns_slot} if cluster_cls is NetnsCluster else {}
    if getattr(args, "secure", False):
        from .security import Security
        sec = Security(out)
        extra["security"] = sec
        workload.CLIENT_SECURITY.clear()
        workload.CLIENT_SECURITY.update(sec.client_conf())
    cluster = cluster_cls(args.nodes, out, binary=Path(args.binary) if args.binary else None,
                          extra_args=node_args, **extra)
    # Only kinds that can run on this topology are scheduled (the others are recorded as
    # unsupported by the NemesisRunner), so the schedule is a function of (seed, topology).
    runnable = [k for k in kinds if not nemesis.NEMESES[k]().unsupported(cluster)]
    streams = nemesis.mixed_streams(runnable) if mixed else [runnable]
    faults = [f for k, stream_kinds in enumerate(streams)
              for f in nemesis.schedule(seed + k * nemesis.MIXED_SEED_STRIDE, stream_kinds,
                                        args.time, args.nodes, interval=_pair(args.interval),
                                        duration=_pair(args.fault_duration), aims=aims,
                                        stream=k)]
    st = cluster.binary.stat()
    binary_info = {"path": str(cluster.binary), "size": st.st_size,
                   "mtime_utc": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat()}
    meta = {"seed": seed, "args": {k: v for k, v in vars(args).items() if k != "fn"},
            "binary": binary_info,
            "replication_factor": rf, "topology": cluster.topology,
            "commands": [" ".join(n.command()) for n in cluster.nodes],
            "schedule": [asdict(f) for f in faults]}
    (out / "schedule.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"results: {out}\nseed {seed}, {len(faults)} faults scheduled: "
          + ", ".join(f"{f.kind}@{f.at:.0f}s/n{f.target + 1}" for f in faults), flush=True)

    import logging
    handler = logging.FileHandler(out / "clients.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    workload.CLIENT_LOG.handlers[:] = [handler]
    workload.CLIENT_LOG.setLevel(logging.INFO)
    logging.getLogger("kazoo").addHandler(handler)
    logging.getLogger("kazoo").propagate = False
    harness: list[str] = []
    unresponsive: list[str] = []
    hist_f = open(out / "history.jsonl", "w", encoding="utf-8")
    rec = Recorder(hist_f)
    stop = threading.Event()
    workers: list[workload.Worker] = []
    try:
        cluster.start()
        create_topic(cluster.bootstrap, args.partitions, rf)
        if args.zk_workers:
            workload.zk_setup(rec, cluster.zk_hosts)
        values = workload.Values()
        for i in range(args.producers):
            workers.append(workload.ProducerWorker(f"producer-{i}", rec, stop, seed * 1000 + i,
                                                   cluster.bootstrap, args.partitions, values))
        for i in range(args.assign_consumers):
            workers.append(workload.AssignConsumer(f"assign-{i}", rec, stop, seed * 1000 + 100 + i,
                                                   cluster.bootstrap, args.partitions))
        for i in range(args.subscribe_consumers):
            workers.append(workload.SubscribeConsumer(
                f"subscribe-{i}", rec, stop, seed * 1000 + 200 + i, cluster.bootstrap,
                args.partitions, group="jepsen-group"))
        if args.txn_producers:
            create_topic(cluster.bootstrap, args.partitions, rf, name=workload.TXN_TOPIC)
            for i in range(args.txn_producers):
                workers.append(workload.TxnWorker(f"txn-{i}", rec, stop, seed * 1000 + 400 + i,
                                                  cluster.bootstrap, args.partitions, values, i))
            for i in range(args.txn_ctp):
                workers.append(workload.TxnCtpWorker(f"ctp-{i}", rec, stop, seed * 1000 + 600 + i,
                                                     cluster.bootstrap, args.partitions, values,
                                                     i))
            for i in range(args.txn_readers):
                workers.append(workload.TxnReader(f"txn-reader-{i}", rec, stop,
                                                  seed * 1000 + 500 + i, cluster.bootstrap,
                                                  args.partitions))
        for i in range(args.zk_workers):
            workers.append(workload.ZkWorker(f"zk-{i}", rec, stop, seed * 1000 + 300 + i,
                                             cluster.zk_hosts, values,
                                             sync_reads=not args.no_zk_sync))
        t0 = time.monotonic()
        for w in workers:
            w.start()
        nem_stop = threading.Event()
        shared = {k: nemesis.NEMESES[k]() for k in kinds}
        nems = [nemesis.NemesisRunner(cluster, rec, [f for f in faults if f.stream == k],
                                      stream_kinds if k else kinds, nem_stop, t0,
                                      topic=workload.TOPIC, partitions=args.partitions,
                                      name=f"nemesis-{k}", nemeses=shared)
                for k, stream_kinds in enumerate(streams or [kinds])]
        for nem in nems:
            nem.start()
        while time.monotonic() - t0 < args.time:
            time.sleep(0.5)
        nem_stop.set()
        for nem in nems:
            nem.join(timeout=60)
        healed = cluster.heal_all()
        if healed:
            rec.nemesis("heal-all", {"did": healed})
        cluster.wait_ready()
        # Liveness after heal: every node must answer Kafka ApiVersions and ZooKeeper ruok.
        # A node that accepts connections but answers nothing (e.g. a deadlocked runtime) is
        # a raftka defect: recorded in the history and reported, separately from safety.
        stuck = cluster.unresponsive(timeout_s=30)
        if stuck:
            rec.nemesis("liveness", {"unresponsive": stuck})
            unresponsive += stuck
        # Let clients recover after the last fault before the workload stops.
        time.sleep(5)
        stop.set()
        join_deadline = time.monotonic() + 30
        for w in workers:
            w.join(timeout=max(0.1, join_deadline - time.monotonic()))
            if w.is_alive():
                # Where it waits (its innermost frames), to tell a client call from the harness.
                frame = sys._current_frames().get(w.ident)
                where = " <- ".join(f"{f.name}:{f.lineno}" for f in
                                    reversed(traceback.extract_stack(frame)[-3:])) if frame else "?"
                harness.append(f"{w.name}: still running 30 s after stop (in {where})")
            harness += [f"{w.name}: {e}" for e in w.errors]
        harness += [f"{nem.name}: {e}" for nem in nems for e in nem.errors]
        if unresponsive:
            harness.append("drain skipped: unresponsive node(s) " + ", ".join(unresponsive))
        elif args.producers or args.assign_consumers or args.subscribe_consumers:
            d = workload.drain(rec, cluster.bootstrap, args.partitions)
            if not d["complete"]:
                harness.append(f"drain incomplete: {d}")
        if args.txn_producers and not unresponsive:
            d = workload.txn_drain(rec, cluster.bootstrap, args.partitions)
            if not d["complete"]:
                harness.append(f"txn drain incomplete: {d}")
    except Exception as e:  # noqa: BLE001 - the run is still checked and reported
        harness.append(f"run aborted: {type(e).__name__}: {e}")
        stop.set()
    finally:
        stop.set()
        for n in cluster.nodes:
            rc = n.exit_code()
            if rc is not None and n.proc is not None:
                harness.append(f"{n.name} exited on its own with code {rc}; see nodes/{n.name}.log")
        cluster.stop()
        hist_f.close()

    summary = checker.check(read_history(out / "history.jsonl"))
    if args.txn_producers and args.txn_ctp and not summary.get("txn_ctp_committed"):
        harness.append("no consume-transform-produce transaction committed")
    summary["seed"] = seed
    summary["nodes"] = args.nodes
    summary["replication_factor"] = rf
    summary["time_s"] = args.time
    summary["nemesis"] = [nemesis.MIXED] if mixed else kinds
    summary["aims"] = list(aims)
    summary["faults_scheduled"] = len(faults)
    summary["harness_problems"] = harness
    summary["binary"] = binary_info
    title = (f"raftka jepsen: {args.nodes} node(s), RF {rf}, {args.time:.0f}s, "
             f"nemesis {nemesis.MIXED + ' (' if mixed else ''}{','.join(kinds) or 'none'}"
             f"{')' if mixed else ''}, aims {','.join(aims)}, seed {seed}, "
             f"binary built {binary_info['mtime_utc'][:19]}")
    text = checker.render_text(summary, title)
    if unresponsive:
        text += (f"\nLIVENESS: node(s) {', '.join(unresponsive)} did not answer Kafka ApiVersions"
                 " / ZooKeeper ruok within 30 s after every fault was healed\n")
    if harness:
        text += "\nharness problems (not a verdict on raftka):\n" + \
            "".join(f"  - {h}\n" for h in harness)
    (out / "summary.txt").write_text(text)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (out / "harness.txt").write_text("".join(h + "\n" for h in harness))
    if summary["valid"] is True and not args.keep_data:
        shutil.rmtree(out / "data", ignore_errors=True)
    sys.stdout.write(text)
    print(f"results: {out}")
    summary["results_dir"] = str(out)
    if summary["valid"] is not True:
        return 1, summary, out
    if unresponsive:
        return 5, summary, out
    return (4 if any(h.startswith("run aborted") for h in harness) else 0), summary, out


def add_suite_arguments(p: argparse.ArgumentParser) -> None:
    """`suite`: the full schedule — `runs` runs of `time` seconds per fault type; writes an
    aggregate markdown table (for docs/jepsen.md) to results/suite-<ts>/table.md."""
    add_arguments(p)
    p.set_defaults(nemesis="kill,pause,partition,clock,membership,join,mixed", time=300, nodes=3)
    p.add_argument("--runs", type=int, default=10, help="runs per fault type")
    p.add_argument("--seed-base", type=int, default=1000, help="run i of a type uses seed-base+i")
    p.add_argument("--parallel", type=int, default=1,
                   help="netns topology: run the fault types on this many independent clusters "
                        "at once (netns slots S+1..S+N for --netns-slot S, fault types dealt "
                        "round-robin), then merge their tables; each run still lasts --time")
    p.set_defaults(fn=cmd_suite)


def cmd_suite(args: argparse.Namespace) -> int:
    import copy
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    suite_dir = Path(args.results) / f"suite-{stamp}"
    suite_dir.mkdir(parents=True)
    rows = []
    worst = 0
    kinds = [k.strip() for k in args.nemesis.split(",") if k.strip()]
    if args.parallel > 1 and args.topology == "netns" and len(kinds) > 1:
        return suite_parallel(args, kinds, suite_dir, stamp)
    for kind in kinds:
        class _Topo:  # what the topology would be, without starting nodes
            topology = "netns" if args.topology == "netns" else "local-processes"
            nodes = [None] * args.nodes
        if kind == nemesis.MIXED:
            ok = [k for s in nemesis.MIXED_STREAMS for k in s
                  if not nemesis.NEMESES[k]().unsupported(_Topo)]
            why = None if len(nemesis.mixed_streams(ok)) > 1 else \
                "mixed needs two fault streams that can run on this topology"
        else:
            why = nemesis.NEMESES[kind]().unsupported(_Topo)
        if why:
            rows.append({"nemesis": kind, "runs": 0, "unsupported": why})
            continue
        for i in range(args.runs):
            a = copy.copy(args)
            a.nemesis, a.seed, a.results = kind, args.seed_base + i, str(suite_dir)
            rc, summary, out = run_once(a)
            worst = max(worst, rc)
            rows.append({"nemesis": kind, "seed": a.seed, "valid": summary["valid"],
                         "ops": summary["op_total"], "faults": sum(summary["faults"].values()),
                         "counts": summary["counts"], "dir": out.name,
                         "aimed": summary.get("aimed", {}),
                         "harness": len(summary.get("harness_problems", [])),
                         "unresponsive": ",".join(summary.get("unresponsive_after_heal", []))
                         or "-"})
            write_suite_table(suite_dir, stamp, args, rows)  # a stopped suite keeps its rows
    write_suite_table(suite_dir, stamp, args, rows)
    print((suite_dir / "table.md").read_text())
    print(f"suite results: {suite_dir}")
    return worst


def suite_parallel(args: argparse.Namespace, kinds: list[str], suite_dir: Path,
                   stamp: str) -> int:
    """One child `suite` per netns slot, each with its share of the fault types; the merged
    table lists the rows in the order of `kinds`."""
    import subprocess
    n = min(args.parallel, len(kinds))
    shares = [kinds[k::n] for k in range(n)]
    children = []
    for k, share in enumerate(shares, start=1):
        out = suite_dir / f"slot{k}"
        out.mkdir()
        cmd = [sys.executable, "-m", "raftka_jepsen", *sys.argv[1:], "--nemesis", ",".join(share),
               "--netns-slot", str(args.netns_slot + k), "--results", str(out), "--parallel", "1"]
        log = open(suite_dir / f"slot{k}.log", "w")
        children.append((out, subprocess.Popen(cmd, cwd=JEPSEN_DIR, stdout=log,
                                               stderr=subprocess.STDOUT), log))
        print(f"netns slot {args.netns_slot + k}: {','.join(share)} "
              f"(log {suite_dir / f'slot{k}.log'})", flush=True)
    worst = 0
    rows: list[dict] = []
    for out, proc, log in children:
        worst = max(worst, proc.wait())
        log.close()
        for j in sorted(out.glob("suite-*/suite.json")):
            for r in json.loads(j.read_text()):
                if "dir" in r:
                    r["dir"] = str(j.parent.relative_to(suite_dir) / r["dir"])
                rows.append(r)
    rows.sort(key=lambda r: (kinds.index(r["nemesis"]) if r["nemesis"] in kinds else 99,
                             r.get("seed", 0)))
    write_suite_table(suite_dir, stamp, args, rows)
    print((suite_dir / "table.md").read_text())
    print(f"suite results: {suite_dir}")
    return worst


def write_suite_table(suite_dir: Path, stamp: str, args: argparse.Namespace,
                      rows: list[dict]) -> None:
    """table.md (the `table` report over this suite's rows, plus unsupported fault types) and
    suite.json (the rows)."""
    from . import report
    runs = [r for r in rows if "seed" in r]
    lines = [f"Suite {stamp}: {args.nodes} node(s), {args.time:.0f} s per run, "
             f"{args.runs} runs per fault type, binary {args.binary or default_binary()}", "",
             "Aimed: faults that hit the controller leader (c) or a partition leader (l) found "
             "when the fault started; f: no holder then, so the scheduled node was hit.", "",
             report.render(runs, args.nodes) if runs else "(no run finished yet)"]
    lines += [f"- {r['nemesis']}: unsupported: {r['unsupported']}" for r in rows
              if "unsupported" in r]
    (suite_dir / "table.md").write_text("\n".join(lines) + "\n")
    (suite_dir / "suite.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
