"""A fast subset of librdkafka's own integration suite (docs/conformance.md, issue 19): group,
fetch, produce and admin tests run by `tests/conformance/run.py` against one raftka node, so the
behaviours they pin down (KIP-74 fetch budgets, KIP-467 record errors, KIP-430 authorized
operations, group offsets) cannot regress. `make conformance` runs the whole suite.

The librdkafka test runner is built on first use (tests/conformance/build.sh, a few minutes,
cached in ~/.cache/raftka/conformance); its Debian packages come from `make deps`. A missing
prerequisite fails the test: it is not skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# test (or test/sub-test of 0081) -> what it pins down. 0077_compaction passes but takes
# ~150 s, so it stays in `make conformance` only.
SUBSET = {
    "0011_produce_batch": "produce batches; KIP-467 record errors (10 keyless records of 100)",
    "0012_produce_consume": "produce and consume across partitions",
    "0019_list_groups": "ListGroups / DescribeGroups",
    "0029_assign_offset": "assign() at explicit offsets",
    "0036_partial_fetch": "fetch sizes smaller than a message",
    "0041_fetch_max_bytes": "fetch.max.bytes with messages larger than it",
    "0056_balanced_group_mt": "a balanced consumer group",
    "0082_fetch_max_bytes": "KIP-74: the response byte budget across partitions",
    "0030_offset_commit": "async and sync OffsetCommits applied in request order",
    "0084_destroy_flags": "a member gone without LeaveGroup expires in CompletingRebalance",
    "0081_admin/CreateTopics": "CreateTopics incl. validate-only",
    "0081_admin/DescribeConfigs": "DescribeConfigs",
    "0081_admin/DeleteRecords": "DeleteRecords",
    "0081_admin/ListOffsets": "ListOffsets",
    "0081_admin/AlterConsumerGroupOffsets": "AlterConsumerGroupOffsets",
    "0081_admin/DescribeTopics": "DescribeTopics incl. KIP-430 authorized operations",
    "0081_admin/DescribeCluster": "DescribeCluster incl. KIP-430 authorized operations",
    "0081_admin/DescribeConsumerGroups_with_authorized_ops": "DescribeGroups authorized operations",
    "0081_admin/DescribeConsumerGroups": "static members closed: DeleteGroups one session timeout later",
    "0081_admin/AlterConfigs": "AlterConfigs on topics and a broker (a per-broker SASL key)",
    "0081_admin/IncrementalAlterConfigs": "IncrementalAlterConfigs on topics and a broker",
    "0081_admin/CreateAcls": "CreateAcls (Kafka's authorizer on, open while no ACL applies)",
    "0081_admin/DescribeAcls": "DescribeAcls with its filters",
    "0081_admin/DeleteAcls": "DeleteAcls with its filters",
}

# Per test number; the whole subset takes about 3 minutes.
CAP_S = 300


@pytest.fixture(scope="module")
def conformance(raftka_binary, tmp_path_factory):
    out = tmp_path_factory.mktemp("conformance")
    cmd = [sys.executable, str(REPO / "tests/conformance/run.py"), "--nodes", "1",
           "--tests", ",".join(SUBSET), "--raftka", str(raftka_binary),
           "--workdir", str(out / "run"), "--json", str(out / "results.json"), "--cap", str(CAP_S),
           "--timeout-multiplier", "2"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=CAP_S * 4 + 900)
    path = out / "results.json"
    assert path.exists(), f"run.py produced no results (exit {proc.returncode}):\n{proc.stdout[-4000:]}"
    results = {r["name"]: r for r in json.loads(path.read_text())}
    return results, proc.stdout, out / "run"


@pytest.mark.timeout(CAP_S * 4 + 1200)
@pytest.mark.parametrize("name", sorted(SUBSET))
def test_librdkafka(conformance, name):
    results, output, workdir = conformance
    assert name in results, f"{name} did not run:\n{output[-3000:]}"
    r = results[name]
    log = Path(r["log"])
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:]) if log.exists() else ""
    assert r["state"] == "passed", (
        f"{name} ({SUBSET[name]}): {r['state']}: {r['detail']}\n--- {log} (tail) ---\n{tail}")
