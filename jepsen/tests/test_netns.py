"""netns.py commands on a real kernel: needs root (CAP_NET_ADMIN), ip and iptables. Skipped
otherwise. Creates rk-n1, rk-n2 and rk-br0 and removes them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from raftka_jepsen import netns

# Opt-in: it changes the host's network (namespaces, a bridge, one FORWARD rule; all removed).
pytestmark = pytest.mark.skipif(
    os.environ.get("RAFTKA_JEPSEN_NETNS") != "1" or os.geteuid() != 0
    or not shutil.which("ip") or not shutil.which("iptables"),
    reason="opt-in (RAFTKA_JEPSEN_NETNS=1); needs root, ip and iptables")

SERVER = ("import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
          "s.bind(('10.77.0.1',7777));s.listen(16)\n"
          "while True:\n c,_=s.accept();c.sendall(b'hi');c.close()")
PROBE = ("import socket\ntry:\n s=socket.create_connection(('10.77.0.1',7777),timeout=2)\n"
         " print(s.recv(2).decode())\nexcept OSError as e: print('FAIL')")


def probe(ns=None) -> str:
    cmd = ([] if ns is None else ["ip", "netns", "exec", ns]) + [sys.executable, "-c", PROBE]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()


def test_cut_and_heal():
    if subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.find("rk-n") >= 0:
        pytest.skip("rk-n* namespaces already exist (another run?)")
    srv = None
    try:
        netns.setup(2)
        srv = subprocess.Popen(["ip", "netns", "exec", "rk-n1", sys.executable, "-c", SERVER])
        deadline = time.monotonic() + 5
        while probe() != "hi" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (probe(), probe("rk-n2")) == ("hi", "hi")
        netns.cut(1, 2)
        assert (probe(), probe("rk-n2")) == ("hi", "FAIL")
        netns.heal(2)
        assert (probe(), probe("rk-n2")) == ("hi", "hi")
    finally:
        if srv is not None:
            srv.kill()
            srv.wait()
        netns.teardown(2)
