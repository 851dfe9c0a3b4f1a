#!/usr/bin/env python3
"""librdkafka's own integration suite against raftka (issue 19).

Builds librdkafka's test runner (tests/conformance/build.sh: from the rdkafka-sys source pinned
in Cargo.lock, into ~/.cache/raftka/conformance), starts raftka (1 or 3 nodes, fresh data dirs,
free loopback ports), writes a test.conf with `bootstrap.servers`, and runs the non-mock tests one
test number at a time (`TESTS=0xxx test-runner -p1 -L`, TEST_KAFKA_VERSION=3.9.0), each under a
time cap. Prints a table: passed, failed, timed out, skipped, and tests that need a feature an
open issue holds (listed with the issue, never hidden), with each failure's first error line.

    tests/conformance/run.py --nodes 1                  # every non-mock test
    tests/conformance/run.py --nodes 3 --tests 0011,0082
    tests/conformance/run.py --nodes 1 --markdown docs/conformance-1.md --json out.json

Exit status: 0 when every test passed, was skipped, or needs a feature of another open issue;
1 otherwise. The test.conf lives in the run's work dir (RDKAFKA_TEST_CONF), so runs never share
it and the built tree stays as built.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_KAFKA_VERSION = "3.9.0"

# Tests (or, with a pattern, failures of a test) that need a feature held by another open
# issue. A failure of such a test is reported as "needs" with the issue; a pass is a pass.
# (test name, issue, feature, regex on the failure text or None for any failure)
NEEDS: list[tuple[str, int, str, str | None]] = [
    ("0098_consumer_txn", 17, "transactions", None),
    ("0103_transactions", 17, "transactions", None),
    ("0129_fetch_aborted_msgs", 17, "transactions", None),
    ("0097_ssl_verify", 15, "TLS", None),
    ("0115_producer_auth", 15, "ACLs", None),
    ("0119_consumer_auth", 15, "ACLs", None),
    ("0126_oauthbearer_oidc", 15, "SASL/OAUTHBEARER", None),
    ("0135_sasl_credentials", 15, "SASL", None),
    ("0142_reauthentication", 15, "SASL re-authentication", None),
    ("0081_admin/UserScramCredentials", 15, "SCRAM credentials", None),
    ("0055_producer_latency", 17, "transactions", r"(?i)transaction"),
    ("0061_consumer_lag", 17, "transactions", r"(?i)transaction"),
    ("0137_barrier_batch_consume", 17, "transactions (control records)", r"init_transactions"),
    # Its unauthorized-topic case adds a deny ACL with kafka-acls.sh.
    ("0109_auto_create_topics", 15, "ACLs (kafka-acls.sh)", r"KAFKA_PATH must be set|kafka-acls"),
    ("0101_fetch_from_follower", 21, "rack-aware replica selection", None),
]

# Caps (seconds) of their own: shorter for test numbers that wait forever on a missing feature
# (0061's transactional sub-test calls init_transactions(-1), issue 17), longer for those that
# need it (0113's cooperative-rebalance sub-tests take about ten minutes with the timeout
# multiplier 2); the rest use --cap.
TEST_CAPS: dict[str, float] = {"0061": 180, "0113": 1500}


def cap_of(number: str, cap: float) -> float:
    return TEST_CAPS.get(number, cap)

# Failures caused by what this environment lacks, not by the broker: reported as "skipped"
# with the reason. (test, regex on the failure text, reason)
ENVIRONMENT: list[tuple[str, str, str]] = [
    ("*", r"KAFKA_PATH and BROKERS must be set",
     "needs Apache Kafka's own kafka-topics.sh (KAFKA_PATH)"),
    ("*", r"Replication factor: \d+ larger than available brokers",
     "needs more brokers (a Kafka cluster of this size refuses the topic too)"),
]

# Tests run as one runner invocation per sub-test function (SUBTESTS=<function>:), so that one
# failing sub-test (CreateAcls: issue 15) does not hide the others. {test: (source, function
# whose body lists the sub-tests)}.
SPLIT: dict[str, tuple[str, str]] = {"0081_admin": ("0081-admin.c", "do_test_apis")}

# Tests that run only in another test scenario (a broker configured otherwise, e.g.
# `noautocreate`): {name: scenario}, filled by list_tests.
SCENARIO_ONLY: dict[str, str] = {}

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SUMMARY_ROW = re.compile(
    r"^\|\s*(\S+)\s*\|\s*(PASSED|FAILED|SKIPPED|RUNNING|NOT-STARTED)\s*\|\s*([\d.]+)s\s*\|\s*(.*)$")


@dataclasses.dataclass
class Result:
    name: str
    state: str  # passed | failed | timeout | skipped | needs
    seconds: float
    detail: str = ""
    issue: int | None = None
    number: str = ""
    log: str = ""

    def row(self) -> str:
        state = f"needs #{self.issue}" if self.state == "needs" else self.state
        detail = self.detail.replace("|", "\\|").strip()
        if len(detail) > 220:
            detail = detail[:217] + "..."
        return f"| {self.name} | {state} | {self.seconds:.0f} | {detail} |"


# ---- the test runner -----------------------------------------------------------------------

def build_runner() -> Path:
    out = subprocess.run([str(REPO / "tests/conformance/build.sh")], check=True,
                         stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()
    return Path(out[-1])


def list_tests(runner_dir: Path) -> dict[str, list[str]]:
    """{test number: [test names]} of the tests that need a broker (not TEST_F_LOCAL, not
    manual), from the runner's test.c table."""
    src = (runner_dir / "test.c").read_text()
    table = src[src.index("struct test tests[] = {"):]
    table = table[:table.index("{NULL}")]
    out: dict[str, list[str]] = {}
    for entry in table.split("_TEST(")[1:]:
        m = re.match(r"\s*(\w+)\s*,\s*([^,)]*)", entry)
        if not m:
            continue
        name, flags = m.group(1), m.group(2)
        if "TEST_F_LOCAL" in flags or "TEST_F_MANUAL" in flags or name.endswith("_mock"):
            continue  # broker-less, manual, or on librdkafka's in-process mock cluster
        scenario = re.search(r'\.scenario\s*=\s*"([^"]+)"', entry)
        if scenario and "default" not in scenario.group(1).split(","):
            SCENARIO_ONLY[name] = scenario.group(1)
        out.setdefault(name[:4], []).append(name)
    return out


