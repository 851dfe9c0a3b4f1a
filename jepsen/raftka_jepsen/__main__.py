"""CLI: `python -m raftka_jepsen run ...` and `python -m raftka_jepsen check history.jsonl`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import checker
from .history import read_history


def cmd_check(args: argparse.Namespace) -> int:
    hist = Path(args.history)
    ops = read_history(hist)
    summary = checker.check(ops, max_steps=args.max_steps)
    out_dir = Path(args.out) if args.out else hist.parent
    text = checker.render_text(summary, f"raftka jepsen summary: {hist}")
    (out_dir / "summary.txt").write_text(text)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    sys.stdout.write(text)
    return 0 if summary["valid"] is True else (2 if summary["valid"] == "unknown" else 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="raftka_jepsen")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="check a history.jsonl; writes summary.txt/.json beside it")
    c.add_argument("history")
    c.add_argument("--out", help="directory for summary.txt/summary.json (default: beside history)")
    c.add_argument("--max-steps", type=int, default=2_000_000,
                   help="linearizability search budget (exceeded: valid = unknown)")
    c.set_defaults(fn=cmd_check)
    from . import report
    report.add_arguments(sub.add_parser(
        "table", help="one markdown report (per fault type, then per run) over suite dirs"))
    try:
        from . import runner
    except ImportError as e:  # the checker must work without the client libraries
        why = str(e)  # `e` is unbound once the except block ends
        r = sub.add_parser("run", help=f"unavailable: {why}")
        r.set_defaults(fn=lambda a: (print(f"run unavailable: {why}", file=sys.stderr), 3)[1])
    else:
        runner.add_arguments(sub.add_parser("run", help="run a workload + nemesis, then check"))
        runner.add_suite_arguments(sub.add_parser(
            "suite", help="full schedule: --runs runs of --time s per fault type + table.md"))
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
