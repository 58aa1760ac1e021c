"""Outcome `blocked`: a check whose precondition failed because another check failed is blocked
by it, not counted as a failure of its own; with no such failure in the run it is an ordinary
failure, so a blocked check never hides a defect. The verdict and exit codes do not change."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks._judge import resolve_blocked
from harness.checks._registry import load_suites
from harness.config import _schemas as schemas
from harness.paths import SUITES_DIR
from harness.records._outcome import Outcome
from harness.report.baseline import ExpectationSet
from harness.report.gate import judge
from harness.report.junit import render_junit
from harness.report.matrix import render_matrix_markdown
from harness.report.render import render_reports, with_optional_fields
from harness.report.runjson import build_run, now_iso
from harness.runner._inprocess import run_in_process
from tests.mutants import MUTANTS
from tests.test_mutation import FAST, PROFILE, TEMPLATE

DIGEST = "sha256:" + "0" * 64
GATEWAY = {"name": "canned", "base_url": "http://127.0.0.1:1", "profile": str(PROFILE),
           "profile_digest": DIGEST, "dialect": "jobs"}


def outcome(check_id: str, result: str, candidates: tuple[str, ...] = ()) -> Outcome:
    return Outcome(check_id, check_id, "MUST", check_id.split("-")[0], result, 0.0, message=f"{check_id} says",
                   candidates=list(candidates))


def test_a_failed_precondition_is_blocked_only_by_a_failure_of_the_run() -> None:
    outcomes = resolve_blocked([
        outcome("MAP-001", "fail"), outcome("MAP-005", "pass"),
        outcome("ERR-001", "fail", ("MAP-001",)),  # its routing check failed: blocked
        outcome("ERR-011", "fail", ("MAP-005",)),  # its routing check passed: a failure of its own
        outcome("ASYNC-008", "fail", ("MAP-006",)),  # its routing check did not run: a failure of its own
        outcome("ASYNC-009", "fail", ("ASYNC-008",)),  # blocked by the failure above, itself not blocked
    ])
    by_id = {o.check_id: o for o in outcomes}
    assert (by_id["ERR-001"].outcome, by_id["ERR-001"].blocked_by) == ("blocked", ["MAP-001"])
    assert (by_id["ERR-011"].outcome, by_id["ERR-011"].blocked_by) == ("fail", [])
    assert (by_id["ASYNC-008"].outcome, by_id["ASYNC-008"].message) == ("fail", "ASYNC-008 says")
    assert (by_id["ASYNC-009"].outcome, by_id["ASYNC-009"].blocked_by) == ("blocked", ["ASYNC-008"])
    assert not any(o.candidates for o in outcomes), "candidates are resolved away"


def test_blocked_follows_a_chain_to_its_root_cause() -> None:
    outcomes = resolve_blocked([outcome("MAP-003", "fail"), outcome("ASYNC-002", "fail", ("ASYNC-099",)),
                                outcome("ASYNC-099", "fail", ("MAP-003",))])
    assert {o.check_id: o.blocked_by for o in outcomes}["ASYNC-002"] == ["MAP-003"]


@pytest.fixture(scope="module")
def canned() -> dict:
    """A gateway that never calls a provider: the routing checks fail, the checks that need a
    provider's play are blocked by them."""
    outcomes = run_in_process(PROFILE, MUTANTS["canned-answers-no-provider"][0].factory(), timeouts=FAST,
                              template_vars=TEMPLATE)
    return build_run(outcomes, run_id="test", started_at=now_iso(), finished_at=now_iso(), gateway=GATEWAY,
                     cassettes={"digest": DIGEST, "count": 0})


def test_a_run_reports_blocked_checks_with_their_root_cause(canned: dict) -> None:
    checks = {c["check_id"]: c for c in canned["checks"]}
    assert checks["ERR-001"]["outcome"] == "blocked" and checks["ERR-001"]["blocked_by"] == ["MAP-001"]
    assert checks["ASYNC-002"]["blocked_by"] == ["MAP-001"]  # through MAP-003: no DashScope image arrives at all
    assert checks["MAP-003"]["blocked_by"] == ["MAP-001"]
    assert checks["ASYNC-009"]["blocked_by"] == ["MAP-006"]
    assert checks["ERR-011"]["blocked_by"] == ["MAP-005"]
    assert checks["MAP-001"]["outcome"] == "fail" and checks["MAP-001"]["assertion"] == "MAP-001#1"
    assert schemas.errors("report", canned) == []
    summary = canned["summary"]
    assert summary["verdict"] == "fail"
    assert summary["by_outcome"]["blocked"] == sum(c["outcome"] == "blocked" for c in canned["checks"])
    assert summary["root_causes"]["must"] == sum(c["outcome"] in ("fail", "error") for c in canned["checks"]
                                                 if c["level"] == "MUST")
    assert "ERR-001" in summary["root_causes"]["blocking"]["MAP-001"]


