"""Checker for raftka Jepsen histories (see history.py for the format).

Queue checks follow Jepsen's Kafka workload checker (jepsen.tests.kafka):

lost-write          an acknowledged send (ok, offset o in partition P) whose value no poll
                    ever returned, while some poll returned an offset > o in P.
unseen              an acknowledged send never read, with nothing later in P read either
                    (it may just not have been polled yet). An error only once a `drain`
                    (read to the end of every partition) completed; otherwise a warning.
duplicate           one value observed at two or more distinct (partition, offset) positions
                    (observations: send acknowledgements and poll records).
inconsistent-offset one (partition, offset) observed with two or more distinct values.
nonmonotonic-send   one producer process, one partition: an ok send's offset is not greater
                    than the offset of that process' previous ok send to the partition.
nonmonotonic-poll   one consumer process, one partition: a polled offset is not greater than
                    the previous offset that process polled there (since its last `assign`
                    op, or a poll whose value lists the partition under "rebalance").
poll-skip           assign mode: one consumer process, one partition, successive polled
                    offsets o1 < o2 with some offset strictly between them known to exist
                    (observed by any send or poll) — the consumer silently skipped records.
commit-backwards    one group and partition: an ok commit, or a committed-offset read, that
                    began after another ok commit/read of that group/partition completed
                    observes a smaller offset (the workload only commits positions it has
                    consumed past and resumes from the committed offset, so this means a
                    committed offset was lost or a stale one served).

Transactional checks (the `txn` workload: values written in transactions, read by
read_committed consumers; Jepsen's Kafka transaction checks where they apply):
txn-aborted-read    a value of a transaction that was aborted (fail) was read (G1a).
txn-lost            once drained: a value of a committed (ok) transaction is not in the log.
txn-non-atomic      once drained: a committed or indeterminate transaction is only partly in
                    the log (some of its values, not all).
txn-phantom-read    once drained: a read_committed poll returned a value the final log does
                    not hold (read data that was later lost or aborted).
txn-duplicate       a value read at two or more (partition, offset) positions, or twice in the
                    final drain.
txn-inconsistent    one (partition, offset) read with two or more values.
txn-nonmonotonic    one reader process, one partition: offsets not increasing.
txn-ww-realtime     once drained: committed transaction T1 completed before committed T2 was
                    invoked, both wrote partition P, yet a value of T2 lies below one of T1 in
                    P (a write order against real time: G0-realtime, Elle's strict check).
txn-poll-skip       once drained: one reader (a poll process, or one consumer incarnation of a
                    consume-transform-produce worker), one partition, successive offsets
                    o1 < o2 with a committed record of the drained log between them (a
                    read_committed consumer passed over committed data; aborted records and
                    markers are not in the drained log).
txn-future-read     a read (poll, or inside a transaction) that completed before the
                    transaction that wrote the value was invoked, or a transaction that read
                    its own value (it reads before it writes; read_committed never shows a
                    transaction its own uncommitted writes).
txn-g1c             a cycle of edges that each order two commits (Elle's G1c with real-time
                    process order): wr, T1 wrote a value that committed T2 read (T1 committed
                    before the read, which precedes T2's commit), and process order, T1 then
                    T2 on one transactional.id (an indeterminate T1 is settled, committed or
                    aborted, by the init_transactions before T2). Nodes: committed
                    transactions and indeterminate ones whose values are in the drained log.
txn-ctp-duplicate   consume-transform-produce (a transaction that consumed in a group and
                    committed its offsets with send_offsets_to_transaction): one record
                    consumed by two committed transactions of one group (exactly-once broken:
                    a committed offset lost, served stale, or visible before its commit).
txn-ctp-skip        once drained: a committed record of a partition, below the furthest offset
                    a committed transaction of the group consumed there, that no committed or
                    indeterminate transaction of that group consumed (input lost).
Informational (reported, never an error): `txn-g0-cycles`, the write-write cycles between
committed transactions (Elle's G0) in the drained log, each partition ordering the
transactions that wrote it by offset. Kafka allows them: offsets are assigned as batches are
written, not at commit, so two concurrent transactions may land T1-before-T2 on one partition and
T2-before-T1 on another; the real-time variant above is what no Kafka may do. For the same
reason a cycle that needs a ww edge alongside wr edges (`txn-g1c-ww-cycles`: T1 writes P
before T2 does, T2 commits, T1 reads T2's value and commits) is allowed and only counted; the
cycles built from commit-ordering edges alone are `txn-g1c`.

ZooKeeper checks:
register            linearizability of reg-create/reg-read/reg-write (linearizability.py).
seq-duplicate       two ok sequential creates returned the same path.
seq-nonmonotonic    under one parent, create A completed before create B was invoked but
                    seq(B) <= seq(A).
"""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter, defaultdict
from typing import Any

