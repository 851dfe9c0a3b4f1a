"""The JSON-lines history format shared by the harness and the checker.

One JSON object per line, in real-time order (the recorder holds a lock while it stamps and
writes, so line order is the order in which invocations and completions happened):

    {"index": 17, "time": 1234567890, "process": 3, "type": "invoke", "f": "send",
     "value": {"key": "jepsen-0", "value": 42}}
    {"index": 18, "time": 1234569999, "process": 3, "type": "ok", "f": "send",
     "value": {"key": "jepsen-0", "value": 42, "offset": 7}}

`type` is `invoke`, `ok` (it happened), `fail` (it definitely did not happen) or `info`
(indeterminate: it may or may not have happened). A process has at most one outstanding
operation; after an `info` completion the harness retires the process id and continues with a
new one (Jepsen's rule), so per-process checks never straddle an indeterminate op.

Operations (the value of the completion is authoritative; the invocation carries the request):

queue workload (Jepsen's Kafka queue workload):
  send       {"key": P, "value": V}                 ok adds "offset"
             P is a topic-partition string, e.g. "jepsen-2"; V is unique across the run.
  poll       ok {"records": [[P, offset, V], ...], "mode": "assign"|"subscribe"}
  commit     {"group": G, "offsets": {P: next_offset}}   (Kafka semantics: next offset to read)
  committed  ok {"group": G, "offsets": {P: next_offset}} (an OffsetFetch read-back)
  assign     ok {"partitions": [P, ...], "mode": "assign"|"subscribe"}  resets per-process
             poll tracking for those partitions (a seek or a rebalance is not an anomaly)
  drain      ok {}  the final read to the end of every partition finished; after it,
             `unseen` writes are errors rather than warnings
zookeeper workload:
  reg-create ok {"value": X, "version": 0}     the register's initial state
  reg-read   ok {"value": X, "version": N}
  reg-write  {"value": X, "version": N|-1}     a versioned setData (N = expected version,
             -1 = unconditional); ok adds "new_version"; a BadVersion reply is `fail`
  seq-create {"prefix": "/jepsen/seq/n-"}       ok adds "path" (the sequential name created)
nemesis (process "nemesis", type "info"):
  any f ("kill", "start", "pause", "resume", "partition", ...) with a free-form value.
  Completions whose value has "unsupported" are counted as unsupported, not as faults.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

NEMESIS = "nemesis"


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """Parse a history file; blank lines are ignored; indices are (re)assigned by line order."""
    ops: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                op = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not JSON: {e}") from e
            ops.append(op)
    return normalize(ops)


def normalize(ops: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copy ops, assign `index` by position (the order is the real-time order)."""
    out = []
    for i, op in enumerate(ops):
        op = dict(op)
        op["index"] = i
        op.setdefault("value", None)
        if op.get("type") not in ("invoke", "ok", "fail", "info"):
            raise ValueError(f"op {i}: bad type {op.get('type')!r}")
        if "f" not in op or "process" not in op:
            raise ValueError(f"op {i}: needs f and process: {op}")
        out.append(op)
    return out


def pair_ops(ops: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(invocation, completion) pairs for client ops; completion None if never completed
    (treated as info). Nemesis ops and completions without an invocation are returned as
    (completion, completion) so that single-line records still count."""
    pending: dict[Any, dict[str, Any]] = {}
    pairs: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    slot: dict[int, int] = {}
    for op in ops:
        p = op["process"]
        if op["type"] == "invoke":
            if p in pending:
                raise ValueError(f"process {p} invoked op {op['index']} while op "
                                 f"{pending[p]['index']} is outstanding")
            pending[p] = op
            slot[op["index"]] = len(pairs)
            pairs.append((op, None))
        else:
            inv = pending.pop(p, None)
            if inv is None:
                pairs.append((op, op))
            else:
                pairs[slot[inv["index"]]] = (inv, op)
    return pairs


class Recorder:
    """Thread-safe JSON-lines writer. `invoke` returns the op so `complete` can pair it."""

    def __init__(self, stream: IO[str]):
        self._stream = stream
        self._lock = threading.Lock()
        self._index = 0
        self._t0 = time.monotonic_ns()

    def _write(self, op: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            op["index"] = self._index
            op["time"] = time.monotonic_ns() - self._t0
            self._index += 1
            self._stream.write(json.dumps(op, separators=(",", ":"), default=str) + "\n")
            self._stream.flush()
        return op

    def invoke(self, process: Any, f: str, value: Any = None) -> dict[str, Any]:
        return self._write({"type": "invoke", "process": process, "f": f, "value": value})

    def complete(self, process: Any, f: str, typ: str, value: Any = None) -> dict[str, Any]:
        assert typ in ("ok", "fail", "info"), typ
        return self._write({"type": typ, "process": process, "f": f, "value": value})

    def nemesis(self, f: str, value: Any = None) -> dict[str, Any]:
        return self._write({"type": "info", "process": NEMESIS, "f": f, "value": value})

    def count(self) -> int:
        with self._lock:
            return self._index


def iter_lines(ops: Iterable[dict[str, Any]]) -> Iterator[str]:
    for op in ops:
        yield json.dumps(op, separators=(",", ":"), default=str)