def subtests(runner_dir: Path, source: str, function: str) -> list[str]:
    """The sub-test functions `function` calls in `source`, in order, without repeats."""
    src = (runner_dir / source).read_text()
    body = src[src.index(f"static void {function}("):]
    body = body[:body.index("\n}\n")]
    out: list[str] = []
    for m in re.finditer(r"\b(do_test_\w+)\(", body):
        if m.group(1) != function and m.group(1) not in out:
            out.append(m.group(1))
    return out


def first_error(text: str) -> str:
    """The message of the first failure the runner reports (the line after its `### Test
    "<name>" failed at ...: ###` header), preferring a test's over <MAIN>'s."""
    lines = text.splitlines()
    fallback = ""
    for i, line in enumerate(lines):
        m = re.search(r'### Test "([^"]+)" failed at (\S+)', line)
        if not m:
            continue
        msg = lines[i + 1].strip() if i + 1 < len(lines) else ""
        where = m.group(2).rstrip(":")
        if not m.group(1).startswith("<MAIN>"):
            return f"{msg} ({where})" if msg else where
        fallback = fallback or msg
    if fallback:
        return fallback
    # No failure reported (killed at the cap): the sub-test it was in.
    started = re.findall(r"\[ ([^\]\n]+:\d+:[^\]\n]*) \]", text)
    running = [t for t in started if not t.rstrip(")").endswith("s") or ": PASS (" not in t]
    if running:
        return f"stuck in sub-test {running[-1].strip()}"
    m = re.search(r"(?m)^.*\b(FAIL|Assertion)\b.*$", text)
    return m.group(0).strip() if m else ""


def classify(r: Result) -> Result:
    if r.state not in ("failed", "timeout"):
        return r
    for name, pattern, reason in ENVIRONMENT:
        if name in ("*", r.name) and re.search(pattern, r.detail):
            r.state, r.detail = "skipped", f"{reason} ({r.detail})"
            return r
    for name, issue, feature, pattern in NEEDS:
        if r.name != name:
            continue
        if pattern is None or re.search(pattern, r.detail):
            r.state, r.issue = "needs", issue
            r.detail = f"{feature}: {r.detail}" if r.detail else feature
            return r
    return r