from . import linearizability as lin
from .history import NEMESIS, pair_ops

QUEUE_ANOMALIES = ["lost-write", "duplicate", "inconsistent-offset", "nonmonotonic-send",
                   "nonmonotonic-poll", "poll-skip", "commit-backwards"]
ZK_ANOMALIES = ["register-nonlinearizable", "seq-duplicate", "seq-nonmonotonic"]
TXN_ANOMALIES = ["txn-aborted-read", "txn-lost", "txn-non-atomic", "txn-phantom-read",
                 "txn-duplicate", "txn-inconsistent", "txn-nonmonotonic", "txn-ww-realtime",
                 "txn-future-read", "txn-g1c", "txn-ctp-duplicate", "txn-ctp-skip",
                 "txn-poll-skip"]
ALL_ANOMALIES = QUEUE_ANOMALIES + ["unseen"] + ZK_ANOMALIES + TXN_ANOMALIES
EXAMPLES = 8  # examples kept per anomaly


def _merge(inv: dict[str, Any], comp: dict[str, Any] | None) -> dict[str, Any]:
    v: dict[str, Any] = {}
    if isinstance(inv.get("value"), dict):
        v.update(inv["value"])
    if comp is not None and isinstance(comp.get("value"), dict):
        v.update(comp["value"])
    return v


