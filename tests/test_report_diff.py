"""Comparing runs for CI: regressions, fixes, new checks, and the baseline gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.report.diff import Baseline, diff_runs, gate
from harness.report.runjson import write_run
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


def test_gate_against_a_previous_run_passes_when_nothing_got_worse(tmp_path: Path):
    old = sample_run()
    path = write_run(old, tmp_path / "run.json")
    baseline = Baseline.load(path)
    assert set(baseline.expected) == {"MAP-002", "MAP-003", "NORM-001"}
    assert gate(old, baseline) == []
    improved = with_outcomes(old, MAP_003="pass")
    assert gate(improved, baseline) == []
    assert baseline.stale(improved) == ["MAP-003"]
    worse = with_outcomes(old, MAP_001="error")
    assert [c["check_id"] for c in gate(worse, baseline)] == ["MAP-001"]


def test_gate_with_an_expected_failures_file(tmp_path: Path):
    path = tmp_path / "expected-failures.json"
    path.write_text(json.dumps({"MAP-002": "refgw issue #3", "MAP-003": "chat fallback, #12"}))
    baseline = Baseline.load(path)
    assert baseline.expected["MAP-003"] == "chat fallback, #12"
    assert [c["check_id"] for c in gate(sample_run(), baseline)] == ["NORM-001"]


@pytest.mark.parametrize(("content", "problem"), [
    ("[1, 2]", "must be a JSON object"),
    ('{"map-1": "x"}', "is not a check id"),
    ('{"MAP-001": ""}', "needs a reason"),
    ("{not json", "not JSON"),
    ('{"format": "gwconf-run/1", "checks": []}', "not a gwconf run.json"),
])
def test_bad_baseline_is_a_one_line_config_error(tmp_path: Path, content: str, problem: str):
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=problem) as info:
        Baseline.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_baseline_file_names_the_path(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read baseline"):
        Baseline.load(tmp_path / "absent.json")
