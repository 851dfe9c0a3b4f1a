"""The one harness that starts raftka nodes, for tests/python, bench/ and jepsen/.

    from raftka_harness import Cluster, Node, free_ports, wait_until

- `free_ports(n)`: free loopback ports outside the ephemeral range.
- `Node`: one `raftka serve` process with fixed ports, data dir and log file: start (and
  wait until it serves Kafka), stop (SIGTERM), kill (-9), pause/resume (SIGSTOP/SIGCONT),
  restart, probes (`wait_ready`, `responsive`, `metadata` of this node alone), logs.
- `Cluster`: nodes forming one controller quorum; `Cluster.local(binary, root, n)`.
- `write_config`, `overrides`, `quorum_arg`, `default_binary`: configuration.
- `netns`: one network namespace per node on a bridge, iptables cuts (needs root).
- `wire`: hand-built Kafka frames (ApiVersions, single-node Metadata/CreateTopics/DeleteTopics).
- `wait_until`, `unique_name`: polling with a deadline, unique topic/group names.
- `pki`: test certificates with openssl (a CA, server / client certificates, PEM and PKCS#12).

Installed (editable) into the repo's .venv by `make deps-python`.
"""

from . import netns, pki, wire
from .cluster import Cluster
from .config import default_binary, overrides, quorum_arg, write_config
from .node import Node, Ports
from .ports import PORT_RANGE, free_ports
from .wait import unique_name, wait_until

__all__ = ["Cluster", "Node", "Ports", "PORT_RANGE", "default_binary", "free_ports", "netns", "overrides",
           "pki", "quorum_arg", "unique_name", "wait_until", "wire", "write_config"]
