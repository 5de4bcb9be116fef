"""The long fuzz run (issue 6): every fuzz suite with ≥ 100,000 examples per endpoint.

Runs, one pytest process each, with TOKENGATE_FUZZ_EXAMPLES=N (default 100000):

* the authorization server, in process (tests/server/test_fuzz.py): N per path, 11 paths;
* the resource-server middleware (tests/resource/adapters/test_fuzz_middleware.py): N requests, and
  N/4 WebSocket handshakes;
* the gateway (tests/gateway/test_fuzz_gateway.py): N per mode (bypass, introspect).

Hypothesis' own statistics give the examples actually run per test; pytest's JUnit report the
outcome and time. Prints one row per test (examples, seconds, cases/s, outcome) and the totals.
No timeout per test (pytest-timeout off), no example database (every run explores afresh).

    .venv/bin/python fuzz/run_long.py [--examples 100000] [--only server,resource,gateway]

Expect hours for the default on a quiet machine: run it there, not in CI.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES = {
    "server": "tests/server/test_fuzz.py",
    "resource": "tests/resource/adapters/test_fuzz_middleware.py",
    "gateway": "tests/gateway/test_fuzz_gateway.py",
    "authz": "tests/authz/test_fuzz_authz.py",
}
_TEST_LINE = re.compile(r"^(tests/\S+):$", re.M)
_COUNTS = re.compile(r"(\d+) passing, (\d+) failing, and (\d+) invalid")
_PHASE_TIME = re.compile(r"during \w+ phase \(([\d.]+) seconds\)")


@dataclass
class Row:
    test: str
    examples: int
    failing: int
    seconds: float
    outcome: str

    @property
    def rate(self) -> float:
        return self.examples / self.seconds if self.seconds else 0.0


def hypothesis_stats(output: str) -> dict[str, tuple[int, int, float]]:
    """test id → (passing examples, failing examples, seconds in hypothesis phases)."""
    stats = {}
    parts = _TEST_LINE.split(output)  # [before, test, block, test, block, ...]
    for test, block in zip(parts[1::2], parts[2::2], strict=True):
        counts = [tuple(map(int, found)) for found in _COUNTS.findall(block)]
        seconds = sum(float(t) for t in _PHASE_TIME.findall(block))
        stats[test] = (sum(c[0] for c in counts), sum(c[1] for c in counts), seconds)
    return stats


def junit_outcomes(path: Path) -> dict[str, tuple[str, float]]:
    """test id → (outcome, seconds) from pytest's JUnit XML (written by our own pytest run)."""
    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):  # noqa: S314
        module = case.get("classname", "").replace(".", "/") + ".py"
        name = f"{module}::{case.get('name')}"
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        outcome = "FAILED" if failed else "skipped" if skipped else "passed"
        outcomes[name] = (outcome, float(case.get("time", 0)))
    return outcomes


def run_suite(path: str, examples: int, log_dir: Path) -> tuple[list[Row], str]:
    junit = log_dir / (Path(path).stem + ".xml")
    command = [sys.executable, "-m", "pytest", path, "-q", "-p", "no:cacheprovider",
               "--timeout=0", "--hypothesis-show-statistics", f"--junitxml={junit}"]  # fmt: skip
    env = {**os.environ, "TOKENGATE_FUZZ_EXAMPLES": str(examples)}
    done = subprocess.run(  # noqa: S603  # our own interpreter and test paths
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    output = done.stdout + done.stderr
    (log_dir / (Path(path).stem + ".log")).write_text(output)
    stats = hypothesis_stats(output)
    rows = []
    for test, (outcome, seconds) in junit_outcomes(junit).items():
        passing, failing, phases = stats.get(test, (0, 0, 0.0))
        rows.append(Row(test, passing + failing, failing, phases or seconds, outcome))
    return rows, output


def print_rows(rows: list[Row]) -> None:
    width = max(len(r.test) for r in rows)
    print(f"{'test':<{width}}  {'examples':>9}  {'seconds':>8}  {'cases/s':>8}  outcome")
    for r in rows:
        print(f"{r.test:<{width}}  {r.examples:>9}  {r.seconds:>8.1f}  {r.rate:>8.0f}  "
              f"{r.outcome}{f' ({r.failing} failing)' if r.failing else ''}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=100_000, help="per endpoint/path/mode")
    parser.add_argument("--only", default=",".join(SUITES), help="comma-separated suite names")
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="tg-fuzz-"))
    print(f"fuzzing with TOKENGATE_FUZZ_EXAMPLES={args.examples}; logs in {log_dir}", flush=True)
    started, rows = time.monotonic(), []
    for name in args.only.split(","):
        suite_rows, output = run_suite(SUITES[name], args.examples, log_dir)
        if not suite_rows:
            print(f"{name}: pytest produced no results:\n{output[-3000:]}")
            raise SystemExit(2)
        rows += suite_rows
        print(f"\n{name} ({SUITES[name]}):", flush=True)
        print_rows(suite_rows)
        for row in suite_rows:
            if row.outcome == "FAILED":
                print(f"  see {log_dir / (Path(SUITES[name]).stem + '.log')} for the failure")
    total = sum(r.examples for r in rows)
    elapsed = time.monotonic() - started
    failed = [r.test for r in rows if r.outcome == "FAILED"]
    print(f"\ntotal: {total} examples in {elapsed:.0f}s ({total / elapsed:.0f} cases/s overall), "
          f"{len(rows)} tests, {len(failed)} failed -> {'FAIL' if failed else 'PASS'}")  # fmt: skip
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
