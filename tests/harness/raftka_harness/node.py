"""One raftka process: the real binary started as a subprocess with fixed ports and a data dir.

Ports, data dir and log file are fixed for the node's lifetime, so a restart (after SIGTERM,
kill -9 or a crash) reuses them. stdout/stderr go to the log file, appended across restarts
with one `===== start #N ...` line before each start.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import wire
from .ports import free_ports

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
POLL_INTERVAL_S = 0.1
LOG_TAIL_LINES = 150


@dataclass
class Ports:
    kafka: int
    zk: int
    raft: int
    http: int | None  # None: `--http-listen none`

    @classmethod
    def free(cls, host: str = "127.0.0.1", http: bool = True) -> "Ports":
        k, z, r, h = free_ports(4, host)
        return cls(k, z, r, h if http else None)


class Node:
    """A raftka node. `prefix` runs the binary through another command (e.g. `ip netns exec
    NS`, which execs it, so the Popen pid is raftka's own pid); `env` adds to the environment
    (e.g. libfaketime); `quorum` is the `--controller-quorum` value (empty: a single node)."""

    def __init__(self, binary: Path, workdir: Path, node_id: int = 1, *, name: str | None = None,
                 host: str = "127.0.0.1", ports: Ports | None = None, http: bool = True,
                 quorum: str = "", extra_args: Sequence[str] = (), prefix: Sequence[str] = (),
                 env: dict[str, str] | None = None, data_dir: Path | None = None,
                 log_path: Path | None = None, listeners: str | None = None):
        self.binary = Path(binary)
        self.workdir = Path(workdir)
        self.node_id = node_id
        self.name = name or f"n{node_id}"
        self.host = host
        ports = ports or Ports.free(http=http)
        self.kafka_port, self.zk_port, self.raft_port, self.http_port = (
            ports.kafka, ports.zk, ports.raft, ports.http)
        self.quorum = quorum
        self.extra_args = list(extra_args)
        # `--listeners` instead of PLAINTEXT on the Kafka port; `{host}` and `{kafka_port}`
        # are filled in (the first listener should use the Kafka port: readiness is probed
        # there with ApiVersions, which every listener answers before authentication).
        self.listeners = listeners
        self.prefix = list(prefix)
        self.env = dict(env or {})
        self.data_dir = data_dir or self.workdir / "data"
        self.log_path = log_path or self.workdir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None
        self.paused = False
        self.starts = 0
        self.spawned_at: float | None = None  # time.perf_counter() of the last start

    # ---- addresses -------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def zk_hosts(self) -> str:
        return f"{self.host}:{self.zk_port}"

    @property
    def raft_addr(self) -> str:
        return f"{self.host}:{self.raft_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def command(self) -> list[str]:
        h = self.host
        http = "none" if self.http_port is None else f"{h}:{self.http_port}"
        cmd = [*self.prefix, str(self.binary), "serve", "--node-id", str(self.node_id),
               "--listeners", (self.listeners or "PLAINTEXT://{host}:{kafka_port}").format(
                   host=h, kafka_port=self.kafka_port),
               "--zk-listen", f"{h}:{self.zk_port}",
               "--raft-listen", f"{h}:{self.raft_port}",
               "--http-listen", http,
               "--data-dir", str(self.data_dir)]
        if self.quorum:
            cmd += ["--controller-quorum", self.quorum]
        return cmd + self.extra_args

    # ---- lifecycle -------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_code(self) -> int | None:
        """The exit code once the process has exited, else None."""
        return None if self.proc is None else self.proc.poll()

    def start(self, wait: bool = True, timeout: float = READY_TIMEOUT_S) -> None:
        """Spawns the node; with `wait`, returns once it serves Kafka (`wait_ready`)."""
        assert not self.is_running(), f"{self.name} is already running"
        self.starts += 1
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The node sees only what the caller passes: no RAFTKA_* from the developer's shell.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAFTKA_")}
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env["NO_COLOR"] = "1"  # plain text in the log file
        env.update(self.env)  # `ip netns exec` keeps the environment
        cmd = self.command()
        shown = " ".join(f"{k}={v}" for k, v in self.env.items())
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts} at {time.time():.3f}: "
                      f"{shown + ' ' if shown else ''}{' '.join(cmd)}\n".encode())
            log.flush()
            self.spawned_at = time.perf_counter()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.workdir, env=env,
                                         start_new_session=True)
        self.paused = False
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S, interval: float = POLL_INTERVAL_S) -> float:
        """Waits until an ApiVersions v0 request on the Kafka port gets its reply (a TCP accept
        alone can come from a node that is not serving yet). Returns the seconds since the
        spawn. Raises RuntimeError, with the log's tail, if the process exits or the timeout
        passes."""
        assert self.proc is not None and self.spawned_at is not None, f"{self.name} never started"
        deadline = time.monotonic() + timeout
        last_error = "no attempt yet"
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError(f"{self.name} exited with code {rc} before serving\n{self.log_tail()}")
            try:
                if self.api_versions_ok(timeout=2):
                    return time.perf_counter() - self.spawned_at
                last_error = "ApiVersions reply with a wrong correlation id"
            except (OSError, AssertionError, struct.error) as e:
                last_error = repr(e)
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{self.name} not serving Kafka on {self.bootstrap} after {timeout}s "
                                   f"(last error: {last_error})\n{self.log_tail()}")
            time.sleep(interval)

    def stop(self, timeout: float = STOP_TIMEOUT_S, check: bool = True) -> int | None:
        """SIGTERM (after SIGCONT if paused) and wait. Returns the exit code (None if never
        started). A node still running after `timeout` is SIGKILLed; with `check` that raises
        AssertionError (a clean shutdown is part of the contract)."""
        if self.proc is None:
            return None
        if self.paused:
            self.resume()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    raise AssertionError(
                        f"{self.name} did not exit within {timeout}s of SIGTERM\n{self.log_tail()}")
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL (kill -9) and wait; returns the exit code (None if never started)."""
        if self.proc is None:
            return None
        if self.paused:
            self.resume()
        if self.proc.poll() is None:
            self.proc.kill()
        rc = self.proc.wait()
        self.paused = False
        return rc

    def signal(self, sig: int) -> None:
        if self.is_running():
            assert self.proc is not None
            os.kill(self.proc.pid, sig)

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing."""
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False

    def restart(self, graceful: bool = True) -> int | None:
        """Stop (SIGTERM, or SIGKILL with graceful=False) and start again on the same ports and
        data dir. Returns the exit code of the stopped process."""
        rc = None
        if self.is_running():
            rc = self.stop() if graceful else self.kill()
        self.start()
        return rc

    def cleanup(self) -> None:
        """For teardown: never leaves a process behind, never raises for a slow shutdown."""
        if self.is_running():
            self.stop(timeout=10, check=False)

    # ---- probes ----------------------------------------------------------------------------
    def api_versions_ok(self, timeout: float = 2.0) -> bool:
        """One ApiVersions v0 round trip on the Kafka port (over TLS, unverified, when the first
        listener is SSL or SASL_SSL: ApiVersions needs no authentication). Raises OSError when
        unreachable."""
        with socket.create_connection((self.host, self.kafka_port), timeout=timeout) as raw:
            sock = raw
            if (self.listeners or "PLAINTEXT://").split("://")[0].upper() in ("SSL", "SASL_SSL"):
                import ssl
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                sock = ctx.wrap_socket(raw)
            sock.settimeout(timeout)
            corr = 0x0BADCAFE
            sock.sendall(wire.api_versions_request(corr, version=0))
            (got,) = struct.unpack_from(">i", wire.read_frame(sock), 0)
            return got == corr

    def tcp_ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.kafka_port), timeout=1):
                return True
        except OSError:
            return False

    def responsive(self, timeout: float = 3.0) -> bool:
        """Kafka ApiVersions answered and ZooKeeper `ruok` answered `imok` (a process can
        accept TCP connections while its runtime is deadlocked)."""
        try:
            if not self.api_versions_ok(timeout):
                return False
            with socket.create_connection((self.host, self.zk_port), timeout=timeout) as s:
                s.settimeout(timeout)
                s.sendall(b"ruok")
                return s.recv(4) == b"imok"
        except (OSError, AssertionError, struct.error):
            return False

    def metadata(self, timeout: float = 5.0) -> dict:
        """This node's own Metadata answer (one request over one connection to exactly this
        node; a Kafka client would send it to any broker it learned of): see
        `wire.parse_metadata_v1`."""
        return wire.metadata_roundtrip(self.host, self.kafka_port, timeout)

    def memory_mb(self) -> dict[str, float]:
        """VmRSS and VmHWM in MB from /proc/PID/status ({} when not running)."""
        out: dict[str, float] = {}
        if not self.is_running():
            return out
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) / 1024
        except OSError:
            pass
        return out

    # ---- logs ------------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log_text().splitlines()
        head = f"--- last {min(lines, len(text))} lines of {self.log_path} ---"
        return "\n".join([head, *text[-lines:]])

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"exited {self.exit_code()}" if self.proc else "not started"
        return f"Node({self.name}, id {self.node_id}, {self.bootstrap}, {state})"