def bootstrap_of(conf: Path) -> str:
    for line in conf.read_text().splitlines():
        if line.startswith("bootstrap.servers="):
            return line.split("=", 1)[1].strip()
    return ""


def run_number(runner_dir: Path, number: str, names: list[str], conf: Path, workdir: Path,
               cap: float, log_dir: Path, scenario: str = "default",
               subtest: str | None = None) -> list[Result]:
    env = dict(os.environ)
    env.update({
        "TESTS": number,
        "TEST_KAFKA_VERSION": TEST_KAFKA_VERSION,
        "RDKAFKA_TEST_CONF": str(conf),
        "LD_LIBRARY_PATH": f"{runner_dir.parent / 'src'}:{runner_dir.parent / 'src-cpp'}",
        "TERM": "dumb",
        # kafka-topics.sh for the tests that shell out to it (a stand-in: Apache Kafka's own
        # tools cannot be installed here), and the bootstrap list it is given.
        "KAFKA_PATH": str(REPO / "tests/conformance/kafka"),
        "BROKERS": bootstrap_of(conf),
        "RAFTKA_CONFORMANCE_PYTHON": sys.executable,
    })
    env.pop("SUBTESTS", None)
    if subtest:
        env["SUBTESTS"] = f"{subtest}:"
    tag = number if scenario == "default" else f"{number}-{scenario}"
    log_path = log_dir / (f"{tag}-{subtest}.log" if subtest else f"{tag}.log")
    started = time.monotonic()
    timed_out = False
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(runner_dir / "test-runner"), "-p1", "-L", "-s", scenario],
                                cwd=workdir,
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=cap_of(number, cap))
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    elapsed = time.monotonic() - started
    text = ANSI.sub("", log_path.read_text(errors="replace"))
    rows: dict[str, Result] = {}
    for line in text.splitlines():
        m = SUMMARY_ROW.match(line.strip())
        if m and m.group(1) in names:
            state = {"PASSED": "passed", "FAILED": "failed", "SKIPPED": "skipped"}.get(
                m.group(2), "failed")
            rows[m.group(1)] = Result(m.group(1), state, float(m.group(3)), m.group(4).strip(),
                                      number=number)
    results = []
    for name in names:
        r = rows.get(name)
        if r is None:
            if timed_out:
                limit = cap_of(number, cap)
                r = Result(name, "timeout", elapsed,
                           f"killed after {limit:.0f} s; last error: {first_error(text) or '-'}",
                           number=number)
            elif proc.returncode == 0:
                # The runner skipped it silently (another test scenario).
                why = f"scenario {SCENARIO_ONLY[name]} only" if name in SCENARIO_ONLY else \
                    "not run by the runner"
                r = Result(name, "skipped", 0.0, why, number=number)
            else:
                r = Result(name, "failed", elapsed,
                           first_error(text) or f"exit {proc.returncode}, no summary",
                           number=number)
        elif r.state == "failed":
            r.detail = first_error(text) or r.detail
        if subtest:
            r.name = f"{name}/{subtest.removeprefix('do_test_')}"
        r.log = str(log_path)
        results.append(classify(r))
    return results


# ---- raftka nodes --------------------------------------------------------------------------
# Nodes come from the one Python harness (tests/harness, `raftka_harness`).

def start_cluster(nodes: int, workdir: Path, binary: Path, extra: list[str]):
    from raftka_harness import Cluster

    # As librdkafka's trivup clusters (tests/scenarios/default.json): 4 partitions, RF min(n, 3),
    # Kafka's ACL authorizer open to everyone while no ACL names a resource (the 0081 ACL
    # sub-tests create, describe and delete ACLs).
    args = ["-o", "num.partitions=4",
            "-o", "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
            "-o", "allow.everyone.if.no.acl.found=true", *extra]
    if nodes > 1:
        args += ["-o", f"default.replication.factor={min(nodes, 3)}",
                 "-o", f"offsets.topic.replication.factor={min(nodes, 3)}"]
    cluster = Cluster.local(binary, workdir, nodes, extra_args=args)
    try:
        cluster.start(timeout=60)
    except Exception:
        cluster.stop()
        raise
    return cluster


def stop_cluster(cluster) -> None:
    cluster.stop()


