"""The CI gate against a baseline: the ratchet, pending checks, per-version expectation sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.paths import PROJECT_ROOT
from harness.report import baseline as baselines
from harness.report.gate import judge
from harness.report.runjson import write_run
from tests.test_cli import gwconf
from tests.test_report_diff import with_outcomes
from tests.test_report_render import sample_run


def statuses(result) -> dict[str, str]:
    return {e.check_id: e.status for e in result.entries}


def with_check(document: dict, check_id: str, outcome: str, message: str = "") -> dict:
    """A copy of `document` with one more check (a check new in this gwconf)."""
    copy = json.loads(json.dumps(document))
    copy["checks"].append({**copy["checks"][0], "check_id": check_id, "category": check_id.split("-")[0],
                           "title": f"title of {check_id}", "outcome": outcome, "message": message})
    return copy


def adopted(document: dict) -> baselines.ExpectationSet:
    """The expectation set `gwconf baseline update` makes from `document` alone."""
    key, made = baselines.update(None, document)
    return made.versions[key]


# sample_run(): MAP-001 pass, MAP-002 fail, MAP-003 fail, ASYNC-001 warn, ASYNC-002 skip, NORM-001 error


def test_baseline_update_records_catalogue_and_expected_failures():
    run = sample_run()
    key, made = baselines.update(None, run)
    assert key == "1.2.3"  # the gateway version run.json took from the profile
    data = made.to_dict()
    assert data["gateway"] == "refgw" and data["profile"] == "gateways/refgw.yaml"
    entry = data["versions"]["1.2.3"]
    assert entry["catalogue"]["checks"] == sorted(c["check_id"] for c in run["checks"])
    assert entry["catalogue"]["digest"].startswith("sha256:")
    assert entry["source"] == {"run_id": "run-0001", "started_at": run["started_at"], "harness_version":
                               run["harness"]["version"]}
    assert set(entry["expected"]) == {"MAP-002", "MAP-003", "NORM-001"}
    assert entry["expected"]["NORM-001"] == "error in refgw 1.2.3 run run-0001: gateway timed out after 10s"
    assert judge(run, made.versions[key]).passed


def test_a_fix_makes_ratchet_fail():
    run = sample_run()
    expectations = adopted(run)
    fixed = with_outcomes(run, MAP_003="pass")
    lenient = judge(fixed, expectations)
    assert lenient.passed
    assert statuses(lenient)["MAP-003"] == "fixed"
    assert any("tighten the baseline" in line for line in lenient.lines())
    strict = judge(fixed, expectations, ratchet=True)
    assert not strict.passed
    assert [e.check_id for e in strict.entries if e.failing] == ["MAP-003"]
    assert "expected failure now passes: MAP-003" in "\n".join(strict.lines())


def test_baseline_update_tightens_and_keeps_the_reasons_of_what_remains(tmp_path: Path):
    run = sample_run()
    key, made = baselines.update(None, run)
    reasons = {**made.versions[key].expected, "NORM-001": "gateway times out on large images, tracked in #7"}
    path = baselines.write(baselines.Baseline({key: baselines.ExpectationSet(
        reasons, made.versions[key].catalogue)}), tmp_path / "refgw.expected.json")
    fixed = with_outcomes(run, MAP_003="pass")

    _, tighter = baselines.update(baselines.load(path), fixed)
    now = tighter.versions[key]
    assert set(now.expected) == {"MAP-002", "NORM-001"}  # MAP-003 now passes: dropped
    assert now.expected["NORM-001"] == "gateway times out on large images, tracked in #7"  # kept as written
    assert judge(fixed, now, ratchet=True).passed
    assert not judge(run, now).passed  # MAP-003 failing again is a regression now


def test_a_new_check_is_pending_until_adopted():
    run = sample_run()
    expectations = adopted(run)
    newer = with_check(run, "SEC-001", "fail", "jobs visible across keys")
    result = judge(newer, expectations)
    assert result.passed, "a new check does not fail the gate"
    entry = next(e for e in result.entries if e.check_id == "SEC-001")
    assert (entry.status, entry.failing) == ("pending", False)
    assert "gwconf baseline update" in entry.reason
    assert "pending: SEC-001 fail" in "\n".join(result.lines())

    passing = with_check(run, "SEC-001", "pass")
    assert statuses(judge(passing, expectations))["SEC-001"] == "pending"  # reported, whatever its outcome
    now = adopted(passing)  # adopted while it passes
    assert "SEC-001" in (now.catalogue or ())
    assert "SEC-001" not in statuses(judge(passing, now))
    regressed = judge(newer, now)
    assert not regressed.passed and statuses(regressed)["SEC-001"] == "regression"


def test_no_pending_makes_a_pending_check_binding():
    run = sample_run()
    newer = with_check(run, "SEC-001", "fail", "jobs visible across keys")
    result = judge(newer, adopted(run), pending_binding=True)
    assert not result.passed
    assert [e.check_id for e in result.entries if e.failing] == ["SEC-001"]
    assert "[fails the gate]" in next(line for line in result.lines() if "SEC-001" in line)
    # a pending check that passes binds nothing
    assert judge(with_check(run, "SEC-001", "pass"), adopted(run), pending_binding=True).passed


def test_blocked_and_unknown_outcomes_do_not_fail_the_gate_on_their_own():
    run = sample_run()
    expectations = adopted(run)
    later = with_outcomes(run, MAP_001="blocked", MAP_003="blocked", ASYNC_001="pending")
    result = judge(later, expectations, ratchet=True, pending_binding=True)
    assert result.passed
    assert statuses(result) == {"MAP-002": "expected", "MAP-003": "expected", "NORM-001": "expected"}
    # a blocked expected failure is not fixed: the update keeps its expectation
    _, kept = baselines.update(baselines.Baseline({"1.2.3": expectations}), later)
    assert "MAP-003" in kept.versions["1.2.3"].expected


def test_a_partial_run_updates_only_the_checks_it_ran():
    run = sample_run()
    expectations = adopted(run)
    partial = json.loads(json.dumps(run))
    partial["options"] = {"keyword": "MAP-003"}
    partial["checks"] = [{**c, "outcome": "pass"} for c in partial["checks"] if c["check_id"] == "MAP-003"]
    _, made = baselines.update(baselines.Baseline({"1.2.3": expectations}), partial)
    now = made.versions["1.2.3"]
    assert set(now.expected) == {"MAP-002", "NORM-001"}
    assert now.catalogue == expectations.catalogue
    whole = with_outcomes(run, MAP_003="pass")
    whole["checks"] = [c for c in whole["checks"] if c["check_id"] != "MAP-002"]  # MAP-002 retired
    _, made = baselines.update(baselines.Baseline({"1.2.3": expectations}), whole)
    assert "MAP-002" not in made.versions["1.2.3"].expected
    assert "MAP-002" not in (made.versions["1.2.3"].catalogue or ())


def test_each_gateway_version_has_its_own_expectations(tmp_path: Path):
    run = sample_run()  # version 1.2.3
    old = with_outcomes(run, MAP_001="fail")
    _, made = baselines.update(None, old)
    made = baselines.Baseline({"1.0.0": made.versions["1.2.3"], "1.2.3": adopted(run)})
    path = baselines.write(made, tmp_path / "refgw.expected.json")
    loaded = baselines.load(path)
    key, expectations = loaded.select("1.2.3")
    assert key == "1.2.3" and "MAP-001" not in expectations.expected
    assert "MAP-001" in loaded.select("1.0.0")[1].expected
    with pytest.raises(ConfigError, match=r"no expectations for .* version 2\.0 \(has: 1\.0\.0, 1\.2\.3\)") as info:
        loaded.select("2.0")
    assert str(path) in str(info.value)

    # an unknown version falls back to '*', and `baseline update` forks a set of its own from it
    star = baselines.Baseline({"*": made.versions["1.0.0"]})
    assert star.select("9.9")[0] == "*"
    newer = json.loads(json.dumps(run))
    newer["gateway"]["version"] = "9.9"
    key, forked = baselines.update(star, newer)
    assert key == "9.9" and set(forked.versions) == {"*", "9.9"}
    assert "MAP-001" not in forked.versions["9.9"].expected  # passes on 9.9
    assert forked.versions["9.9"].expected["MAP-002"] == made.versions["1.0.0"].expected["MAP-002"]
    assert forked.versions["*"] == star.versions["*"]


@pytest.mark.parametrize(("content", "problem"), [
    ("[1, 2]", "must be a JSON object"),
    ('{"map-1": "x"}', "is not a check id"),
    ('{"MAP-001": ""}', "needs a reason"),
    ("{not json", "not JSON"),
    ('{"format": "gwconf-run/1", "checks": []}', "not a gwconf run.json"),
    ('{"format": "gwconf-baseline/1", "versions": {}}', "not a gwconf baseline"),
    ('{"format": "gwconf-baseline/2", "versions": {"*": {}}}', "not a gwconf baseline"),
    ('{"format": "gwconf-baseline/1", "versions": {"1.0": {"catalogue": {"digest": "x", "checks": []},'
     ' "expected": {}}}}', "at /versions/1.0/catalogue/digest"),
    ('{"format": "gwconf-baseline/1", "versions": {"1.0": {"catalogue": {"digest": "sha256:' + "0" * 64
     + '", "checks": ["MAP-001"]}, "expected": {"MAP-001": " "}}}}', "at /versions/1.0/expected/MAP-001"),
])
def test_bad_baseline_is_a_one_line_config_error(tmp_path: Path, content: str, problem: str):
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=problem) as info:
        baselines.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_baseline_file_names_the_path(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read baseline"):
        baselines.load(tmp_path / "absent.json")


def test_a_previous_run_and_a_flat_file_still_serve_as_baselines(tmp_path: Path):
    run = sample_run()
    previous = baselines.load(write_run(run, tmp_path / "run.json"))
    key, expectations = previous.select("anything")
    assert key == "*" and set(expectations.expected) == {"MAP-002", "MAP-003", "NORM-001"}
    assert judge(run, expectations).passed
    assert statuses(judge(with_outcomes(run, MAP_001="error"), expectations))["MAP-001"] == "regression"
    assert statuses(judge(with_check(run, "SEC-001", "fail"), expectations))["SEC-001"] == "pending"

    flat = tmp_path / "expected-failures.json"
    flat.write_text(json.dumps({"MAP-002": "refgw issue #3", "MAP-003": "chat fallback, #12"}))
    expectations = baselines.load(flat).select("1.2.3")[1]
    result = judge(with_check(run, "SEC-001", "fail"), expectations)
    # a flat file records no catalogue: every check is adopted, so nothing is pending
    assert statuses(result) == {"MAP-002": "expected", "MAP-003": "expected", "NORM-001": "regression",
                                "SEC-001": "regression"}
    _, converted = baselines.update(baselines.load(flat), run)
    assert converted.versions["1.2.3"].expected["MAP-003"] == "chat fallback, #12"


# The same, offline through the command line.


def test_gate_command_judges_a_stored_run(tmp_path: Path):
    run = sample_run()
    run_path = write_run(run, tmp_path / "run.json")
    baseline = tmp_path / "refgw.expected.json"
    made = gwconf("baseline", "update", str(run_path), "--baseline", str(baseline))
    assert made.returncode == 0, made.stderr
    assert "3 expected failures" in made.stdout and "[1.2.3]" in made.stdout

    same = gwconf("gate", str(run_path), "--baseline", str(baseline), "--ratchet", "--no-pending")
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.startswith("gate passed")

    fixed = write_run(with_outcomes(run, MAP_003="pass"), tmp_path / "fixed.json")
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    lenient = gwconf("gate", str(fixed), "--baseline", str(baseline))
    assert lenient.returncode == 0
    assert f"to tighten the baseline: gwconf baseline update {fixed} --baseline {baseline}" in lenient.stdout
    ratchet = gwconf("gate", str(fixed), "--baseline", str(baseline), "--ratchet", "--summary-file", str(summary))
    assert ratchet.returncode == 1
    assert "expected failure now passes: MAP-003" in ratchet.stdout
    text = summary.read_text()
    assert text.startswith("# earlier step\n## gwconf:")  # appended, not overwritten
    assert "**Gate: ❌ failed**" in text and "**MAP-003**" in text

    tightened = gwconf("baseline", "update", str(fixed), "--baseline", str(baseline))
    assert "dropped (now pass): MAP-003" in tightened.stdout
    assert gwconf("gate", str(fixed), "--baseline", str(baseline), "--ratchet").returncode == 0

    newer = write_run(with_check(run, "SEC-001", "fail"), tmp_path / "newer.json")
    pending = gwconf("gate", str(newer), "--baseline", str(baseline))
    assert pending.returncode == 1  # MAP-003 fails again: it was dropped from the baseline
    assert "new failure: MAP-003" in pending.stdout and "pending: SEC-001" in pending.stdout


def test_baseline_commands_refuse_bad_input_in_one_line(tmp_path: Path):
    run_path = write_run(sample_run(), tmp_path / "run.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "gwconf-baseline/1", "versions": {}}')
    for result in (gwconf("gate", str(run_path), "--baseline", str(broken)),
                   gwconf("baseline", "update", str(run_path), "--baseline", str(broken)),
                   gwconf("baseline", "update", str(run_path), "--baseline", str(run_path)),
                   gwconf("gate", str(broken), "--baseline", str(broken))):
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gwconf: error: "), result.stderr
        assert "Traceback" not in result.stderr
    assert json.loads(run_path.read_text())["format"] == "gwconf-run/1"  # a run.json is never overwritten


# The published baselines, and a mutant of the reference against the reference's.

PUBLISHED = {"litellm": "litellm-1.106.12", "portkey": "portkey-1.15.2", "reference": "reference"}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_audit_passes_its_baseline_and_the_baseline_is_current(name: str):
    path = PROJECT_ROOT / "gateways" / f"{name}.expected.json"
    run_path = PROJECT_ROOT / "reports" / PUBLISHED[name] / "run.json"
    run = json.loads(run_path.read_text())
    committed = baselines.load(path)
    key, expectations = committed.select(run["gateway"].get("version"))
    assert key == (run["gateway"].get("version") or "*")
    assert judge(run, expectations, ratchet=True, pending_binding=True).passed
    # `gwconf baseline update reports/.../run.json` would change nothing: regenerate it after a re-run
    _, again = baselines.update(committed, run)
    assert again.to_dict() == committed.to_dict(), f"run: gwconf baseline update {run_path.relative_to(PROJECT_ROOT)}"
    assert set(expectations.expected) == {c["check_id"] for c in run["checks"] if c["outcome"] in ("fail", "error")}
    result = gwconf("gate", str(run_path), "--baseline", str(path), "--ratchet", "--no-pending")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_reference_mutant_fails_the_gate_against_the_reference_baseline(tmp_path: Path):
    from tests.mutants import MUTANTS
    from tests.test_run import mutant_run

    name = "size-not-converted"
    run_path = mutant_run(name, tmp_path)
    result = gwconf("gate", str(run_path), "--baseline", "gateways/reference.expected.json")
    assert result.returncode == 1, result.stdout + result.stderr
    regressed = {line.split()[2] for line in result.stdout.splitlines() if line.startswith("new failure: ")}
    # Checks newer than the committed baseline's catalogue are pending, not regressions.
    _, expectations = baselines.load(PROJECT_ROOT / "gateways/reference.expected.json").select(None)
    assert regressed == {c for c in MUTANTS[name][1] if expectations.adopted(c)} and "NORM-003" in regressed
    assert result.stdout.startswith(f"gate FAILED against gateways/reference.expected.json [*]: {len(regressed)} "
                                    "regression")


def test_run_refuses_a_baseline_without_a_set_for_the_gateway_version_before_starting(tmp_path: Path):
    baseline = tmp_path / "reference.expected.json"
    _, made = baselines.update(None, sample_run())  # a set for 1.2.3 only; the reference declares no version
    baselines.write(made, baseline)
    result = gwconf("run", "--gateway", "gateways/reference.toml", "--out", str(tmp_path / "out"),
                    "--baseline", str(baseline), "-q")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"gwconf: error: {baseline}: no expectations for refgw version (none declared) (has: 1.2.3); "
        "adopt this version with `gwconf baseline update RUN.json`"]
    assert not (tmp_path / "out").exists(), "nothing ran"


def test_ratchet_and_no_pending_need_a_baseline(tmp_path: Path):
    for flag in ("--ratchet", "--no-pending"):
        result = gwconf("run", "--gateway", "gateways/reference.toml", "--out", str(tmp_path), flag)
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [
            "gwconf: error: --ratchet and --no-pending judge a run against a baseline: pass --baseline too"]
