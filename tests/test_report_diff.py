"""Comparing two runs: regressions, fixes, new and removed checks (the gate is in test_gate.py)."""

from __future__ import annotations

import json

from harness.report.diff import diff_runs
from tests.test_report_render import sample_run


def with_outcomes(document: dict, **outcomes: str) -> dict:
    """A copy of `document` with some checks' outcomes replaced (MAP_001="fail")."""
    copy = json.loads(json.dumps(document))
    wanted = {k.replace("_", "-"): v for k, v in outcomes.items()}
    for check in copy["checks"]:
        check["outcome"] = wanted.get(check["check_id"], check["outcome"])
    return copy


def ids(changes) -> list[str]:
    return [c.check_id for c in changes]


def test_diff_names_regressions_fixes_new_and_removed():
    old = sample_run(broken=())  # MAP-001/002 pass, MAP-003 fail, ASYNC-001 warn, NORM-001 error
    new = with_outcomes(old, MAP_001="fail", ASYNC_001="error", MAP_003="pass", NORM_001="skip")
    new["checks"].append({**new["checks"][0], "check_id": "SEC-001", "category": "SEC",
                          "outcome": "fail"})
    old["checks"] = [c for c in old["checks"] if c["check_id"] != "MAP-002"] + [
        {**old["checks"][0], "check_id": "ERR-009", "category": "ERR"}]
    result = diff_runs(old, new)
    assert ids(result.regressions) == ["MAP-001", "ASYNC-001"]
    assert ids(result.fixes) == ["MAP-003"]
    assert ids(result.new) == ["MAP-002", "SEC-001"]
    assert ids(result.removed) == ["ERR-009"]
    assert ids(result.changed) == ["NORM-001"]  # error -> skip: neither worse nor fixed
    assert result.has_regressions
    text = "\n".join(result.lines())
    assert "regressions (2):" in text and "MAP-001 pass -> fail" in text


def test_identical_runs_have_no_regressions():
    run = sample_run()
    result = diff_runs(run, run)
    assert not result.has_regressions
    assert result.lines() == ["no changes"]
