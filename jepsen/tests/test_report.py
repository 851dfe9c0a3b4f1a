"""`table`: the docs report sums runs per fault type and lists every run."""

from __future__ import annotations

import json


from raftka_jepsen import checker, report


def row(kind, seed, valid=True, lost=0, aimed=None):
    counts = {c: 0 for c in checker.ALL_ANOMALIES}
    counts["lost-write"] = lost
    return {"nemesis": kind, "seed": seed, "valid": valid, "ops": 1000, "faults": 20,
            "counts": counts, "dir": f"x/{kind}-s{seed}", "harness": 0, "unresponsive": "-",
            "aimed": aimed or {}}


def test_report_sums_per_kind_and_keeps_every_run(tmp_path):
    a = tmp_path / "suite-a"
    b = tmp_path / "suite-b"
    a.mkdir()
    b.mkdir()
    (a / "suite.json").write_text(json.dumps(
        [row("mixed", 2), row("kill", 1, aimed={"controller": 3, "leader": 4}),
         {"nemesis": "partition", "runs": 0, "unsupported": "no netns"}]))
    (b / "suite.json").write_text(json.dumps([row("kill", 2, valid=False, lost=2,
                                                  aimed={"fallback": 1})]))
    text = report.render(report.load([a, b]), 3)
    lines = text.splitlines()
    assert lines[2] == "| 3 | kill | 2 | 1/2 | 2,000 | 40 | 3/4/1 | 2 | 0 | 0 |"
    assert lines[3].startswith("| 3 | mixed | 1 | 1/1 |")
    runs = [ln for ln in lines[6:] if ln.startswith("| 3 |")]
    assert [r.split(" | ")[1:3] for r in runs] == [["kill", "1"], ["kill", "2"], ["mixed", "2"]]
    assert "`kill-s2`" in runs[1] and "| False |" in runs[1]