def wait_brokers(bootstrap: str, n: int, timeout: float = 60) -> None:
    """All n brokers registered (Metadata through librdkafka, as the tests see them)."""
    from confluent_kafka.admin import AdminClient
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5)
            if len(md.brokers) >= n and md.controller_id >= 0:
                return
            last = f"{len(md.brokers)} brokers"
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = repr(e)
        time.sleep(0.5)
    raise RuntimeError(f"cluster not ready after {timeout} s: {last}")


# ---- report --------------------------------------------------------------------------------

def table(results: list[Result]) -> str:
    lines = ["| test | result | s | first error / reason |", "|---|---|---|---|"]
    lines += [r.row() for r in results]
    return "\n".join(lines)


def summary(results: list[Result]) -> str:
    count = {s: sum(1 for r in results if r.state == s)
             for s in ("passed", "failed", "timeout", "skipped", "needs")}
    needs = sorted({r.issue for r in results if r.state == "needs"})
    return (f"{len(results)} tests: {count['passed']} passed, {count['failed']} failed, "
            f"{count['timeout']} timed out, {count['skipped']} skipped, {count['needs']} need a "
            f"feature of another open issue ({', '.join(f'#{i}' for i in needs) or '-'})")


def base_names(names) -> set[str]:
    """Test names without a `/sub-test` suffix."""
    return {n.split("/", 1)[0] for n in names}


def run_phase(args, scenario: str, node_args: list[str], numbers: list[str],
              all_tests: dict[str, list[str]], wanted_names, runner_dir: Path, workdir: Path,
              binary: Path) -> list[Result]:
    """One cluster for every test number of one test scenario; restarted if a node exits."""
    results: list[Result] = []
    if not numbers:
        return results
    base = workdir / scenario
    conf = base / "test.conf"
    log_dir = base / "logs"
    run_dir = base / "tests"
    for d in (log_dir, run_dir):
        d.mkdir(parents=True, exist_ok=True)
    # Tests open files relative to the runner's tests/ dir (../src/statistics_schema.json).
    for lib in ("src", "src-cpp"):
        if not (base / lib).exists():
            (base / lib).symlink_to(runner_dir.parent / lib)

    def up(tag: str):
        made = start_cluster(args.nodes, base / tag, binary, node_args)
        bootstrap = made.bootstrap
        wait_brokers(bootstrap, args.nodes)
        conf.write_text(f"bootstrap.servers={bootstrap}\n"
                        f"test.timeout.multiplier={args.timeout_multiplier}\n")
        return made

    made = up("nodes")
    try:
        for number in numbers:
            dead = [n.name for n in made.nodes if not n.is_running()]
            if dead:
                print(f"conformance: {dead} exited; restarting the cluster", flush=True)
                stop_cluster(made)
                made = up(f"nodes-{number}")
            names = [t for t in all_tests[number] if SCENARIO_ONLY.get(t, "default") == scenario]
            if wanted_names:
                names = [n for n in names if n in base_names(wanted_names)] or names
            rs = []
            for name in [n for n in names if n in SPLIT]:
                subs = subtests(runner_dir, *SPLIT[name])
                picked_subs = {w.split("/", 1)[1] for w in wanted_names if w.startswith(name + "/")}
                if picked_subs:
                    subs = [t for t in subs if t.removeprefix("do_test_") in picked_subs]
                for sub in subs:
                    rs += run_number(runner_dir, number, [name], conf, run_dir, args.cap,
                                     log_dir, scenario, sub)
            rest = [n for n in names if n not in SPLIT]
            if rest:
                rs += run_number(runner_dir, number, rest, conf, run_dir, args.cap, log_dir,
                                 scenario)
            crashed = [n.name for n in made.nodes if not n.is_running()]
            for r in rs:
                if crashed and r.state != "passed":
                    r.detail = f"raftka {','.join(crashed)} exited during the test; {r.detail}"
                print(f"  {r.row()}", flush=True)
            results.extend(rs)
    finally:
        stop_cluster(made)
    return results


