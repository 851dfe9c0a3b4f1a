"""`python -m raftka_jepsen table SUITE_DIR...`: one markdown report over several suites (for
docs/jepsen.md): a summary per fault type, then every run. Reads each suite's `suite.json`; the
child suites of a `--parallel` suite are skipped because their parent already merged them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .checker import ALL_ANOMALIES

ORDER = ("kill", "pause", "partition", "clock", "membership", "join", "mixed")
SHORT = {"lost-write": "lost", "duplicate": "dup", "inconsistent-offset": "incons. offset",
         "nonmonotonic-send": "nonmono send", "nonmonotonic-poll": "nonmono poll",
         "poll-skip": "poll skip", "commit-backwards": "commit back",
         "register-nonlinearizable": "register non-lin.", "seq-duplicate": "seq dup",
         "seq-nonmonotonic": "seq nonmono"}


def load(dirs: list[Path]) -> list[dict]:
    rows = []
    for d in dirs:
        found = [d / "suite.json"] if (d / "suite.json").exists() else sorted(d.glob("suite-*/suite.json"))
        for j in found:
            rows += [r for r in json.loads(j.read_text()) if "seed" in r]
    order = {k: i for i, k in enumerate(ORDER)}
    rows.sort(key=lambda r: (order.get(r["nemesis"], 99), r["seed"]))
    return rows


def aimed(r: dict) -> list[int]:
    return [r.get("aimed", {}).get(k, 0) for k in ("controller", "leader", "fallback")]


def render(rows: list[dict], nodes: int) -> str:
    cols = list(ALL_ANOMALIES)
    out = ["| nodes | nemesis | runs | valid | ops | faults | aimed c/l/f | anomalies | "
           "unresponsive after heal | harness problems |",
           "|---|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    kinds = list(dict.fromkeys(r["nemesis"] for r in rows))
    for k in kinds:
        rs = [r for r in rows if r["nemesis"] == k]
        a = [sum(x) for x in zip(*(aimed(r) for r in rs))]
        out.append(f"| {nodes} | {k} | {len(rs)} | {sum(r['valid'] is True for r in rs)}/{len(rs)} "
                   f"| {sum(r['ops'] for r in rs):,} | {sum(r['faults'] for r in rs)} "
                   f"| {a[0]}/{a[1]}/{a[2]} "
                   f"| {sum(sum(r['counts'][c] for c in cols) for r in rs)} "
                   f"| {sum(r['unresponsive'] != '-' for r in rs)} "
                   f"| {sum(r['harness'] for r in rs)} |")
    out += ["", "| nodes | nemesis | seed | valid? | ops | faults | aimed c/l/f | "
            + " | ".join(SHORT.get(c, c) for c in cols) + " | run dir | unresponsive | harness |",
            "|---|---|---|---|---:|---:|---|" + "---:|" * len(cols) + "---|---|---:|"]
    for r in rows:
        a = aimed(r)
        out.append(f"| {nodes} | {r['nemesis']} | {r['seed']} | {r['valid']} | {r['ops']:,} "
                   f"| {r['faults']} | {a[0]}/{a[1]}/{a[2]} | "
                   + " | ".join(str(r["counts"][c]) for c in cols)
                   + f" | `{Path(r['dir']).name}` | {r['unresponsive']} | {r['harness']} |")
    return "\n".join(out) + "\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("suites", nargs="+", help="suite directories (results/suite-*)")
    p.add_argument("--nodes", type=int, required=True, help="cluster size of these suites")
    p.set_defaults(fn=lambda a: print(render(load([Path(d) for d in a.suites]), a.nodes),
                                      end="") or 0)
