"""Free listening ports for nodes started on loopback."""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile

# Listening ports come from below the kernel's ephemeral range (32768-60999 here): a port the
# kernel handed out for `bind(0)` and that we released can be taken again as the *source* port
# of any outgoing connection before the node binds it ("Address already in use").
PORT_RANGE = (20000, 32000)
_port_rng = random.Random()

# A port that is free when chosen is bound only when its node starts, often seconds later (a
# cluster's nodes are all created before any starts). So a port is handed out once per process,
# and processes on the same machine (a CI run beside a developer's run, the conformance runner)
# take ports from disjoint blocks: each process claims a block with an flock on a file that the
# kernel releases when the process ends, and hands out only ports of the blocks it holds.
BLOCK = 64
_LOCK_DIR = os.path.join(tempfile.gettempdir(), "raftka-port-blocks")
_blocks: dict[int, int] = {}  # block start -> the fd holding its lock
_handed_out: set[int] = set()


def _claim_block() -> int:
    os.makedirs(_LOCK_DIR, exist_ok=True)
    starts = list(range(PORT_RANGE[0], PORT_RANGE[1] - BLOCK + 1, BLOCK))
    _port_rng.shuffle(starts)
    for start in starts:
        if start in _blocks:
            continue
        fd = os.open(os.path.join(_LOCK_DIR, f"{start}.lock"), os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _blocks[start] = fd
        return start
    raise RuntimeError(f"no free block of {BLOCK} ports in {PORT_RANGE}")


def _candidates():
    for start in list(_blocks):
        for port in range(start, start + BLOCK):
            if port not in _handed_out:
                yield port


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct ports that are free on `host` now, outside the ephemeral range, never handed
    out before by this process, and from port blocks no other process on this machine uses."""
    out: list[int] = []
    while len(out) < n:
        port = next(_candidates(), None)
        if port is None:
            _claim_block()
            continue
        _handed_out.add(port)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
        except OSError:
            continue  # in use by something else: skip it for good
        finally:
            s.close()
        out.append(port)
    return out
