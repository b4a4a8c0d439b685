"""The census (``census.py``) counts what the suite checks: each test it names is collected, every collected test
is named by it or listed as checking no one input, no input is counted twice, and the README quotes its counts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.hostile.census import NOT_PER_INPUT, ROOT, rows


def _function(nodeid: str) -> tuple[str, str]:
    """``(module file name, test function)`` of a node id."""
    module, _, rest = nodeid.partition("::")
    return Path(module).name, rest.split("[")[0]


def test_census_names_every_test_of_the_suite():
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "tests/hostile"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    collected = {ln.strip() for ln in proc.stdout.splitlines() if "::" in ln}
    assert proc.returncode == 0 and collected, proc.stdout[-2000:] + proc.stderr[-2000:]
    table = rows()
    named = {t for r in table for t in r.tests}
    assert named <= collected, sorted(named - collected)
    unnamed = {n for n in collected - named if _function(n)[1] not in NOT_PER_INPUT.get(_function(n)[0], ())}
    assert not unnamed, sorted(unnamed)
    listed = {(module, test) for module, tests in NOT_PER_INPUT.items() for test in tests}
    assert listed <= {_function(n) for n in collected}, sorted(listed - {_function(n) for n in collected})
    ids = [(r.group, r.id) for r in table]
    assert len(ids) == len(set(ids)) and all(r.expect in ("ok", "fail") and r.tests for r in table)


def test_readme_quotes_the_census():
    table = rows()
    ok, fail = sum(r.expect == "ok" for r in table), sum(r.expect == "fail" for r in table)
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert (f"`tests/hostile/` builds {len(table)} hostile inputs at test time and checks each: {ok} must give a "
            f"correct result, {fail} a clean one-line error") in readme
    assert "`python -m tests.hostile.census --run`" in readme