def update_doc(doc: Path, nodes: int, runner_dir: Path, text: str) -> None:
    begin, end = f"<!-- conformance:{nodes} -->", f"<!-- /conformance:{nodes} -->"
    body = doc.read_text() if doc.exists() else ""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lib = runner_dir.parent.name
    section = (f"{begin}\n{nodes} node(s), {when}, {lib}, "
               f"`tests/conformance/run.py --nodes {nodes}`:\n\n{text}{end}")
    if begin in body and end in body:
        body = body[:body.index(begin)] + section + body[body.index(end) + len(end):]
    else:
        body = body.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--tests", default="all",
                    help="comma-separated test numbers (0011) or names; default: every non-mock test")
    ap.add_argument("--skip", default="", help="comma-separated test numbers to leave out")
    ap.add_argument("--cap", type=float, default=600, help="per-test-number time cap, seconds")
    ap.add_argument("--timeout-multiplier", type=float, default=1.0,
                    help="test.timeout.multiplier in test.conf")
    ap.add_argument("--raftka", default=os.environ.get("RAFTKA_BIN") or str(
        Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/raftka/target")) / "debug/raftka"))
    ap.add_argument("--workdir", help="keep node data, logs and test output here (default: a temp dir)")
    ap.add_argument("--markdown", help="write the table (markdown) to this file")
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--reparse", metavar="JSON[,JSON...]",
                    help="do not run: re-read the logs of earlier runs' --json results (a later "
                    "file's result of a test replaces an earlier one), re-extract first errors "
                    "and re-classify")
    ap.add_argument("--update-doc", help="replace this node count's table in the given markdown "
                    "file (between <!-- conformance:N --> and <!-- /conformance:N -->)")
    args = ap.parse_args()

    runner_dir = build_runner()
    if args.reparse:
        results = reparse([Path(p) for p in args.reparse.split(",")])
        results.sort(key=lambda r: r.name)
        return report(args, runner_dir, results, 0.0)
    all_tests = list_tests(runner_dir)
    picked = [t.strip() for t in args.tests.split(",") if t.strip()]
    if args.tests == "all":
        numbers = sorted(all_tests)
    else:
        numbers = sorted({t[:4] for t in picked})
    skip = {t.strip()[:4] for t in args.skip.split(",") if t.strip()}
    numbers = [n for n in numbers if n in all_tests and n not in skip]
    wanted_names = {t for t in picked if len(t) > 4} if args.tests != "all" else set()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="raftka-conformance-"))
    workdir.mkdir(parents=True, exist_ok=True)
    binary = Path(args.raftka)
    print(f"conformance: librdkafka runner {runner_dir}, raftka {binary}, {args.nodes} node(s), "
          f"{len(numbers)} test numbers, work dir {workdir}", flush=True)

    # One phase per test scenario: "default" (auto topic creation on, as librdkafka's default
    # scenario) and "noautocreate" (auto.create.topics.enable=false) for the tests that need it.
    results: list[Result] = []
    started = time.monotonic()
    phases = [("default", []), ("noautocreate", ["-o", "auto.create.topics.enable=false"])]
    for scenario, node_args in phases:
        in_phase = [n for n in numbers
                    if any(SCENARIO_ONLY.get(t, "default") == scenario
                           and (not wanted_names or t in base_names(wanted_names) or n in picked)
                           for t in all_tests[n])]
        results += run_phase(args, scenario, node_args, in_phase, all_tests, wanted_names,
                             runner_dir, workdir, binary)

    return report(args, runner_dir, results, time.monotonic() - started)


def reparse(paths: list[Path]) -> list[Result]:
    """Results of earlier runs (--json files; a later file's result replaces an earlier one of
    the same test), first errors re-read from their logs and re-classified."""
    merged: dict[str, dict] = {}
    for path in paths:
        for d in json.loads(path.read_text()):
            merged[d["name"]] = d
    results = []
    for d in merged.values():
        r = Result(**d)
        if r.state in ("failed", "timeout", "needs") and r.log and Path(r.log).exists():
            text = ANSI.sub("", Path(r.log).read_text(errors="replace"))
            timed_out = "killed after" in r.detail
            r.state, r.issue = ("timeout" if timed_out else "failed"), None
            err = first_error(text) or r.detail
            r.detail = f"killed after the cap; last error: {err}" if timed_out else err
            r = classify(r)
        results.append(r)
    return results


def report(args, runner_dir: Path, results: list[Result], elapsed: float) -> int:
    took = f"; {elapsed / 60:.0f} min" if elapsed else ""
    text = f"{summary(results)}{took}\n\n{table(results)}\n"
    print("\n" + text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))
    if args.update_doc:
        update_doc(Path(args.update_doc), args.nodes, runner_dir, text)
    bad = [r for r in results if r.state in ("failed", "timeout")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
