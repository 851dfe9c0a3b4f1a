"""The fault schedule is a pure function of (seed, kinds, time, nodes); nemeses that cannot
run on local processes say why instead of silently doing nothing."""

from __future__ import annotations

from raftka_jepsen import nemesis


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


def test_aims_are_seeded_and_resolved_against_the_cluster_at_fault_time():
    a = nemesis.schedule(5, ["kill", "partition"], 300, 3)
    assert a == nemesis.schedule(5, ["kill", "partition"], 300, 3)
    assert {f.aim for f in a} == set(nemesis.AIMS)
    assert {f.aim for f in nemesis.schedule(5, ["kill"], 300, 3, aims=("any",))} == {"any"}

    class Roles:
        nodes = [None] * 3

        def __init__(self, controller, leaders):
            self.controller, self.leaders, self.asked = controller, leaders, []

        def controller_leader(self):
            return self.controller

        def partition_leader(self, topic, p):
            self.asked.append((topic, p))
            return self.leaders.get(p)

    class N:
        def __init__(self, name):
            self.name = name
    roles = Roles(2, {1: 0})
    roles.nodes = [N("n1"), N("n2"), N("n3")]
    f = nemesis.Fault(1.0, "kill", 0, 2.0, aim="controller")
    assert nemesis.resolve_target(roles, f, "jepsen", 4) == (2, {"aimed_at": "n3"})
    f = nemesis.Fault(1.0, "kill", 1, 2.0, aim="leader")
    assert nemesis.resolve_target(roles, f, "jepsen", 4) == (0, {"aimed_at": "n1"})
    assert roles.asked == [("jepsen", 1)]
    f = nemesis.Fault(1.0, "pause", 2, 2.0, aim="leader")  # partition 2 has no leader now
    t, how = nemesis.resolve_target(roles, f, "jepsen", 4)
    assert t == 2 and "aim_fallback" in how
    f = nemesis.Fault(1.0, "pause", 1, 2.0, aim="any")
    assert nemesis.resolve_target(roles, f, "jepsen", 4) == (1, {})


def test_aimed_partition_isolates_the_role_holder():
    class Net:
        nodes = [None] * 5

        def partition(self, plan):
            return {"plan": plan}
    plan = nemesis.PartitionNemesis().start(Net(), 3, "controller")["plan"]
    assert plan["kind"] == "isolate-controller" and plan["a"] == [3]
    assert sorted(plan["b"]) == [0, 1, 2, 4]
    assert sorted(plan["cut"]) == [(3, 0), (3, 1), (3, 2), (3, 4)]


def test_mixed_streams_overlap_and_are_each_one_fault_at_a_time():
    streams = nemesis.mixed_streams(["kill", "pause", "partition", "clock", "membership"])
    assert streams == [["kill", "pause"], ["partition", "clock", "membership"]]
    assert nemesis.mixed_streams(["kill", "pause", "membership"]) == [["kill", "pause"],
                                                                     ["membership"]]
    assert nemesis.mixed_streams(["kill"]) == [["kill"]]
    faults = [f for k, kinds in enumerate(streams)
              for f in nemesis.schedule(9 + k * nemesis.MIXED_SEED_STRIDE, kinds, 300, 3,
                                        stream=k)]
    by = {k: [f for f in faults if f.stream == k] for k in (0, 1)}
    for fs in by.values():
        assert fs
        for f, g in zip(fs, fs[1:]):
            assert f.at + f.duration < g.at
    overlap = any(f.at < g.at + g.duration and g.at < f.at + f.duration
                  for f in by[0] for g in by[1])
    assert overlap, "two streams over 300 s should overlap at least once"


def test_membership_readds_voters_an_earlier_fault_left_out():
    calls = []

    class C:
        nodes = [None] * 3
        removed_voters = {0}

        def add_voter(self, i):
            calls.append(("add", i))
            self.removed_voters.discard(i)
            return {"rc": 0}

        def remove_voter(self, i):
            calls.append(("remove", i))
            self.removed_voters.add(i)
            return {"rc": 0}
    c = C()
    m = nemesis.MembershipNemesis()
    state = m.start(c, 2)
    assert calls == [("add", 0), ("remove", 2)] and state["re_added"] == [{"rc": 0}]
    m.stop(c, 2, state)
    assert calls[-1] == ("add", 2) and c.removed_voters == set()


def test_netns_slots_do_not_share_names_or_addresses():
    from raftka_jepsen import netns
    a, b = netns.Net(0), netns.Net(3)
    assert (a.ns(1), a.bridge, a.addr(2)) == ("rk-n1", "rk-br0", "10.77.0.2")
    assert (b.ns(1), b.bridge, b.addr(2)) == ("rk3-n1", "rk3-br0", "10.77.3.2")
    assert max(len(f"{b.ns(5)}-out"), len(b.bridge)) <= 15  # IFNAMSIZ - 1
    assert netns.ns(1) == "rk-n1" and netns.addr(1) == "10.77.0.1"


def test_join_prepares_a_spare_outside_the_initial_voters(tmp_path):
    from raftka_jepsen.cluster import LocalCluster
    binary = tmp_path / "raftka"
    binary.write_bytes(b"")
    cluster = LocalCluster(3, tmp_path / "run-n3-s1", binary=binary)
    assert nemesis.JoinNemesis().unsupported(LocalTopo(1))
    assert nemesis.JoinNemesis().unsupported(cluster) is None
    spare = cluster.spare
    assert spare is not None and spare.node_id == 4 and not spare.is_running()
    assert spare.quorum == cluster.nodes[0].quorum and "4@" not in spare.quorum
    assert spare not in cluster.nodes and cluster.bootstrap.count(",") == 2
    assert nemesis.JoinNemesis().unsupported(cluster) is None and cluster.spare is spare
    assert cluster.retire_spare() == {"skipped": "no spare to retire"}


def test_controller_leader_reads_a_long_describe(tmp_path, monkeypatch):
    """5 nodes' describe JSON is longer than the tail kept in the history; the leader must
    still be found (it was not, in the first 5-node round: every controller aim fell back)."""
    import json as _json
    from raftka_jepsen.cluster import LocalCluster
    members = [{"node_id": i, "addr": f"10.77.9.{i}:9193", "voter": True, "matched_index": 123456}
               for i in range(1, 6)]
    text = _json.dumps({"leader_id": 4, "term": 7, "commit_index": 99, "members": members})
    assert len(text) > 300
    binary = tmp_path / "raftka"
    binary.write_text(f"#!/bin/sh\necho '{text}'\n")
    binary.chmod(0o755)
    cluster = LocalCluster(5, tmp_path / "run-n5-s1", binary=binary)
    monkeypatch.setattr(cluster, "_reachable", lambda exclude=None: cluster.nodes[:1])
    assert cluster.controller_leader() == 3
    assert "stdout" not in cluster.quorum("describe")
