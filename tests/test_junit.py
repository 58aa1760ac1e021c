"""junit.xml: valid against the JUnit shape CI readers take, with per-testcase properties and the gate's verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Properties, Skipped
from lxml import etree

from harness.report.baseline import update
from harness.report.gate import judge
from harness.report.junit import render_junit
from tests.test_gate import with_check
from tests.test_report_diff import with_outcomes
from tests.test_report_render import sample_run

XSD = etree.XMLSchema(etree.parse(str(Path(__file__).with_name("junit.xsd"))))


def valid(xml: str) -> etree._Element:
    document = etree.fromstring(xml.encode())
    if not XSD.validate(document):
        raise AssertionError(str(XSD.error_log))
    return document


def parsed(xml: str, tmp_path: Path) -> dict:
    path = tmp_path / "junit.xml"
    path.write_text(xml, encoding="utf-8")
    suites = JUnitXml.fromfile(str(path))
    return {"xml": suites, "cases": {c.name.split()[0]: c for s in suites for c in s}}


def properties(case) -> dict[str, str]:
    found = case.child(Properties)
    return {p.name: p.value for p in found} if found is not None else {}


def gated(document: dict, *, ratchet: bool = False, pending_binding: bool = False, base: dict | None = None) -> dict:
    """`document` with the gate section `gwconf run --baseline` adds, judged against `base`'s own baseline."""
    key, made = update(None, base or document)
    copy = json.loads(json.dumps(document))
    copy["gate"] = judge(copy, made.versions[key], baseline="gateways/refgw.expected.json", version_key=key,
                         ratchet=ratchet, pending_binding=pending_binding).to_dict()
    return copy


def test_junit_is_valid_and_every_testcase_carries_level_category_spec_and_outcome(tmp_path: Path):
    run = sample_run()
    valid(render_junit(run))
    cases = parsed(render_junit(run), tmp_path)["cases"]
    for check in run["checks"]:
        assert properties(cases[check["check_id"]]) == {
            "level": check["level"], "category": check["category"], "spec": check["spec"],
            "outcome": check["outcome"]}, check["check_id"]


def test_without_a_gate_failures_fail_and_skips_say_why(tmp_path: Path):
    found = parsed(render_junit(sample_run()), tmp_path)
    kinds = {i: {type(r) for r in c.result} for i, c in found["cases"].items()}
    assert kinds == {"MAP-001": set(), "MAP-002": {Failure}, "MAP-003": {Failure}, "ASYNC-001": set(),
                     "ASYNC-002": {Skipped}, "NORM-001": {Error}}
    skipped = next(iter(found["cases"]["ASYNC-002"].result))
    assert skipped.message == "profile does not claim video.generate"
    xml = found["xml"]
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (6, 2, 1, 1)


def test_with_a_gate_expected_and_pending_failures_are_skipped_with_their_reason(tmp_path: Path):
    run = sample_run()
    newer = with_check(with_outcomes(run, MAP_001="error"), "SEC-001", "fail", "jobs visible across keys")
    xml = render_junit(gated(newer, base=run))
    valid(xml)
    found = parsed(xml, tmp_path)
    cases = found["cases"]
    kinds = {i: {type(r) for r in c.result} for i, c in cases.items()}
    assert kinds["MAP-001"] == {Error}  # the regression
    assert kinds["MAP-003"] == {Skipped} and kinds["SEC-001"] == {Skipped}
    expected = next(iter(cases["MAP-003"].result))
    assert expected.message.startswith("expected: fail in refgw 1.2.3 run run-0001: image model reached chat")
    pending = next(iter(cases["SEC-001"].result))
    assert pending.message.startswith("pending: new check, not in the baseline's catalogue")
    assert "Expected: upstream path matching /image-generation/" in cases["MAP-003"].system_out  # evidence kept
    assert properties(cases["SEC-001"])["gate"] == "pending"
    assert properties(cases["MAP-001"])["gate"] == "regression"
    assert (found["xml"].failures, found["xml"].errors, found["xml"].skipped) == (0, 1, 5)


def test_with_no_pending_a_pending_failure_fails(tmp_path: Path):
    run = sample_run()
    xml = render_junit(gated(with_check(run, "SEC-001", "fail", "x"), base=run, pending_binding=True))
    valid(xml)
    assert {type(r) for r in parsed(xml, tmp_path)["cases"]["SEC-001"].result} == {Failure}


def test_with_ratchet_an_expected_failure_that_passes_fails(tmp_path: Path):
    run = sample_run()
    fixed = with_outcomes(run, MAP_003="pass")
    lenient = parsed(render_junit(gated(fixed, base=run)), tmp_path)["cases"]["MAP-003"]
    assert lenient.result == [] and "tighten the baseline" in lenient.system_out
    xml = render_junit(gated(fixed, base=run, ratchet=True))
    valid(xml)
    failure = next(iter(parsed(xml, tmp_path)["cases"]["MAP-003"].result))
    assert isinstance(failure, Failure) and failure.type == "ratchet"
    assert failure.message.startswith("expected failure now passes")


@pytest.mark.parametrize(("outcome", "extra", "message"), [
    ("blocked", {"blocked_by": "MAP-001"}, "blocked by MAP-001: upstream never reached"),
    ("blocked", {"blocked_by": ["MAP-001", "MAP-002"]}, "blocked by MAP-001, MAP-002: upstream never reached"),
    ("pending", {}, "pending: upstream never reached"),
])
def test_outcomes_that_decide_nothing_on_their_own_are_skipped_with_their_reason(
        tmp_path: Path, outcome: str, extra: dict, message: str):
    run = sample_run()
    check = next(c for c in run["checks"] if c["check_id"] == "MAP-001")
    check.update(outcome=outcome, message="upstream never reached", **extra)
    for document in (run, gated(run, base=sample_run())):
        xml = render_junit(document)
        valid(xml)
        case = parsed(xml, tmp_path)["cases"]["MAP-001"]
        assert [(type(r), r.message) for r in case.result] == [(Skipped, message)]
        assert properties(case)["outcome"] == outcome
        if extra:
            assert properties(case)["blocked_by"].startswith("MAP-001")


@pytest.mark.parametrize(("mangle", "problem"), [
    (lambda x: x.replace("<skipped ", "<failure type=\"x\"/><skipped ", 1), "skipped"),
    (lambda x: x.replace(' failures="', ' failures="-', 1), "failures"),
    (lambda x: x.replace("<testcase classname=", "<testcase class=", 1), "class"),
])
def test_the_schema_catches_a_wrong_shape(mangle, problem: str):
    xml = mangle(render_junit(sample_run()))
    with pytest.raises(AssertionError, match=problem):
        valid(xml)
