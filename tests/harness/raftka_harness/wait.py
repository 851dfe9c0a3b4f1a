"""Polling with a deadline (never a bare sleep) and unique names."""

from __future__ import annotations

import time
import uuid


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """Polls `predicate` until it returns a truthy value, which is returned; raises
    AssertionError naming `what` and the last result (or exception) after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - reported if the deadline passes
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last result: {last!r}")
        time.sleep(interval)
