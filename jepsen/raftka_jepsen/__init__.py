"""raftka Jepsen-style harness: workload, nemesis and checker (Python, stdlib + .venv)."""

__all__ = ["history", "checker", "linearizability"]