def check_queue(pairs) -> dict[str, Any]:
    res: dict[str, list] = {k: [] for k in QUEUE_ANOMALIES + ["unseen"]}
    # Observations: (partition, offset) -> {value: [sources]} and value -> {(partition, offset)}
    at_offset: dict[tuple[str, int], dict[Any, list]] = defaultdict(lambda: defaultdict(list))
    positions: dict[Any, set[tuple[str, int]]] = defaultdict(set)
    read_values: set[Any] = set()
    max_read: dict[str, int] = {}
    acked: list[tuple[str, int, Any, int]] = []  # (partition, offset, value, index)
    drained = False

    def observe(p: str, o: int, v: Any, src: str) -> None:
        at_offset[(p, o)][v].append(src)
        positions[v].add((p, o))

    last_send: dict[tuple[Any, str], tuple[int, int]] = {}
    for inv, comp in pairs:
        if inv["process"] == NEMESIS or comp is None:
            continue
        f, typ = inv["f"], comp["type"]
        if f == "drain" and typ == "ok":
            drained = True
        if f == "send" and typ == "ok":
            v = _merge(inv, comp)
            p, o, val = str(v["key"]), int(v["offset"]), v["value"]
            observe(p, o, val, f"send@{comp['index']}")
            acked.append((p, o, val, comp["index"]))
            k = (inv["process"], p)
            if k in last_send and o <= last_send[k][0]:
                res["nonmonotonic-send"].append({
                    "process": inv["process"], "partition": p, "prev_offset": last_send[k][0],
                    "prev_index": last_send[k][1], "offset": o, "index": comp["index"]})
            last_send[k] = (o, comp["index"])
        elif f == "poll" and typ == "ok":
            for p, o, val in (comp.get("value") or {}).get("records", []):
                p, o = str(p), int(o)
                observe(p, o, val, f"poll@{comp['index']}")
                read_values.add(val)
                if o > max_read.get(p, -1):
                    max_read[p] = o

    # duplicates and inconsistent offsets
    for val, pos in positions.items():
        if len(pos) > 1:
            res["duplicate"].append({"value": val, "positions": sorted(pos)})
    for (p, o), vals in at_offset.items():
        if len(vals) > 1:
            res["inconsistent-offset"].append({
                "partition": p, "offset": o,
                "values": {json.dumps(k): srcs[:4] for k, srcs in vals.items()}})

    # lost / unseen
    for p, o, val, idx in acked:
        if val in read_values:
            continue
        entry = {"partition": p, "offset": o, "value": val, "ack_index": idx,
                 "max_read_offset": max_read.get(p)}
        if max_read.get(p, -1) > o:
            res["lost-write"].append(entry)
        else:
            res["unseen"].append(entry)

    # per-consumer monotonicity and skips
    exists: dict[str, set[int]] = defaultdict(set)
    for (p, o) in at_offset:
        exists[p].add(o)
    sorted_exists = {p: sorted(s) for p, s in exists.items()}
    mode_of: dict[Any, str] = {}
    last_poll: dict[tuple[Any, str], tuple[int, int]] = {}
    for inv, comp in pairs:
        if inv["process"] == NEMESIS or comp is None or comp["type"] != "ok":
            continue
        proc = inv["process"]
        if inv["f"] == "assign":
            v = _merge(inv, comp)
            mode_of[proc] = v.get("mode", mode_of.get(proc, "assign"))
            for p in v.get("partitions", []):
                last_poll.pop((proc, str(p)), None)
        elif inv["f"] == "poll":
            v = comp.get("value") or {}
            mode = v.get("mode") or mode_of.get(proc, "assign")
            # A rebalance served inside this poll (subscribe mode) moves the position of the
            # partitions it assigned/revoked to the committed offset: not an anomaly.
            for p in v.get("rebalance", []):
                last_poll.pop((proc, str(p)), None)
            for p, o, _val in v.get("records", []):
                p, o = str(p), int(o)
                k = (proc, p)
                if k in last_poll:
                    prev, prev_idx = last_poll[k]
                    if o <= prev:
                        res["nonmonotonic-poll"].append({
                            "process": proc, "partition": p, "prev_offset": prev,
                            "offset": o, "prev_index": prev_idx, "index": comp["index"]})
                    elif o > prev + 1 and mode == "assign":
                        skipped = _between(sorted_exists.get(p, []), prev, o)
                        if skipped:
                            res["poll-skip"].append({
                                "process": proc, "partition": p, "prev_offset": prev,
                                "offset": o, "skipped": skipped[:10],
                                "skipped_count": len(skipped), "index": comp["index"]})
                last_poll[k] = (o, comp["index"])

    res["commit-backwards"] = _check_commits(pairs)
    return {"anomalies": res, "drained": drained, "acked": len(acked),
            "read_values": len(read_values)}


def _between(sorted_offsets: list[int], lo: int, hi: int) -> list[int]:
    import bisect
    i = bisect.bisect_right(sorted_offsets, lo)
    j = bisect.bisect_left(sorted_offsets, hi)
    return sorted_offsets[i:j]


def _check_commits(pairs) -> list[dict[str, Any]]:
    # observations per (group, partition): (invoke index, complete index, offset)
    obs: dict[tuple[str, str], list[tuple[int, int, int, str]]] = defaultdict(list)
    for inv, comp in pairs:
        if comp is None or comp["type"] != "ok" or inv["f"] not in ("commit", "committed"):
            continue
        v = _merge(inv, comp)
        for p, o in (v.get("offsets") or {}).items():
            if o is None or int(o) < 0:
                continue  # "no committed offset"
            obs[(v.get("group"), str(p))].append((inv["index"], comp["index"], int(o), inv["f"]))
    out = []
    for (g, p), lst in obs.items():
        # An observation must be >= every observation that completed before it was invoked.
        by_complete = sorted(lst, key=lambda x: x[1])
        best = None  # (offset, complete index) max offset among completed-before
        j = 0
        for call, ret, off, f in sorted(lst, key=lambda x: x[0]):
            while j < len(by_complete) and by_complete[j][1] < call:
                c = by_complete[j]
                if best is None or c[2] > best[0]:
                    best = (c[2], c[1], c[3])
                j += 1
            if best is not None and off < best[0]:
                out.append({"group": g, "partition": p, "offset": off, "f": f,
                            "invoke_index": call, "earlier_offset": best[0],
                            "earlier_f": best[2], "earlier_complete_index": best[1]})
    return out