def test_reports_open_with_root_causes_and_list_blocked_checks_apart(canned: dict, tmp_path: Path) -> None:
    render_reports([canned], tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    assert markdown.index("### Root causes") < markdown.index("| category |")
    blocked_by_map_001 = len(canned["summary"]["root_causes"]["blocking"]["MAP-001"])
    assert f"**MAP-001** (MUST) {canned['checks'][0]['title']} — blocks {blocked_by_map_001} (" in markdown
    assert "Blocked (" in markdown and "blocked by MAP-001" in markdown
    html = (tmp_path / "report.html").read_text()
    assert html.index('id="root-causes"') < html.index('aria-label="counts"')
    junit = render_junit(canned)
    assert 'message="blocked by MAP-001: ' in junit


def test_the_gate_does_not_fail_on_blocked_alone(canned: dict) -> None:
    failing = {c["check_id"]: "known" for c in canned["checks"] if c["outcome"] in ("fail", "error")}
    gate = judge(canned, ExpectationSet(failing, None))
    assert gate.passed, gate.lines()


def test_a_precondition_with_no_failing_cause_in_the_run_stays_a_failure() -> None:
    """Judged without its routing check (as `-k ERR-001` would), the precondition is the failure."""
    catalogue = load_suites(SUITES_DIR)
    outcomes = run_in_process(PROFILE, MUTANTS["canned-answers-no-provider"][0].factory(),
                              checks=[catalogue["ERR-001"]], timeouts=FAST, template_vars=TEMPLATE)
    assert [(o.check_id, o.outcome, o.blocked_by) for o in outcomes] == [("ERR-001", "fail", [])]
    assert outcomes[0].message.startswith("The request must reach the provider's endpoint that plays 'error-400'")
    assert outcomes[0].assertion == "ERR-001#1"


def test_the_matrix_shows_root_causes_per_gateway(canned: dict) -> None:
    other = {**canned, "run_id": "other", "gateway": {**canned["gateway"], "name": "other"}}
    matrix = render_matrix_markdown([with_optional_fields(canned), with_optional_fields(other)])
    causes = canned["summary"]["root_causes"]
    assert f"| **root causes** (MUST) | {causes['total']} ({causes['must']}): MAP-001 blocks " in matrix
    assert f"| **blocked** | {canned['summary']['by_outcome']['blocked']} |" in matrix


# Failures that follow from a routing failure, each with the check that explains it: the request
# never reached the provider (MAP-002, EXTRA, NORM, PARAM, the duplicate submission), the fallback
# chain cannot reach a target, and a parameter an EXTRA check already judges (PARAM-006).
EXPLAINED = {
    "MAP-002": ["MAP-001"], "MAP-003": ["MAP-001"], "MAP-012": ["MAP-001"], "ASYNC-013": ["MAP-001"],
    "EXTRA-002": ["MAP-001"], "NORM-003": ["MAP-001"], "NORM-004": ["MAP-001"],
    "PARAM-003": ["MAP-001"], "PARAM-005": ["MAP-004"], "PARAM-007": ["MAP-006"],
    "PARAM-006": ["EXTRA-001", "MAP-009"], "FALLBACK-001": ["MAP-005"], "FALLBACK-005": ["MAP-001", "MAP-005"],
}


def test_failures_that_follow_from_another_check_are_blocked_by_it(canned: dict) -> None:
    checks = {c["check_id"]: c for c in canned["checks"]}
    assert {k: (checks[k]["outcome"], checks[k].get("blocked_by")) for k in EXPLAINED} == {
        k: ("blocked", v) for k, v in EXPLAINED.items()}


@pytest.mark.parametrize(("check_id", "message"), [
    ("EXTRA-002", "`prompt_extend` must reach DashScope as parameters.prompt_extend"),
    ("PARAM-003", "Every documented parameter of DashScope sync image generation must reach dashscope"),
])
def test_an_explained_failure_keeps_its_own_message_when_nothing_explains_it(check_id: str, message: str) -> None:
    """Judged alone, nothing in the run explains it: the check's own assertion is the failure."""
    catalogue = load_suites(SUITES_DIR)
    outcomes = run_in_process(PROFILE, MUTANTS["canned-answers-no-provider"][0].factory(),
                              checks=[catalogue[check_id]], timeouts=FAST, template_vars=TEMPLATE)
    assert [(o.check_id, o.outcome, o.blocked_by) for o in outcomes] == [(check_id, "fail", [])]
    assert outcomes[0].message.startswith(message)
    assert outcomes[0].assertion == f"{check_id}#1"


@pytest.mark.parametrize(("mutant", "explained"), [
    # every vendor field dropped the same way: one behaviour, reported by the first field it drops
    ("vendor-parameters-dropped", {"EXTRA-003": ["EXTRA-002"], "EXTRA-004": ["EXTRA-002"],
                                   "EXTRA-005": ["EXTRA-002"], "PARAM-003": ["EXTRA-002"]}),
    # every bad credential served with the very same answer: reported by the first one
    ("serves-anyone-with-operator-key", {f"AUTH-00{n}": ["AUTH-001"] for n in range(2, 7)}),
])
def test_the_same_behaviour_on_sibling_inputs_is_reported_once(mutant: str, explained: dict) -> None:
    outcomes = {o.check_id: o for o in run_in_process(PROFILE, MUTANTS[mutant][0].factory(), timeouts=FAST,
                                                      template_vars=TEMPLATE)}
    assert {k: (outcomes[k].outcome, outcomes[k].blocked_by) for k in explained} == {
        k: ("blocked", v) for k, v in explained.items()}
    first = explained[next(iter(explained))][0]
    assert outcomes[first].outcome == "fail"


def test_sibling_inputs_answered_differently_stay_failures_of_their_own() -> None:
    """Unknown credentials passed upstream get the provider's answers, not one canned answer."""
    outcomes = run_in_process(PROFILE, MUTANTS["passes-unknown-credentials-upstream"][0].factory(), timeouts=FAST,
                              template_vars=TEMPLATE)
    assert {o.check_id: o.outcome for o in outcomes if o.check_id in ("AUTH-003", "AUTH-004", "AUTH-005")} == {
        "AUTH-003": "fail", "AUTH-004": "fail", "AUTH-005": "fail"}
