"""Linearizability checking for a versioned register (ZooKeeper setData/getData).

Wing & Gong's search with Lowe's memoization (the algorithm of Knossos' `wgl` and of
Porcupine): walk a doubly linked list of call/return events; at a call, try to linearize the
op now (the model must accept it, and the pair (set of linearized ops, model state) must be
new); at a return whose op is not yet linearized, backtrack. Memoizing (linearized-bitset,
state) makes the search visit each configuration at most once; `max_steps` bounds the work
and yields "unknown" when exceeded.

Indeterminate (`info`) ops never return: they may take effect at any point after their call,
or never. Their return events sit after every determinate return, so reaching one means every
determinate op has been linearized and the history is linearizable.
`fail` ops definitely did not happen and are dropped (for a versioned write a BadVersion
reply is such a definite failure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

# A model step: (state, op) -> new state, or None if the op is not legal in that state.
Step = Callable[[Hashable, dict[str, Any]], Hashable | None]

INF = float("inf")


@dataclass
class LinOp:
    id: int
    process: Any
    f: str
    value: Any          # request merged with response (for ok ops)
    call: float         # history index of the invocation
    ret: float          # history index of the completion, INF for info
    indeterminate: bool


@dataclass
class LinResult:
    valid: bool | None          # None = unknown (step budget exhausted)
    ops: int
    steps: int
    # For an invalid history: the longest linearizable prefix found and the ops that could
    # not be placed after it (Knossos' "final paths" in miniature).
    witness: dict[str, Any] = field(default_factory=dict)


def register_step(state: Hashable, op: LinOp) -> Hashable | None:
    """Model: state = (version, value). Ops:
    reg-read  ok value {"value", "version"}: legal iff it matches the state.
    reg-write value {"value", "version": expected or -1, "new_version"?}: legal iff the
              expected version matches (or -1); the version increments; if the completion
              reported new_version it must equal the incremented version."""
    version, value = state  # type: ignore[misc]
    v = op.value or {}
    if op.f == "reg-read":
        return state if (v.get("version") == version and v.get("value") == value) else None
    if op.f == "reg-write":
        expected = v.get("version", -1)
        if expected is not None and expected != -1 and expected != version:
            return None
        new_version = version + 1
        if v.get("new_version") is not None and v["new_version"] != new_version:
            return None
        return (new_version, v.get("value"))
    raise ValueError(f"register model: unknown op {op.f}")


class _Node:
    __slots__ = ("op", "is_call", "match", "prev", "next")

    def __init__(self, op: LinOp | None, is_call: bool):
        self.op = op
        self.is_call = is_call
        self.match: _Node | None = None
        self.prev: _Node | None = None
        self.next: _Node | None = None


def check(ops: list[LinOp], init: Hashable, step: Step = register_step,
          max_steps: int = 2_000_000) -> LinResult:
    """Wing–Gong–Lowe search over `ops` starting from `init`."""
    if not ops:
        return LinResult(True, 0, 0)
    # Events sorted by time; calls before returns at equal times is impossible here because
    # history indices are unique, but INF returns tie: keep calls first, then by id.
    events: list[tuple[float, int, int, _Node]] = []
    for op in ops:
        c, r = _Node(op, True), _Node(op, False)
        c.match = r
        events.append((op.call, 0, op.id, c))
        events.append((op.ret, 1, op.id, r))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = _Node(None, False)
    prev = head
    for _, _, _, n in events:
        prev.next = n
        n.prev = prev
        prev = n

    def lift(n: _Node) -> None:
        n.prev.next = n.next  # type: ignore[union-attr]
        if n.next:
            n.next.prev = n.prev
        m = n.match
        assert m is not None
        m.prev.next = m.next  # type: ignore[union-attr]
        if m.next:
            m.next.prev = m.prev

    def unlift(n: _Node) -> None:
        m = n.match
        assert m is not None
        m.prev.next = m  # type: ignore[union-attr]
        if m.next:
            m.next.prev = m
        n.prev.next = n  # type: ignore[union-attr]
        if n.next:
            n.next.prev = n

    # The linearized set is kept as two bitsets: determinate ops (bit = rank by call time) and
    # indeterminate ones (few). The memo key stores the determinate set as (length of its
    # all-ones prefix, the bits above it): the search linearizes ops roughly in call order, so
    # the part above the prefix is a small window and keys stay small even for 10^5 ops.
    det_bit: dict[int, int] = {}
    info_bit: dict[int, int] = {}
    for o in sorted(ops, key=lambda o: (o.call, o.id)):
        if o.indeterminate:
            info_bit[o.id] = 1 << len(info_bit)
        else:
            det_bit[o.id] = 1 << len(det_bit)

    def key(d: int, i: int, st: Hashable) -> tuple[int, int, int, Hashable]:
        prefix = (d ^ (d + 1)).bit_length() - 1  # number of trailing one bits
        return (prefix, d >> prefix, i, st)

    state: Hashable = init
    det = 0
    inf = 0
    cache: set[tuple[int, int, int, Hashable]] = {key(0, 0, init)}
    stack: list[tuple[_Node, Hashable]] = []
    steps = 0
    best: tuple[int, list[int]] = (0, [])
    deepest_blocked: LinOp | None = None
    entry = head.next
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            return LinResult(None, len(ops), steps, {"reason": f"step budget {max_steps} exhausted"})
        assert entry is not None
        op = entry.op
        assert op is not None
        if entry.is_call:
            new_state = step(state, op)
            if new_state is not None:
                nd = det | det_bit.get(op.id, 0)
                ni = inf | info_bit.get(op.id, 0)
                k = key(nd, ni, new_state)
                if k not in cache:
                    cache.add(k)
                    stack.append((entry, state))
                    state = new_state
                    det, inf = nd, ni
                    lift(entry)
                    if len(stack) > best[0]:
                        # Only the last ops of the deepest prefix are kept (O(1) per step).
                        best = (len(stack), [e.op.id for e, _ in stack[-10:]])  # type: ignore[union-attr]
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if op.indeterminate:
                # Every determinate op is linearized; the rest may never have happened.
                return LinResult(True, len(ops), steps)
            if len(stack) >= best[0]:
                deepest_blocked = op  # the op that could not be placed after the deepest prefix
            if not stack:
                return LinResult(False, len(ops), steps, _witness(ops, best, deepest_blocked))
            entry, state = stack.pop()
            det &= ~det_bit.get(entry.op.id, 0)  # type: ignore[union-attr]
            inf &= ~info_bit.get(entry.op.id, 0)  # type: ignore[union-attr]
            unlift(entry)
            entry = entry.next
    return LinResult(True, len(ops), steps)


def _witness(ops: list[LinOp], best: tuple[int, list[int]], op: LinOp | None) -> dict[str, Any]:
    by_id = {o.id: o for o in ops}
    return {
        "deepest_prefix_length": best[0],
        "deepest_prefix_last_ops": [_describe(by_id[i]) for i in best[1]],
        # At the deepest prefix, this op returned without any legal place to linearize it.
        "blocked_op": _describe(op) if op is not None else None,
    }


def _describe(o: LinOp) -> dict[str, Any]:
    return {"process": o.process, "f": o.f, "value": o.value, "call": o.call,
            "ret": None if o.ret == INF else o.ret}
