"""Where the binary is, and the configuration a node is given (properties files, quorum)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping


def default_binary(profile: str = "debug") -> Path:
    """`$RAFTKA_BIN`, else `$CARGO_TARGET_DIR/<profile>/raftka` (the Makefile's target dir,
    `~/.cache/raftka/target`, when CARGO_TARGET_DIR is unset)."""
    if os.environ.get("RAFTKA_BIN"):
        return Path(os.environ["RAFTKA_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/raftka/target")
    return Path(target) / profile / "raftka"


def write_config(path: Path, settings: Mapping[str, object], comment: str | None = None) -> Path:
    """Writes a `config.properties` file (`key=value` lines) for `raftka serve -c PATH`."""
    lines = [f"# {line}" for line in (comment or "").splitlines()]
    lines += [f"{k}={v}" for k, v in settings.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def overrides(settings: Mapping[str, object]) -> list[str]:
    """`-o key=value` arguments for every setting."""
    return [a for k, v in settings.items() for a in ("-o", f"{k}={v}")]


def quorum_arg(voters: Iterable[tuple[int, str, int]]) -> str:
    """`--controller-quorum` value from (node id, host, raft port) triples."""
    return ",".join(f"{i}@{host}:{port}" for i, host, port in voters)