_SEQ = re.compile(r"^(.*?)(\d{10})$")


def check_zk(pairs, max_steps: int = 2_000_000) -> dict[str, Any]:
    res: dict[str, Any] = {k: [] for k in ZK_ANOMALIES}
    # --- register
    init = None
    lin_ops: list[lin.LinOp] = []
    for inv, comp in pairs:
        f = inv["f"]
        if f == "reg-create" and comp is not None and comp["type"] == "ok" and init is None:
            v = _merge(inv, comp)
            init = (int(v.get("version", 0)), v.get("value"))
        elif f in ("reg-read", "reg-write"):
            typ = comp["type"] if comp is not None else "info"
            if typ == "fail" or (typ == "info" and f == "reg-read"):
                continue
            lin_ops.append(lin.LinOp(
                id=len(lin_ops), process=inv["process"], f=f, value=_merge(inv, comp),
                call=inv["index"], ret=comp["index"] if typ == "ok" else lin.INF,
                indeterminate=typ == "info"))
    register = None
    if lin_ops:
        if init is None:
            init = (0, None)
        r = lin.check(lin_ops, init, max_steps=max_steps)
        register = {"valid": r.valid, "ops": r.ops, "steps": r.steps, "witness": r.witness}
        if r.valid is False:
            res["register-nonlinearizable"].append(r.witness)
    # --- sequential znodes
    seen: dict[str, int] = {}
    creates: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
    for inv, comp in pairs:
        if inv["f"] != "seq-create" or comp is None or comp["type"] != "ok":
            continue
        path = _merge(inv, comp).get("path")
        if path is None:
            continue
        if path in seen:
            res["seq-duplicate"].append({"path": path, "indices": [seen[path], comp["index"]]})
        else:
            seen[path] = comp["index"]
        m = _SEQ.match(path)
        if not m:
            continue
        parent = m.group(1).rsplit("/", 1)[0]
        creates[parent].append((inv["index"], comp["index"], int(m.group(2)), path))
    for parent, lst in creates.items():
        by_complete = sorted(lst, key=lambda x: x[1])
        best = None
        j = 0
        for call, ret, seq, path in sorted(lst, key=lambda x: x[0]):
            while j < len(by_complete) and by_complete[j][1] < call:
                if best is None or by_complete[j][2] > best[0]:
                    best = (by_complete[j][2], by_complete[j][3])
                j += 1
            if best is not None and seq <= best[0] and path != best[1]:
                res["seq-nonmonotonic"].append({"path": path, "invoke_index": call,
                                                "earlier_path": best[1]})
    return {"anomalies": res, "register": register, "seq_creates": sum(map(len, creates.values()))}


