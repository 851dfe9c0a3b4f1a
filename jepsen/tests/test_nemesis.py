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
    why = nemesis.PartitionNemesis().unsupported(topo)
    assert isinstance(why, str) and why


def test_clock_supported_iff_libfaketime(monkeypatch, tmp_path):
    topo = LocalTopo(3)
    monkeypatch.setenv("RAFTKA_JEPSEN_FAKETIME_LIB", "")  # pretend it is not installed
    why = nemesis.ClockNemesis().unsupported(topo)
    assert isinstance(why, str) and "libfaketime" in why
    lib = tmp_path / "libfaketime.so.1"
    lib.write_bytes(b"")
    monkeypatch.setenv("RAFTKA_JEPSEN_FAKETIME_LIB", str(lib))
    assert nemesis.ClockNemesis().unsupported(topo) is None


def test_clock_nemesis_wires_nodes_and_writes_offsets(monkeypatch, tmp_path):
    from raftka_jepsen.cluster import LocalCluster
    lib = tmp_path / "libfaketime.so.1"
    lib.write_bytes(b"")
    binary = tmp_path / "raftka"
    binary.write_bytes(b"")
    monkeypatch.setenv("RAFTKA_JEPSEN_FAKETIME_LIB", str(lib))
    cluster = LocalCluster(3, tmp_path / "run-n3-s7", binary=binary)
    nem = nemesis.ClockNemesis()
    assert nem.unsupported(cluster) is None
    for n in cluster.nodes:
        assert n.env["LD_PRELOAD"] == str(lib)
        assert n.env["FAKETIME_DONT_FAKE_MONOTONIC"] == "1"
        assert n.env["FAKETIME_TIMESTAMP_FILE"] == str(n.clock_file)
        assert n.clock_file.read_text().strip() == "+0"
    state = nem.start(cluster, 1)
    assert 1 <= abs(state["offset_s"]) <= 86400
    assert cluster.nodes[1].clock_file.read_text().strip() == state["spec"] != "+0"
    assert cluster.nodes[0].clock_file.read_text().strip() == "+0"
    # Deterministic per (run seed, clock fault index, target).
    again = nemesis.ClockNemesis()
    again.unsupported(cluster)
    assert again.start(cluster, 1)["offset_s"] == state["offset_s"]
    assert nem.stop(cluster, 1, state)["spec"] == "+0"
    assert cluster.nodes[1].clock_file.read_text().strip() == "+0"
    kinds = {nem.offset(7, k, 0)[1] for k in range(50)}
    assert kinds == {"skew", "jump"}


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
