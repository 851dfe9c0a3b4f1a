"""Nemeses and the seeded fault schedule.

A schedule is computed up front from `random.Random(seed)`: a list of faults, each with a
start time (seconds after the workload starts), a kind, a target node and a duration. It is
written to `schedule.json` and the same seed gives the same schedule (the interleaving with
client operations is of course not reproducible; the fault sequence is).

Every nemesis implements:
  unsupported(cluster) -> str | None   why it cannot run on this topology (None: it can)
  start(cluster, target) -> dict       inject; returns what it did (recorded in the history)
  stop(cluster, target, state) -> dict heal
Unsupported nemeses are recorded once as `{"unsupported": reason}` and skipped, never
silently dropped.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .history import Recorder


# Whom a fault aims at, resolved when it starts (the cluster's roles move during a run):
#   any         node `target`
#   controller  the Raft (controller) leader, per `raftka quorum describe`
#   leader      the leader of partition `target % partitions` of the workload topic, per Metadata
# When the role has no holder at that moment (an election), the fault falls back to `target`
# and the history says so.
AIMS = ("any", "controller", "leader")

# `--nemesis mixed`: two fault streams at once, each one fault at a time, so a process fault
# can overlap a network, clock or membership fault (e.g. kill the leader of a partitioned
# minority, pause a node that is being added back as a voter).
MIXED = "mixed"
MIXED_STREAMS = (("kill", "pause"), ("partition", "clock", "membership"))
MIXED_SEED_STRIDE = 1_000_003  # stream k's schedule seed is seed + k * stride


@dataclass
class Fault:
    at: float          # seconds after the start of the workload
    kind: str
    target: int        # index into cluster.nodes (or a partition grouping seed)
    duration: float
    aim: str = "any"   # one of AIMS
    stream: int = 0    # which concurrent fault stream (mixed runs have two)


def schedule(seed: int, kinds: list[str], total_s: float, nodes: int,
             interval: tuple[float, float] = (5.0, 10.0),
             duration: tuple[float, float] = (3.0, 8.0), lead_in_s: float = 3.0,
             aims: tuple[str, ...] = AIMS, stream: int = 0) -> list[Fault]:
    """Faults one at a time: quiet gap (uniform in `interval`), then a fault lasting a
    uniform `duration`, until `total_s`. Deterministic in `seed`."""
    rng = random.Random(seed)
    out: list[Fault] = []
    t = lead_in_s
    if not kinds:
        return out
    for a in aims:
        if a not in AIMS:
            raise ValueError(f"unknown aim {a!r}; known: {', '.join(AIMS)}")
    while True:
        t += rng.uniform(*interval)
        d = rng.uniform(*duration)
        kind = rng.choice(kinds)
        target = rng.randrange(nodes)
        aim = rng.choice(aims) if aims else "any"
        if t + d > total_s:
            break
        out.append(Fault(round(t, 3), kind, target, round(d, 3), aim, stream))
        t += d
    return out


def mixed_streams(kinds_supported: list[str]) -> list[list[str]]:
    """The kinds of each concurrent stream of a mixed run, keeping only supported kinds and
    dropping empty streams."""
    streams = [[k for k in s if k in kinds_supported] for s in MIXED_STREAMS]
    return [s for s in streams if s]


def resolve_target(cluster, fault: Fault, topic: str, partitions: int) -> tuple[int, dict]:
    """The node index a fault hits now, and what the history should say about it."""
    if fault.aim == "any":
        return fault.target, {}
    if fault.aim == "controller":
        found = cluster.controller_leader()
    else:
        found = cluster.partition_leader(topic, fault.target % max(1, partitions))
    if found is None:
        return fault.target, {"aim_fallback": f"no {fault.aim} leader found; used node index "
                                              f"{fault.target}"}
    return found, {"aimed_at": cluster.nodes[found].name}


class Nemesis:
    name = "?"

    def unsupported(self, cluster) -> str | None:
        return None

    def start(self, cluster, target: int) -> dict[str, Any]:
        raise NotImplementedError

    def stop(self, cluster, target: int, state: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class KillNemesis(Nemesis):
    """kill -9 one node; on heal restart it on the same ports and data dir."""

    name = "kill"

    def start(self, cluster, target, aim="any"):
        n = cluster.nodes[target]
        rc = n.kill()
        return {"node": n.name, "rc": rc}

    def stop(self, cluster, target, state):
        n = cluster.nodes[target]
        if not n.is_running():
            n.start(wait=False)
        return {"node": n.name, "restarted": True}


class PauseNemesis(Nemesis):
    """SIGSTOP one node; on heal SIGCONT."""

    name = "pause"

    def start(self, cluster, target, aim="any"):
        n = cluster.nodes[target]
        n.pause()
        return {"node": n.name}

    def stop(self, cluster, target, state):
        n = cluster.nodes[target]
        n.resume()
        return {"node": n.name}


class PartitionNemesis(Nemesis):
    """Network partitions: majority/minority, isolate one node, bridge. Needs one network
    namespace per node (netns.py); local processes share the loopback interface."""

    name = "partition"

    def unsupported(self, cluster):
        if getattr(cluster, "topology", "") != "netns":
            return ("nodes are local processes sharing 127.0.0.1; partitions need the netns "
                    "topology (one namespace + veth + iptables per node, see netns.py)")
        if len(cluster.nodes) < 3:
            return "a partition needs at least 3 nodes"
        return None

    def start(self, cluster, target, aim="any"):
        if aim == "any":
            return cluster.partition(grudge(len(cluster.nodes), target))
        # Aimed at a role holder: cut it off from every other node.
        others = [i for i in range(len(cluster.nodes)) if i != target]
        return cluster.partition({"kind": f"isolate-{aim}", "a": [target], "b": others,
                                  "cut": [(target, o) for o in others]})

    def stop(self, cluster, target, state):
        return cluster.heal_network()


def grudge(n: int, seed: int) -> dict[str, Any]:
    """A partition plan for n nodes chosen by `seed`: which node indices cannot reach which."""
    rng = random.Random(seed)
    kind = rng.choice(["isolate", "majority-minority", "bridge"])
    ids = list(range(n))
    rng.shuffle(ids)
    if kind == "isolate":
        a, b = ids[:1], ids[1:]
        cut = [(x, y) for x in a for y in b]
    elif kind == "majority-minority":
        k = n // 2
        a, b = ids[:k], ids[k:]
        cut = [(x, y) for x in a for y in b]
    else:  # bridge: two halves that cannot talk, one node talks to both
        bridge = ids[0]
        rest = ids[1:]
        a, b = rest[: len(rest) // 2], rest[len(rest) // 2:]
        cut = [(x, y) for x in a for y in b]
        return {"kind": kind, "bridge": bridge, "a": a, "b": b, "cut": cut}
    return {"kind": kind, "a": a, "b": b, "cut": cut}


class ClockNemesis(Nemesis):
    """Clock skew through libfaketime (Debian `faketime`). Every node is started with
    LD_PRELOAD=libfaketime.so.1, FAKETIME_TIMESTAMP_FILE=<results>/clock/nI.faketime,
    FAKETIME_CACHE_DURATION=1 and FAKETIME_DONT_FAKE_MONOTONIC=1 (cluster.enable_faketime):
    only CLOCK_REALTIME (SystemTime: record and LogAppendTime timestamps, retention, ZooKeeper
    mtime/ctime, wall-clock deadlines) moves; CLOCK_MONOTONIC (Raft timers, tokio) stays real.
    start writes an offset into the target's file, stop writes "+0" (a jump back).

    The offset is a function of (run seed, index of this clock fault, target), so the same seed
    and topology give the same skews: usually a skew of 1..300 s either way, one time in five
    a jump of 1..24 h either way (kept below the default 7-day retention, so a jump cannot
    expire the workload's data the way it would in Kafka too)."""

    name = "clock"
    SKEW_S = (1, 300)
    JUMP_S = (3600, 86400)
    JUMP_P = 0.2

    def __init__(self):
        self.count = 0

    def unsupported(self, cluster):
        from .cluster import faketime_lib
        lib = faketime_lib()
        if lib is None:
            return ("clock skew needs libfaketime (Debian `faketime`: `make jepsen-deps`); "
                    "processes sharing one kernel cannot skew one process' clock otherwise")
        enable = getattr(cluster, "enable_faketime", None)
        if enable is None:  # a topology description (the suite's probe): nodes not built yet
            return None
        # Called by the runner before cluster.start(): from here on every node (re)starts
        # under libfaketime, with "+0" in its file until a clock fault.
        return enable(lib)

    @staticmethod
    def _run_seed(cluster) -> int:
        seed = getattr(cluster, "seed", None)
        if seed is None:  # results/<ts>-n<nodes>-s<seed>
            m = re.search(r"-s(\d+)$", Path(getattr(cluster, "workdir", "")).name)
            seed = int(m.group(1)) if m else 0
        return int(seed)

    def offset(self, seed: int, k: int, target: int) -> tuple[float, str]:
        rng = random.Random(f"clock/{seed}/{k}/{target}")
        sign = rng.choice((-1, 1))
        if rng.random() < self.JUMP_P:
            return sign * rng.randint(*self.JUMP_S), "jump"
        return sign * rng.randint(*self.SKEW_S), "skew"

    def start(self, cluster, target, aim="any"):
        n = cluster.nodes[target]
        k, self.count = self.count, self.count + 1
        off, how = self.offset(self._run_seed(cluster), k, target)
        spec = n.set_clock_offset(off)
        return {"node": n.name, "offset_s": off, "change": how, "spec": spec,
                "file": str(n.clock_file)}

    def stop(self, cluster, target, state):
        n = cluster.nodes[target]
        return {"node": n.name, "spec": n.set_clock_offset(0)}


class MembershipNemesis(Nemesis):
    """Controller-quorum membership changes through the admin CLI (`raftka quorum`): remove
    the target node from the Raft voters (through another node, which follows the leader
    hint); on heal add it back (learner first, promoted once caught up). The node keeps
    running as a broker throughout, so the Kafka workload sees a controller quorum of
    n - 1 voters for the duration."""

    name = "membership"

    def unsupported(self, cluster):
        if len(cluster.nodes) < 3:
            return "membership changes need at least 3 nodes"
        return None

    def start(self, cluster, target, aim="any"):
        # A voter an earlier fault could not add back (it was down, paused or cut off while
        # being added, in a mixed run) is added back first, so the quorum does not shrink
        # fault after fault.
        readd = [cluster.add_voter(i) for i in sorted(cluster.removed_voters) if i != target]
        res = cluster.remove_voter(target)
        return {**res, **({"re_added": readd} if readd else {})}

    def stop(self, cluster, target, state):
        return cluster.add_voter(target)


class JoinNemesis(Nemesis):
    """A brand-new node joins the cluster: node n + 1 (outside the initial voters) starts with
    an empty data dir, is added as a learner, catches up and becomes a voter, so the
    controller quorum has n + 1 voters while the fault lasts; on heal it is removed from the
    voters and stopped. The next join wipes its data again, so every join is a new node to
    the quorum. It holds no partition replicas (replica placement never moves), so the Kafka
    workload sees it only as a broker in Metadata."""

    name = "join"

    def unsupported(self, cluster):
        if len(cluster.nodes) < 3:
            return "a joining node needs a cluster of at least 3 nodes"
        enable = getattr(cluster, "enable_spare", None)
        return None if enable is None else enable()

    def start(self, cluster, target, aim="any"):
        return cluster.join_spare()

    def stop(self, cluster, target, state):
        return cluster.retire_spare()


NEMESES = {c.name: c for c in (KillNemesis, PauseNemesis, PartitionNemesis, ClockNemesis,
                               MembershipNemesis, JoinNemesis)}


class NemesisRunner(threading.Thread):
    """Follows the schedule; records every start/stop in the history as nemesis ops."""

    def __init__(self, cluster, rec: Recorder, faults: list[Fault], kinds: list[str],
                 stop: threading.Event, t0: float, topic: str = "jepsen", partitions: int = 1,
                 name: str = "nemesis", nemeses: dict[str, Nemesis] | None = None):
        super().__init__(name=name, daemon=True)
        self.cluster, self.rec, self.faults, self.stop_event, self.t0 = cluster, rec, faults, stop, t0
        self.topic, self.partitions = topic, partitions
        # Concurrent streams share nemesis instances (the clock nemesis counts its faults).
        self.nemeses = nemeses if nemeses is not None else {k: NEMESES[k]() for k in kinds}
        self.skipped: dict[str, str] = {}
        for k in kinds:
            why = self.nemeses[k].unsupported(cluster)
            if why:
                self.skipped[k] = why
                rec.nemesis(k, {"unsupported": why})
        self.done: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def _sleep_until(self, t: float) -> bool:
        while not self.stop_event.is_set():
            left = self.t0 + t - time.monotonic()
            if left <= 0:
                return True
            self.stop_event.wait(min(left, 0.5))
        return False

    def run(self) -> None:
        for fault in self.faults:
            if fault.kind in self.skipped:
                continue
            if not self._sleep_until(fault.at):
                return
            nem = self.nemeses[fault.kind]
            try:
                target, how = resolve_target(self.cluster, fault, self.topic, self.partitions)
                state = nem.start(self.cluster, target, fault.aim)
                self.rec.nemesis(f"{fault.kind}-start", {**asdict(fault), **how, **state,
                                                         "node_index": target})
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"{fault.kind} start: {e!r}")
                continue
            # Heal even when asked to stop early.
            end = time.monotonic() + fault.duration
            while time.monotonic() < end and not self.stop_event.is_set():
                self.stop_event.wait(min(0.5, max(0.0, end - time.monotonic())))
            try:
                res = nem.stop(self.cluster, target, state)
                self.rec.nemesis(f"{fault.kind}-stop", {**asdict(fault), **res})
                self.done.append({**asdict(fault)})
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"{fault.kind} stop: {e!r}")