def check_txn(pairs) -> dict[str, Any]:
    """The transactional checks (module docstring)."""
    res: dict[str, list] = {k: [] for k in TXN_ANOMALIES}
    # (outcome, sends, invoke index, completion index or None, order key, value)
    txns: list[tuple[str, list, int, int | None, Any, dict]] = []
    # Committed transactions' real-time span: invoke index -> completion index.
    completed_at: dict[int, int] = {}
    # (reader key, partition, offset, value, reader's completion index, reading txn or None)
    reads: list[tuple[Any, str, int, int, int, int | None]] = []
    drain_proc = None
    for inv, comp in pairs:
        f = inv["f"]
        if f == "txn":
            v = _merge(inv, comp)
            t = comp["type"] if comp else "info"
            # Process order: one worker's transactions (its transactional.id; older histories
            # name none, then the process).
            txns.append((t, v.get("sends", []), inv["index"], comp["index"] if comp else None,
                         v.get("tid", inv["process"]), v))
            if t == "ok":
                completed_at[inv["index"]] = comp["index"]
            if comp is not None:
                key = f"{inv['process']}/c{v.get('consumer')}"
                for part, off, val in v.get("reads") or []:
                    reads.append((key, part, off, val, comp["index"], inv["index"]))
        elif f == "txn-poll" and comp is not None and comp["type"] == "ok":
            for part, off, val in (comp.get("value") or {}).get("records", []):
                reads.append((inv["process"], part, off, val, comp["index"], None))
        elif f == "txn-drain" and comp is not None and comp["type"] == "ok":
            drain_proc = inv["process"]
    status: dict[int, tuple[str, int]] = {}
    for t, sends, idx, _, _, _ in txns:
        for _, val in sends:
            status[val] = (t, idx)
    by_value: dict[int, set] = defaultdict(set)
    by_pos: dict[tuple[str, int], set] = defaultdict(set)
    last: dict[tuple[Any, str], int] = {}
    for proc, part, off, val, done, reader in reads:
        by_value[val].add((part, off))
        by_pos[(part, off)].add(val)
        st = status.get(val)
        if st and st[0] == "fail":
            res["txn-aborted-read"].append({"value": val, "partition": part, "offset": off,
                                            "txn_index": st[1], "process": proc})
        if st and (done < st[1] or st[1] == reader):
            # Read before its transaction was invoked, or by that transaction itself (which
            # reads before it writes, and never sees its own uncommitted values).
            res["txn-future-read"].append({"value": val, "partition": part, "offset": off,
                                           "writer_invoked": st[1], "read_completed": done,
                                           "reader_txn": reader, "process": proc})
        prev = last.get((proc, part))
        if prev is not None and off <= prev:
            res["txn-nonmonotonic"].append({"process": proc, "partition": part,
                                            "offset": off, "previous": prev})
        last[(proc, part)] = off
    for val, poss in by_value.items():
        if len(poss) > 1:
            res["txn-duplicate"].append({"value": val, "positions": sorted(poss)})
    for pos, vals in by_pos.items():
        if len(vals) > 1:
            res["txn-inconsistent"].append({"partition": pos[0], "offset": pos[1],
                                            "values": sorted(vals)})
    drained = drain_proc is not None
    committed = sum(1 for t, *_ in txns if t == "ok")
    final: Counter = Counter()
    if drained:
        final = Counter(r[3] for r in reads if r[0] == drain_proc)
        for val, n in final.items():
            if n > 1:
                res["txn-duplicate"].append({"value": val, "times_in_drain": n})
        for t, sends, idx, _, _, _ in txns:
            present = [val for _, val in sends if val in final]
            missing = [val for _, val in sends if val not in final]
            if t == "ok" and missing:
                res["txn-lost"].append({"txn_index": idx, "missing": missing, "sends": sends})
            elif t in ("ok", "info") and present and missing:
                res["txn-non-atomic"].append({"txn_index": idx, "present": present,
                                              "missing": missing})
        for proc, part, off, val, _, _ in reads:
            if proc != drain_proc and val not in final:
                res["txn-phantom-read"].append({"value": val, "partition": part, "offset": off,
                                                "process": proc})
        # Each partition's drained offsets, sorted (the log every drained check reads).
        drained_offsets: dict[str, list[int]] = defaultdict(list)
        for proc, part, off, _, _, _ in reads:
            if proc == drain_proc:
                drained_offsets[part].append(off)
        for part, offs in drained_offsets.items():
            drained_offsets[part] = sorted(set(offs))
        res["txn-poll-skip"] = _read_skips(reads, drain_proc, drained_offsets)
    # Transactions known committed: ok, or indeterminate with their values in the final log.
    decided = {idx for t, sends, idx, _, _, _ in txns
               if t == "ok" or (t == "info" and any(val in final for _, val in sends))}
    # Edges that order commits: wr (the writer committed before the reader's read, which
    # precedes the reader's commit) and process order (one transactional.id runs one
    # transaction at a time; an indeterminate one is settled by the next init_transactions).
    wr: dict[int, set[int]] = defaultdict(set)
    for _, _, _, val, _, reader in reads:
        st = status.get(val)
        if reader in completed_at and st and st[1] in decided and st[1] != reader:
            wr[st[1]].add(reader)
    po: dict[int, set[int]] = defaultdict(set)
    chains: dict[Any, list[int]] = defaultdict(list)
    for _, _, idx, _, key, _ in sorted(txns, key=lambda x: x[2]):
        if idx in decided:
            chains[key].append(idx)
    for chain in chains.values():
        for a, b in zip(chain, chain[1:]):
            po[a].add(b)
    g1c = _cycles(_union(wr, po))
    res["txn-g1c"] += [{"txns": c[:10], "size": len(c)} for c in g1c]
    g0: list[list[int]] = []
    g1c_ww: list[list[int]] = []
    if drained:
        # Each partition's committed values in log order, as (offset, transaction index).
        logs: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for proc, part, off, val, _, _ in reads:
            st = status.get(val)
            if proc == drain_proc and st and st[0] == "ok":
                logs[part].append((off, st[1]))
        for part, entries in logs.items():
            entries.sort()
            res["txn-ww-realtime"].extend(_realtime_violations(part, entries, completed_at))
        ww: dict[int, set[int]] = defaultdict(set)
        for entries in logs.values():
            for (_, a), (_, b) in zip(entries, entries[1:]):
                if a != b:
                    ww[a].add(b)
        g0 = _cycles(ww)
        # Cycles that need a ww edge and hold a wr edge (allowed, as G0 is).
        g1c_ww = [c for c in _cycles(_union(ww, wr, po))
                  if any(b in wr.get(a, ()) for a in c for b in c)]
        res["txn-ctp-duplicate"], res["txn-ctp-skip"] = _exactly_once(txns, drained_offsets)
    return {"anomalies": res, "txns": len(txns), "committed": committed, "drained": drained,
            "g0_cycles": g0, "g1c_ww_cycles": g1c_ww,
            "wr_edges": sum(map(len, wr.values())),
            "ctp_txns": sum(1 for t in txns if t[5].get("group") and t[0] == "ok")}


