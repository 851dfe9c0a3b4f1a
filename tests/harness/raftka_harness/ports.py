"""Free listening ports for nodes started on loopback."""

from __future__ import annotations

import random
import socket

# Listening ports come from below the kernel's ephemeral range (32768-60999 here): a port the
# kernel handed out for `bind(0)` and that we released can be taken again as the *source* port
# of any outgoing connection before the node binds it ("Address already in use").
PORT_RANGE = (20000, 32000)
_port_rng = random.Random()


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct ports that are free on `host` now, outside the ephemeral range."""
    out: list[int] = []
    socks = []
    try:
        while len(out) < n:
            port = _port_rng.randrange(*PORT_RANGE)
            if port in out:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            out.append(port)
        return out
    finally:
        for s in socks:
            s.close()
