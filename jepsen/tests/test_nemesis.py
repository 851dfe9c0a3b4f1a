"""The fault schedule is a pure function of (seed, kinds, time, nodes); nemeses that cannot
run on local processes say why instead of silently doing nothing."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raftka_jepsen import nemesis  # noqa: E402


class LocalTopo:
    topology = "local-processes"

    def __init__(self, n):
        self.nodes = [None] * n


def test_schedule_is_deterministic_and_bounded():
    a = nemesis.schedule(42, ["kill", "pause"], 300, 3)
    b = nemesis.schedule(42, ["kill", "pause"], 300, 3)
    assert a == b and len(a) > 10
    assert a != nemesis.schedule(43, ["kill", "pause"], 300, 3)
    for f, g in zip(a, a[1:]):
        assert f.at + f.duration < g.at  # one fault at a time
    assert a[-1].at + a[-1].duration <= 300
    assert {f.kind for f in a} == {"kill", "pause"}
    assert {f.target for f in a} <= {0, 1, 2}
    assert nemesis.schedule(1, [], 300, 3) == []


def test_unsupported_on_local_processes():
    topo = LocalTopo(3)
    assert nemesis.KillNemesis().unsupported(topo) is None
    assert nemesis.PauseNemesis().unsupported(topo) is None
    assert nemesis.MembershipNemesis().unsupported(topo) is None
    assert nemesis.MembershipNemesis().unsupported(LocalTopo(1))
    for cls in (nemesis.PartitionNemesis, nemesis.ClockNemesis):
        why = cls().unsupported(topo)
        assert isinstance(why, str) and why


def test_grudges_cut_only_between_groups():
    for seed in range(20):
        g = nemesis.grudge(5, seed)
        a, b = set(g["a"]), set(g["b"])
        assert a and b and not (a & b)
        assert all((x in a and y in b) for x, y in g["cut"])
        if g["kind"] == "majority-minority":
            assert {len(a), len(b)} == {2, 3}
        if g["kind"] == "bridge":
            assert g["bridge"] not in a | b