def _read_skips(reads, drain_proc, logs: dict[str, list[int]]) -> list[dict[str, Any]]:
    """One reader (a poll process, or one consumer incarnation of a consume-transform-produce
    worker), one partition: successive offsets o1 < o2 with a record of the drained log
    strictly between them. Aborted records and markers are not in the drained log, so what a
    read_committed consumer may pass over never counts. `logs`: each partition's drained
    offsets, sorted."""
    out: list[dict[str, Any]] = []
    last: dict[tuple[Any, str], int] = {}
    for proc, part, off, _, _, _ in reads:
        if proc == drain_proc:
            continue
        prev = last.get((proc, part))
        last[(proc, part)] = off
        if prev is None or off <= prev:
            continue
        offs = logs.get(part, [])
        i = bisect.bisect_right(offs, prev)
        if i < len(offs) and offs[i] < off:
            out.append({"process": proc, "partition": part, "from": prev, "to": off,
                        "skipped": offs[i]})
    return out


def _union(*graphs: dict[int, set[int]]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = defaultdict(set)
    for g in graphs:
        for a, bs in g.items():
            out[a] |= bs
    return out


def _exactly_once(txns, logs: dict[str, list[int]]) -> tuple[list, list]:
    """Consume-transform-produce groups: the committed transactions of one group must have
    consumed each committed record of the drained log once. A record read by two committed
    transactions of the group is a duplicate; a record below the group's furthest committed
    read that no committed or indeterminate transaction of the group read was skipped."""
    ok_reads: dict[str, Counter] = defaultdict(Counter)
    maybe: dict[str, set] = defaultdict(set)
    for t, _, _, _, _, v in txns:
        g = v.get("group")
        if not g:
            continue
        for part, off, _ in v.get("reads") or []:
            if t == "ok":
                ok_reads[g][(part, off)] += 1
            elif t == "info":
                maybe[g].add((part, off))
    dup: list[dict[str, Any]] = []
    skip: list[dict[str, Any]] = []
    for g, seen in ok_reads.items():
        dup += [{"group": g, "partition": part, "offset": off, "times": n}
                for (part, off), n in seen.items() if n > 1]
        furthest: dict[str, int] = {}
        for part, off in seen:
            furthest[part] = max(off, furthest.get(part, -1))
        skip += [{"group": g, "partition": part, "offset": off}
                 for part, offs in sorted(logs.items()) for off in offs
                 if off <= furthest.get(part, -1) and (part, off) not in seen
                 and (part, off) not in maybe[g]]
    return dup, skip


def _realtime_violations(part: str, entries: list[tuple[int, int]],
                         completed_at: dict[int, int]) -> list[dict[str, Any]]:
    """Pairs in one partition's log (`entries`: (offset, txn invoke index), offset order)
    where a later-offset transaction had completed before an earlier-offset one was invoked.
    Scans once, keeping the latest invocation among the entries below."""
    out: list[dict[str, Any]] = []
    latest: tuple[int, int] | None = None  # (invoke index, offset) of the latest-invoked below
    for off, t in entries:
        done = completed_at[t]
        # (A transaction's own invocation precedes its completion: never itself.)
        if latest is not None and latest[0] > done:
            out.append({"partition": part, "offset": off, "txn_index": t, "completed": done,
                        "below_offset": latest[1], "below_txn_invoked": latest[0]})
        if latest is None or t > latest[0]:
            latest = (t, off)
    return out


def _cycles(edges: dict[int, set[int]]) -> list[list[int]]:
    """The cycles of a dependency graph between transactions, as its strongly connected
    components with two or more transactions. Iterative Tarjan (histories hold tens of
    thousands of transactions)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[list[int]] = []
    counter = 0
    for root in list(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def check(ops: list[dict[str, Any]], max_steps: int = 2_000_000) -> dict[str, Any]:
    """Run every check; returns the summary dict (JSON-serialisable)."""
    pairs = pair_ops(ops)
    q = check_queue(pairs)
    z = check_zk(pairs, max_steps=max_steps)
    t = check_txn(pairs)
    counts: Counter = Counter()
    for inv, comp in pairs:
        if inv["process"] == NEMESIS:
            continue
        counts[(inv["f"], comp["type"] if comp else "incomplete")] += 1
    faults: Counter = Counter()
    # Faults aimed at the controller leader / a partition leader that found it ("fallback":
    # no holder at that moment, so the fault hit its scheduled node instead).
    aimed: Counter = Counter()
    unsupported: list[Any] = []
    unresponsive: list[str] = []
    for op in ops:
        if op["process"] != NEMESIS:
            continue
        v = op.get("value")
        f = op["f"]
        if isinstance(v, dict) and v.get("unsupported"):
            unsupported.append({"f": f, "reason": v.get("unsupported")})
        elif f == "liveness":
            unresponsive += list((v or {}).get("unresponsive", []))
        elif f.endswith("-stop") or f.startswith("heal"):
            continue  # the end of a fault, not another fault
        else:
            faults[f[: -len("-start")] if f.endswith("-start") else f] += 1
            if isinstance(v, dict) and v.get("aimed_at"):
                aimed[str(v.get("aim"))] += 1
            elif isinstance(v, dict) and v.get("aim_fallback"):
                aimed["fallback"] += 1
    anomalies = {**q["anomalies"], **z["anomalies"], **t["anomalies"]}
    count = {k: len(anomalies.get(k, [])) for k in ALL_ANOMALIES}
    errors = [k for k in ALL_ANOMALIES if k != "unseen" and count[k]]
    if q["drained"] and count["unseen"]:
        errors.append("unseen")
    register_unknown = z["register"] is not None and z["register"]["valid"] is None
    valid: bool | str = not errors
    if valid and register_unknown:
        valid = "unknown"
    return {
        "valid": valid,
        "errors": errors,
        "ops": {f"{f}:{t}": n for (f, t), n in sorted(counts.items())},
        "op_total": sum(counts.values()),
        "faults": dict(sorted(faults.items())),
        "aimed": dict(sorted(aimed.items())),
        "unsupported_nemeses": unsupported,
        # Liveness, reported apart from the safety verdict `valid`.
        "unresponsive_after_heal": unresponsive,
        "drained": q["drained"],
        "acked_sends": q["acked"],
        "distinct_values_read": q["read_values"],
        "register": z["register"] and {k: z["register"][k] for k in ("valid", "ops", "steps")},
        "seq_creates": z["seq_creates"],
        "txns": t["txns"],
        "txns_committed": t["committed"],
        "txn_drained": t["drained"],
        # Informational (module docstring): allowed by Kafka, never part of `valid`.
        "txn_g0_cycles": len(t["g0_cycles"]),
        "txn_g0_examples": [c[:10] for c in t["g0_cycles"][:EXAMPLES]],
        "txn_g1c_ww_cycles": len(t["g1c_ww_cycles"]),
        "txn_wr_edges": t["wr_edges"],
        "txn_ctp_committed": t["ctp_txns"],
        "counts": count,
        "examples": {k: v[:EXAMPLES] for k, v in anomalies.items() if v},
    }


def render_text(summary: dict[str, Any], title: str = "raftka jepsen summary") -> str:
    lines = [title, "=" * len(title)]
    rows: list[tuple[str, str]] = []
    rows.append(("valid?", str(summary["valid"])))
    rows.append(("client ops (completed pairs)", str(summary["op_total"])))
    for k, n in summary["ops"].items():
        rows.append((f"  {k}", str(n)))
    rows.append(("faults", str(sum(summary["faults"].values()))))
    for k, n in summary["faults"].items():
        rows.append((f"  {k}", str(n)))
    for k, n in summary.get("aimed", {}).items():
        rows.append((f"  aimed: {k}", str(n)))
    for u in summary["unsupported_nemeses"]:
        rows.append((f"  unsupported {u['f']}", str(u["reason"])[:60]))
    rows.append(("unresponsive after heal",
                 ", ".join(summary.get("unresponsive_after_heal") or []) or "none"))
    rows.append(("acked sends", str(summary["acked_sends"])))
    rows.append(("distinct values read", str(summary["distinct_values_read"])))
    rows.append(("final drain done", str(summary["drained"])))
    reg = summary.get("register")
    rows.append(("register linearizable",
                 "n/a" if not reg else f"{reg['valid']} ({reg['ops']} ops, {reg['steps']} steps)"))
    rows.append(("seq creates", str(summary["seq_creates"])))
    rows.append(("txn write-write cycles (G0, allowed)", str(summary.get("txn_g0_cycles", 0))))
    rows.append(("txn write-read edges", str(summary.get("txn_wr_edges", 0))))
    rows.append(("txn cycles through ww and wr (allowed)",
                 str(summary.get("txn_g1c_ww_cycles", 0))))
    rows.append(("txn consume-transform-produce committed",
                 str(summary.get("txn_ctp_committed", 0))))
    rows.append(("anomaly", "count"))
    for k, n in summary["counts"].items():
        flag = ""
        if n and (k in summary["errors"]):
            flag = "  <-- ERROR"
        elif n:
            flag = "  (warning)"
        rows.append((f"  {k}", f"{n}{flag}"))
    w = max(len(a) for a, _ in rows)
    lines += [f"{a.ljust(w)}  {b}" for a, b in rows]
    if summary["examples"]:
        lines.append("")
        lines.append("examples:")
        for k, ex in summary["examples"].items():
            for e in ex[:3]:
                lines.append(f"  {k}: {json.dumps(e, default=str)[:300]}")
    return "\n".join(lines) + "\n"
