"""The checker catches what it claims, and only that. Histories are built by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from raftka_jepsen import checker, linearizability as lin
from raftka_jepsen.history import normalize

JEPSEN_DIR = Path(__file__).resolve().parents[1]


class H:
    """History builder: ops are appended in real-time order."""

    def __init__(self):
        self.ops = []

    def inv(self, p, f, value=None):
        self.ops.append({"type": "invoke", "process": p, "f": f, "value": value})
        return self

    def done(self, p, f, typ="ok", value=None):
        self.ops.append({"type": typ, "process": p, "f": f, "value": value})
        return self

    def send(self, p, key, val, offset, typ="ok"):
        self.inv(p, "send", {"key": key, "value": val})
        return self.done(p, "send", typ, {"key": key, "value": val, "offset": offset}
                         if typ == "ok" else None)

    def poll(self, p, records, mode="assign"):
        self.inv(p, "poll")
        return self.done(p, "poll", "ok", {"records": [list(r) for r in records], "mode": mode})

    def commit(self, p, group, offsets, typ="ok"):
        self.inv(p, "commit", {"group": group, "offsets": offsets})
        return self.done(p, "commit", typ)

    def drain(self):
        self.inv("final", "drain")
        return self.done("final", "drain", "ok", {})

    def check(self):
        return checker.check(normalize(self.ops))


def clean_queue() -> H:
    h = H()
    for i in range(5):
        h.send(0, "t-0", i, i)
        h.send(1, "t-1", 100 + i, i)
    h.poll(10, [("t-0", 0, 0), ("t-0", 1, 1), ("t-1", 0, 100)])
    h.poll(10, [("t-0", 2, 2), ("t-0", 3, 3), ("t-0", 4, 4), ("t-1", 1, 101)])
    h.poll(10, [("t-1", 2, 102), ("t-1", 3, 103), ("t-1", 4, 104)])
    h.commit(20, "g", {"t-0": 3})
    h.commit(20, "g", {"t-0": 5, "t-1": 5})
    h.inv(20, "committed").done(20, "committed", "ok", {"group": "g", "offsets": {"t-0": 5}})
    return h.drain()


def only(summary, *expected):
    """Exactly the `expected` anomaly kinds are non-zero."""
    nonzero = {k for k, n in summary["counts"].items() if n}
    assert nonzero == set(expected), (nonzero, summary["examples"])


def test_clean_history_is_valid():
    s = clean_queue().check()
    only(s)
    assert s["valid"] is True and s["errors"] == []
    assert s["acked_sends"] == 10 and s["distinct_values_read"] == 10


def test_lost_write():
    h = H()
    h.send(0, "t-0", "a", 0).send(0, "t-0", "b", 1).send(0, "t-0", "c", 2)
    h.poll(5, [("t-0", 0, "a"), ("t-0", 2, "c")])  # skips b: also a poll-skip in assign mode
    s = h.check()
    only(s, "lost-write", "poll-skip")
    assert s["examples"]["lost-write"][0]["value"] == "b"
    assert s["counts"]["lost-write"] == 1 and s["valid"] is False


def test_lost_write_subscribe_mode_is_only_lost():
    h = H()
    h.send(0, "t-0", "a", 0).send(0, "t-0", "b", 1).send(0, "t-0", "c", 2)
    h.poll(5, [("t-0", 0, "a"), ("t-0", 2, "c")], mode="subscribe")
    only(h.check(), "lost-write")


def test_unseen_is_warning_until_drained():
    h = H()
    h.send(0, "t-0", "a", 0).send(0, "t-0", "b", 1)
    h.poll(5, [("t-0", 0, "a")])
    s = h.check()
    only(s, "unseen")
    assert s["valid"] is True  # not yet an error: nothing after it was read, no drain
    h.drain()
    s = h.check()
    assert s["valid"] is False and s["errors"] == ["unseen"]


def test_info_send_never_read_is_not_lost():
    h = H()
    h.send(0, "t-0", "a", 0)
    h.send(0, "t-0", "maybe", None, typ="info")
    h.send(1, "t-0", "c", 1)
    h.poll(5, [("t-0", 0, "a"), ("t-0", 1, "c")])
    h.drain()
    only(h.check())


def test_duplicate():
    h = H()
    h.send(0, "t-0", "a", 0).send(0, "t-0", "b", 1)
    h.poll(5, [("t-0", 0, "a"), ("t-0", 1, "b"), ("t-0", 2, "a")])
    s = h.check()
    only(s, "duplicate")
    assert s["examples"]["duplicate"][0] == {"value": "a", "positions": [("t-0", 0), ("t-0", 2)]}


def test_inconsistent_offset():
    h = H()
    h.send(0, "t-0", "a", 0).send(1, "t-0", "b", 0)  # two acks at the same offset
    h.poll(5, [("t-0", 0, "a")])
    h.drain()
    s = h.check()
    # b was acknowledged at offset 0 but 0 holds a: inconsistent; b is never read: unseen.
    only(s, "inconsistent-offset", "unseen")
    assert s["examples"]["inconsistent-offset"][0]["offset"] == 0


def test_poll_skip_assign():
    h = H()
    for i in range(4):
        h.send(0, "t-0", i, i)
    h.poll(5, [("t-0", 0, 0), ("t-0", 1, 1)])
    h.poll(6, [("t-0", 2, 2)])  # another consumer proves offset 2 exists
    h.poll(5, [("t-0", 3, 3)])  # consumer 5 skipped 2
    s = h.check()
    only(s, "poll-skip")
    e = s["examples"]["poll-skip"][0]
    assert (e["process"], e["prev_offset"], e["offset"], e["skipped"]) == (5, 1, 3, [2])


def test_gap_that_does_not_exist_is_not_a_skip():
    h = H()
    h.send(0, "t-0", "a", 0).send(0, "t-0", "b", 5)  # offsets 1-4 never existed (e.g. markers)
    h.poll(5, [("t-0", 0, "a"), ("t-0", 5, "b")])
    only(h.check())


def test_nonmonotonic_poll_and_assign_reset():
    h = H()
    for i in range(3):
        h.send(0, "t-0", i, i)
    h.poll(5, [("t-0", 0, 0), ("t-0", 1, 1), ("t-0", 2, 2)])
    h.poll(5, [("t-0", 1, 1)])  # went backwards without a seek
    s = h.check()
    only(s, "nonmonotonic-poll")
    # After an explicit assign (seek / rebalance) re-reading is legal.
    h2 = H()
    for i in range(3):
        h2.send(0, "t-0", i, i)
    h2.poll(5, [("t-0", 0, 0), ("t-0", 1, 1), ("t-0", 2, 2)])
    h2.inv(5, "assign").done(5, "assign", "ok", {"partitions": ["t-0"], "mode": "assign"})
    h2.poll(5, [("t-0", 1, 1)])
    only(h2.check())


def test_nonmonotonic_send():
    h = H()
    h.send(0, "t-0", "a", 3).send(0, "t-0", "b", 2)
    h.poll(5, [("t-0", 2, "b"), ("t-0", 3, "a")])
    s = h.check()
    only(s, "nonmonotonic-send")


def test_commit_backwards():
    h = H()
    for i in range(6):
        h.send(0, "t-0", i, i)
    h.poll(5, [("t-0", i, i) for i in range(6)], mode="subscribe")
    h.commit(5, "g", {"t-0": 5})
    h.commit(6, "g", {"t-0": 2})  # another member, after the first commit completed
    s = h.check()
    only(s, "commit-backwards")
    e = s["examples"]["commit-backwards"][0]
    assert (e["offset"], e["earlier_offset"]) == (2, 5)


def test_committed_read_backwards_and_concurrent_commits_ok():
    h = H()
    h.commit(5, "g", {"t-0": 5})
    h.inv(6, "committed").done(6, "committed", "ok", {"group": "g", "offsets": {"t-0": 3}})
    only(h.check(), "commit-backwards")
    # Concurrent commits may land in either order: no anomaly.
    h = H()
    h.inv(5, "commit", {"group": "g", "offsets": {"t-0": 5}})
    h.inv(6, "commit", {"group": "g", "offsets": {"t-0": 3}})
    h.done(5, "commit").done(6, "commit")
    only(h.check())


# ---------------------------------------------------------------------------- register ----

def reg(h: H, p, f, typ="ok", inv_value=None, ok_value=None):
    h.inv(p, f, inv_value)
    return h.done(p, f, typ, ok_value)


def test_register_stale_read_after_completed_write_is_not_linearizable():
    h = H()
    reg(h, 0, "reg-create", ok_value={"value": 0, "version": 0})
    reg(h, 1, "reg-write", inv_value={"value": 1, "version": 0}, ok_value={"new_version": 1})
    reg(h, 2, "reg-read", ok_value={"value": 0, "version": 0})  # stale: the write completed
    s = h.check()
    only(s, "register-nonlinearizable")
    assert s["register"]["valid"] is False and s["valid"] is False


def test_register_concurrent_read_may_see_either():
    for seen in ({"value": 0, "version": 0}, {"value": 1, "version": 1}):
        h = H()
        reg(h, 0, "reg-create", ok_value={"value": 0, "version": 0})
        h.inv(1, "reg-write", {"value": 1, "version": 0})
        h.inv(2, "reg-read")
        h.done(2, "reg-read", "ok", seen)
        h.done(1, "reg-write", "ok", {"new_version": 1})
        reg(h, 2, "reg-read", ok_value={"value": 1, "version": 1})
        s = h.check()
        only(s)
        assert s["register"]["valid"] is True


def test_register_concurrent_writers_both_with_same_expected_version():
    # Two versioned writes with the same expected version cannot both succeed.
    h = H()
    reg(h, 0, "reg-create", ok_value={"value": 0, "version": 0})
    h.inv(1, "reg-write", {"value": 1, "version": 0})
    h.inv(2, "reg-write", {"value": 2, "version": 0})
    h.done(1, "reg-write", "ok", {"new_version": 1})
    h.done(2, "reg-write", "ok", {"new_version": 1})
    only(h.check(), "register-nonlinearizable")
    # ... but one ok and one BadVersion (fail) is fine.
    h = H()
    reg(h, 0, "reg-create", ok_value={"value": 0, "version": 0})
    h.inv(1, "reg-write", {"value": 1, "version": 0})
    h.inv(2, "reg-write", {"value": 2, "version": 0})
    h.done(1, "reg-write", "ok", {"new_version": 1})
    h.done(2, "reg-write", "fail")
    reg(h, 3, "reg-read", ok_value={"value": 1, "version": 1})
    only(h.check())


def test_register_indeterminate_write_may_or_may_not_apply():
    for final in ({"value": 0, "version": 0}, {"value": 7, "version": 1}):
        h = H()
        reg(h, 0, "reg-create", ok_value={"value": 0, "version": 0})
        reg(h, 1, "reg-write", "info", inv_value={"value": 7, "version": 0})
        reg(h, 2, "reg-read", ok_value=final)
        only(h.check())
    # Flip-flopping is not allowed: seen applied, then not.
    h = H()
    reg(h, 0, "reg-create", ok_value={"value": 0, "version": 0})
    reg(h, 1, "reg-write", "info", inv_value={"value": 7, "version": 0})
    reg(h, 2, "reg-read", ok_value={"value": 7, "version": 1})
    reg(h, 2, "reg-read", ok_value={"value": 0, "version": 0})
    only(h.check(), "register-nonlinearizable")


def test_register_search_is_bounded_and_memoized():
    # 12 processes each doing concurrent reads of value 0 and one write: exponential without
    # memoization, trivial with it.
    ops = []
    ops.append(lin.LinOp(0, 0, "reg-write", {"value": 1, "version": 0}, 0, 100, False))
    for i in range(1, 40):
        ops.append(lin.LinOp(i, i, "reg-read", {"value": 0, "version": 0}, i, 200 + i, False))
    r = lin.check(ops, (0, 0))
    assert r.valid is True and r.steps < 10_000
    r = lin.check(ops + [lin.LinOp(40, 99, "reg-read", {"value": 5, "version": 9}, 300, 301, False)],
                  (0, 0), max_steps=50)
    assert r.valid is None  # budget exhausted: unknown, not a false verdict


# ------------------------------------------------------------------------ sequential ----

def seq(h, p, path, typ="ok"):
    h.inv(p, "seq-create", {"prefix": "/jepsen/seq/n-"})
    return h.done(p, "seq-create", typ, {"path": path} if typ == "ok" else None)


def test_sequential_znodes():
    h = H()
    seq(h, 0, "/jepsen/seq/n-0000000000")
    seq(h, 1, "/jepsen/seq/n-0000000002")
    seq(h, 0, "/jepsen/seq/n-0000000003")
    only(h.check())
    seq(h, 2, "/jepsen/seq/n-0000000001")  # after 3 completed: goes backwards
    only(h.check(), "seq-nonmonotonic")
    h = H()
    seq(h, 0, "/jepsen/seq/n-0000000000")
    seq(h, 1, "/jepsen/seq/n-0000000000")
    s = h.check()
    assert s["counts"]["seq-duplicate"] == 1 and s["valid"] is False


# ------------------------------------------------------------------------------ CLI ----

def test_cli_check_writes_text_and_json(tmp_path):
    hist = tmp_path / "history.jsonl"
    h = clean_queue()
    reg(h, 0, "reg-create", ok_value={"value": 0, "version": 0})
    h.ops.append({"type": "info", "process": "nemesis", "f": "kill", "value": {"node": 1}})
    h.ops.append({"type": "info", "process": "nemesis", "f": "partition",
                  "value": {"unsupported": "local processes share one network namespace"}})
    hist.write_text("".join(json.dumps(o) + "\n" for o in h.ops))
    r = subprocess.run([sys.executable, "-m", "raftka_jepsen", "check", str(hist)],
                       cwd=JEPSEN_DIR, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid?" in r.stdout and "lost-write" in r.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["valid"] is True and summary["faults"] == {"kill": 1}
    assert summary["unsupported_nemeses"][0]["f"] == "partition"
    # An invalid history exits 1.
    bad = H()
    reg(bad, 0, "reg-create", ok_value={"value": 0, "version": 0})
    reg(bad, 1, "reg-write", inv_value={"value": 1, "version": 0}, ok_value={"new_version": 1})
    reg(bad, 2, "reg-read", ok_value={"value": 0, "version": 0})
    hist.write_text("".join(json.dumps(o) + "\n" for o in bad.ops))
    r = subprocess.run([sys.executable, "-m", "raftka_jepsen", "check", str(hist)],
                       cwd=JEPSEN_DIR, capture_output=True, text=True)
    assert r.returncode == 1 and "ERROR" in r.stdout


def test_rebalance_in_poll_resets_position():
    h = H()
    for i in range(3):
        h.send(0, "t-0", i, i)
    h.poll(5, [("t-0", 0, 0), ("t-0", 1, 1), ("t-0", 2, 2)], mode="subscribe")
    h.inv(5, "poll").done(5, "poll", "ok", {"records": [["t-0", 1, 1]], "mode": "subscribe",
                                            "rebalance": ["t-0"]})
    only(h.check())


def test_liveness_is_reported_apart_from_safety():
    h = clean_queue()
    h.ops.append({"type": "info", "process": "nemesis", "f": "liveness",
                  "value": {"unresponsive": ["n1"]}})
    s = h.check()
    assert s["valid"] is True and s["unresponsive_after_heal"] == ["n1"] and s["faults"] == {}
    assert "unresponsive after heal  n1" in checker.render_text(s).replace("   ", "  ") or \
        "n1" in checker.render_text(s)


def simulated_register_history(seed: int, n_ops: int = 3000, procs: int = 5, info_p: float = 0.01):
    """A real register driven by `procs` concurrent clients; each op takes effect at a random
    point between its invocation and completion (so the history is linearizable by
    construction). Some writes time out (info) after taking effect or without taking effect."""
    import random
    rng = random.Random(seed)
    version, value = 0, 0
    h = H()
    reg(h, "setup", "reg-create", ok_value={"value": 0, "version": 0})
    pending = {}  # process -> [f, request, phase]
    pid_of = {p: p for p in range(procs)}
    next_pid = procs
    done = 0
    while done < n_ops or pending:
        p = rng.randrange(procs)
        pid = pid_of[p]
        if p not in pending:
            if done >= n_ops:
                continue
            if rng.random() < 0.5:
                h.inv(pid, "reg-read")
                pending[p] = ["reg-read", None, None]
            else:
                req = {"value": done + 1, "version": version if rng.random() < 0.7 else
                       rng.choice([-1, max(0, version - 1)])}
                h.inv(pid, "reg-write", req)
                pending[p] = ["reg-write", req, None]
            done += 1
        elif pending[p][2] is None:  # linearization point
            f, req, _ = pending[p]
            if f == "reg-read":
                pending[p][2] = {"value": value, "version": version}
            elif req["version"] in (-1, version):
                version, value = version + 1, req["value"]
                pending[p][2] = {"new_version": version}
            else:
                pending[p][2] = "badversion"
        else:
            f, req, res = pending.pop(p)
            if f == "reg-write" and rng.random() < info_p:
                h.done(pid, f, "info")
                pid_of[p] = next_pid
                next_pid += 1
            elif res == "badversion":
                h.done(pid, f, "fail")
            else:
                h.done(pid, f, "ok", res)
    return h


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_register_checker_on_simulated_concurrent_histories(seed):
    import time as _time
    h = simulated_register_history(seed)
    t = _time.monotonic()
    s = h.check()
    assert s["register"]["valid"] is True, s["examples"]
    assert _time.monotonic() - t < 20
    # Corrupt one late ok read to a value that was never written: must be caught.
    for op in reversed(h.ops):
        if op["f"] == "reg-read" and op["type"] == "ok":
            op["value"] = {"value": -42, "version": op["value"]["version"]}
            break
    s = h.check()
    assert s["register"]["valid"] is False and s["counts"]["register-nonlinearizable"] == 1


# ---- transactional workload ---------------------------------------------------------------

def txn(h, p, sends, typ):
    h.inv(p, "txn", {"sends": [list(s) for s in sends], "abort": typ == "fail"})
    return h.done(p, "txn", typ, {"sends": [list(s) for s in sends]})


def txn_poll(h, p, records):
    h.inv(p, "txn-poll")
    return h.done(p, "txn-poll", "ok", {"records": [list(r) for r in records]})


def txn_drain(h, records):
    txn_poll(h, "final-txn", records)
    h.inv("final-txn", "txn-drain")
    return h.done("final-txn", "txn-drain", "ok", {})


def test_txn_clean_history_is_valid():
    h = H()
    txn(h, 0, [("x-0", 1), ("x-1", 2)], "ok")
    txn(h, 0, [("x-0", 3)], "fail")
    txn(h, 1, [("x-1", 4), ("x-0", 5)], "info")
    txn_poll(h, 9, [("x-0", 0, 1), ("x-1", 0, 2)])
    # The indeterminate one committed after all (both values present: atomic).
    txn_drain(h, [("x-0", 0, 1), ("x-1", 0, 2), ("x-1", 2, 4), ("x-0", 3, 5)])
    s = h.check()
    only(s)
    assert s["valid"] is True and s["txns"] == 3 and s["txns_committed"] == 1
    assert s["txn_drained"] is True


def test_txn_aborted_read_and_phantom():
    h = H()
    txn(h, 0, [("x-0", 1)], "fail")
    txn_poll(h, 9, [("x-0", 0, 1)])
    txn_drain(h, [])
    s = h.check()
    only(s, "txn-aborted-read", "txn-phantom-read")
    assert s["valid"] is False


def test_txn_lost_and_non_atomic():
    h = H()
    txn(h, 0, [("x-0", 1), ("x-1", 2)], "ok")
    txn(h, 1, [("x-0", 3), ("x-1", 4)], "info")
    txn_drain(h, [("x-0", 0, 1), ("x-1", 0, 4)])
    s = h.check()
    only(s, "txn-lost", "txn-non-atomic")
    assert s["examples"]["txn-lost"][0]["missing"] == [2]


def test_txn_lost_needs_a_drain():
    h = H()
    txn(h, 0, [("x-0", 1)], "ok")
    only(h.check())


def test_txn_duplicate_inconsistent_nonmonotonic():
    h = H()
    txn(h, 0, [("x-0", 1)], "ok")
    txn(h, 0, [("x-0", 2)], "ok")
    txn_poll(h, 9, [("x-0", 5, 1), ("x-0", 4, 2)])
    txn_poll(h, 8, [("x-0", 5, 2)])
    txn_drain(h, [("x-0", 5, 1), ("x-0", 6, 2)])
    s = h.check()
    only(s, "txn-duplicate", "txn-inconsistent", "txn-nonmonotonic")


def test_txn_ww_realtime_order_is_checked():
    h = H()
    txn(h, 0, [("x-0", 1), ("x-1", 2)], "ok")  # ends before the next one starts
    txn(h, 1, [("x-0", 3)], "ok")
    # The second transaction's value lies below the first's in x-0: against real time.
    txn_drain(h, [("x-0", 0, 3), ("x-0", 1, 1), ("x-1", 0, 2)])
    s = h.check()
    only(s, "txn-ww-realtime")
    assert s["valid"] is False
    assert s["examples"]["txn-ww-realtime"][0]["partition"] == "x-0"


def test_txn_g0_cycles_of_concurrent_transactions_are_informational():
    h = H()
    # Two concurrent transactions (both invoked before either completes) that land in
    # opposite orders on two partitions: a write-write cycle, which Kafka allows.
    h.inv(0, "txn", {"sends": [["x-0", 1], ["x-1", 2]], "abort": False})
    h.inv(1, "txn", {"sends": [["x-0", 3], ["x-1", 4]], "abort": False})
    h.done(0, "txn", "ok", {"sends": [["x-0", 1], ["x-1", 2]]})
    h.done(1, "txn", "ok", {"sends": [["x-0", 3], ["x-1", 4]]})
    # A third, later one after both: in order everywhere, so in no cycle.
    txn(h, 2, [("x-0", 5), ("x-1", 6)], "ok")
    txn_drain(h, [("x-0", 0, 1), ("x-0", 1, 3), ("x-0", 2, 5),
                  ("x-1", 0, 4), ("x-1", 1, 2), ("x-1", 2, 6)])
    s = h.check()
    only(s)
    assert s["valid"] is True
    assert s["txn_g0_cycles"] == 1 and len(s["txn_g0_examples"][0]) == 2
    assert "G0, allowed" in checker.render_text(s)


def test_txn_ww_cycles_none_in_a_serial_history():
    h = H()
    for i in range(50):
        txn(h, i % 3, [("x-0", 2 * i), ("x-1", 2 * i + 1)], "ok")
    txn_drain(h, [("x-0", i, 2 * i) for i in range(50)] + [("x-1", i, 2 * i + 1) for i in range(50)])
    s = h.check()
    only(s)
    assert s["txn_g0_cycles"] == 0


def ctp(h, p, sends, reads, typ, group="g", consumer=1, tid=None):
    """A consume-transform-produce transaction: `reads` ([partition, offset, value]) made
    inside it, then `sends` written, the consumed offsets committed with it."""
    meta = {"group": group, "consumer": consumer, "tid": tid or f"ctp-{p}"}
    h.inv(p, "txn", {"sends": [list(s) for s in sends], "abort": typ == "fail", **meta})
    return h.done(p, "txn", typ, {"sends": [list(s) for s in sends],
                                  "reads": [list(r) for r in reads], **meta})


def test_txn_ctp_exactly_once_clean():
    h = H()
    txn(h, 0, [("x-0", 1), ("x-1", 2)], "ok")
    txn(h, 0, [("x-0", 3)], "ok")
    ctp(h, 5, [("x-1", 10)], [("x-0", 0, 1), ("x-1", 0, 2)], "ok")
    # Aborted: its reads are consumed again by the next incarnation.
    ctp(h, 5, [("x-1", 11)], [("x-0", 1, 3)], "fail")
    ctp(h, 5, [("x-0", 12)], [("x-0", 1, 3), ("x-1", 2, 10)], "ok", consumer=2)
    txn_drain(h, [("x-0", 0, 1), ("x-1", 0, 2), ("x-0", 1, 3), ("x-1", 2, 10), ("x-0", 3, 12)])
    s = h.check()
    only(s)
    assert s["valid"] is True and s["txn_ctp_committed"] == 2
    # 1 -> ctp1 (two reads, one edge), 3 -> ctp3, ctp1 -> ctp3 (it read ctp1's value 10).
    assert s["txn_wr_edges"] == 3


def test_txn_ctp_duplicate_and_skip():
    h = H()
    txn(h, 0, [("x-0", 1)], "ok")
    txn(h, 0, [("x-0", 2)], "ok")
    txn(h, 0, [("x-0", 3)], "ok")
    ctp(h, 5, [("x-1", 10)], [("x-0", 0, 1)], "ok")
    # A stale committed offset served: record 0 consumed again by a committed transaction;
    # then record 1 passed over.
    ctp(h, 5, [("x-1", 11)], [("x-0", 0, 1)], "ok", consumer=2)
    ctp(h, 5, [("x-1", 12)], [("x-0", 2, 3)], "ok", consumer=3)
    txn_drain(h, [("x-0", 0, 1), ("x-0", 1, 2), ("x-0", 2, 3),
                  ("x-1", 0, 10), ("x-1", 1, 11), ("x-1", 2, 12)])
    s = h.check()
    only(s, "txn-ctp-duplicate", "txn-ctp-skip")
    assert s["examples"]["txn-ctp-duplicate"][0]["offset"] == 0
    assert s["examples"]["txn-ctp-skip"] == [{"group": "g", "partition": "x-0", "offset": 1}]


def test_txn_ctp_indeterminate_reads_excuse_a_gap_but_never_count_twice():
    h = H()
    txn(h, 0, [("x-0", 1)], "ok")
    txn(h, 0, [("x-0", 2)], "ok")
    ctp(h, 5, [("x-1", 10)], [("x-0", 0, 1)], "info")  # committed after all: not re-read
    ctp(h, 6, [("x-1", 11)], [("x-0", 1, 2)], "ok", consumer=2)
    txn_drain(h, [("x-0", 0, 1), ("x-0", 1, 2), ("x-1", 0, 10), ("x-1", 1, 11)])
    only(h.check())


def test_txn_g1c_write_read_cycle_is_an_error():
    h = H()
    # Two concurrent committed transactions that each read the other's value: each must
    # have committed before the other read it, which no commit order allows.
    for p, (send, read) in enumerate([(("x-0", 1), ("x-1", 0, 2)), (("x-1", 2), ("x-0", 0, 1))]):
        h.inv(p, "txn", {"sends": [list(send)], "abort": False, "group": f"g{p}",
                         "consumer": 1, "tid": f"t{p}"})
    for p, (send, read) in enumerate([(("x-0", 1), ("x-1", 0, 2)), (("x-1", 2), ("x-0", 0, 1))]):
        h.done(p, "txn", "ok", {"sends": [list(send)], "reads": [list(read)], "group": f"g{p}",
                                "consumer": 1, "tid": f"t{p}"})
    txn_drain(h, [("x-0", 0, 1), ("x-1", 0, 2)])
    s = h.check()
    only(s, "txn-g1c")
    assert s["examples"]["txn-g1c"][0]["size"] == 2


def test_txn_g1c_through_process_order():
    h = H()
    # t0 commits A, then B; C reads B's value and A reads C's: A -> B (process order),
    # B -> C (wr), C -> A (wr).
    h.inv(0, "txn", {"sends": [["x-2", 1]], "abort": False, "tid": "t0"})
    h.inv(1, "txn", {"sends": [["x-1", 3]], "abort": False, "tid": "t1", "group": "g1",
                     "consumer": 1})
    h.done(0, "txn", "ok", {"sends": [["x-2", 1]], "reads": [["x-1", 0, 3]], "tid": "t0",
                            "group": "g0", "consumer": 1})
    h.inv(0, "txn", {"sends": [["x-0", 2]], "abort": False, "tid": "t0"})
    h.done(0, "txn", "ok", {"sends": [["x-0", 2]], "tid": "t0"})
    h.done(1, "txn", "ok", {"sends": [["x-1", 3]], "reads": [["x-0", 0, 2]], "tid": "t1",
                            "group": "g1", "consumer": 1})
    txn_drain(h, [("x-2", 0, 1), ("x-0", 0, 2), ("x-1", 0, 3)])
    s = h.check()
    only(s, "txn-g1c")
    assert s["examples"]["txn-g1c"][0]["size"] == 3


def test_txn_future_read():
    h = H()
    txn_poll(h, 9, [("x-0", 0, 7)])  # done before the transaction writing 7 began
    txn(h, 0, [("x-0", 7)], "ok")
    txn_drain(h, [("x-0", 0, 7)])
    only(h.check(), "txn-future-read")


def test_txn_cycle_through_ww_and_wr_is_informational():
    h = H()
    # T1 writes x-0 first; T2 writes x-0 after it and x-1, commits; T1 reads T2's x-1 value
    # and commits: T1 -ww-> T2 -wr-> T1. Kafka orders writes by offset, not by commit.
    h.inv(0, "txn", {"sends": [["x-0", 1]], "abort": False, "tid": "t0", "group": "g",
                     "consumer": 1})
    txn(h, 1, [("x-0", 2), ("x-1", 3)], "ok")
    h.done(0, "txn", "ok", {"sends": [["x-0", 1]], "reads": [["x-1", 0, 3]], "tid": "t0",
                            "group": "g", "consumer": 1})
    txn_drain(h, [("x-0", 0, 1), ("x-0", 1, 2), ("x-1", 0, 3)])
    s = h.check()
    only(s)
    assert s["txn_g1c_ww_cycles"] == 1 and s["txn_g0_cycles"] == 0
    assert "ww and wr (allowed)" in checker.render_text(s)


def test_txn_poll_skip_counts_committed_records_only():
    h = H()
    txn(h, 0, [("x-0", 1)], "ok")
    txn(h, 0, [("x-0", 2)], "fail")  # aborted at offset 1 (its marker at 2)
    txn(h, 0, [("x-0", 3)], "ok")
    txn(h, 0, [("x-0", 4)], "ok")
    txn_poll(h, 9, [("x-0", 0, 1), ("x-0", 4, 3)])  # passing 1-3: no committed record there
    txn_poll(h, 8, [("x-0", 0, 1), ("x-0", 6, 4)])  # passes offset 4, committed: a skip
    txn_drain(h, [("x-0", 0, 1), ("x-0", 4, 3), ("x-0", 6, 4)])
    s = h.check()
    only(s, "txn-poll-skip")
    assert s["examples"]["txn-poll-skip"] == [
        {"process": 8, "partition": "x-0", "from": 0, "to": 6, "skipped": 4}]
