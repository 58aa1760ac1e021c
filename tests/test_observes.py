"""What each check observes: the client side only, or the upstream too (`observes=` on @check).

A black-box run has no mocks, so it judges only the checks declared client-side. The proof that
the declarations are honest: the recordings of a reference run, with everything the mocks saw
taken out (upstream captures, strays, egress, the provider keys and mock URLs of the run facts)
and judged as a black-box run judges them, give every client-side check the verdict the whole
recording gave it, and every other check `skip` "needs upstream observation". A client-side
check that reads the upstream, a mock's play or a mock's file errors there (the Judgement refuses
the read), so a wrong declaration cannot pass this test; the second test shows that it does not.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.checks._judge import UNOBSERVED
from harness.checks._registry import CLIENT, OBSERVES, UPSTREAM, Check, check, load_suites
from harness.cli import app
from harness.config._profile import BLACK_BOX, load_profile
from harness.paths import SUITES_DIR
from harness.records._outcome import Outcome
from harness.records._recording import Recording
from harness.reference import build_app
from harness.runner._executor import judge_recordings, load_recordings
from harness.runner._inprocess import run_in_process
from tests.test_mutation import FAST, PROFILE, TEMPLATE


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Outcome], Path]:
    """The whole catalogue against the reference, in process, its recordings kept on disk."""
    out = tmp_path_factory.mktemp("reference")
    outcomes = run_in_process(PROFILE, lambda config: build_app(config).app, timeouts=FAST,
                              template_vars=TEMPLATE, store=out)
    return {o.check_id: o for o in outcomes}, out


def without_upstream(recording: Recording) -> Recording:
    """The recording as a black box would have made it: the client's side only."""
    recording = Recording.from_dict(recording.to_dict())
    recording.stray, recording.egress = [], []
    for step in recording.steps:
        step.upstream = []
    return recording


def judged_as_black_box(checks: Iterable[Check], out: Path) -> dict[str, Outcome]:
    facts, recordings = load_recordings(out)
    facts = dataclasses.replace(facts, upstream_urls={}, provider_key_marks=[], provider_key_names={})
    profile = dataclasses.replace(load_profile(PROFILE), mode=BLACK_BOX, timeouts=FAST)
    blind = {name: without_upstream(r) for name, r in recordings.items()}
    return {o.check_id: o for o in judge_recordings(checks, blind, profile, facts)}


def misjudged(checks: Iterable[Check], normal: dict[str, Outcome], blind: dict[str, Outcome]) -> list[str]:
    """Every check whose black-box verdict is not what its declaration promises."""
    wrong = []
    for item in checks:
        got, want = blind[item.id], normal[item.id]
        if item.observes == CLIENT and (got.outcome, got.message) != (want.outcome, want.message):
            wrong.append(f"{item.id}: {want.outcome} with the upstream, {got.outcome} without ({got.message[:160]})")
        if item.observes != CLIENT and (got.outcome, got.message) != ("skip", UNOBSERVED):
            wrong.append(f"{item.id}: {got.outcome} {got.message[:160]}")
    return wrong


def test_client_side_checks_judge_the_same_without_the_upstream(reference_run):
    normal, out = reference_run
    checks = list(load_suites(SUITES_DIR).values())
    client = [c.id for c in checks if c.observes == CLIENT]

    assert misjudged(checks, normal, judged_as_black_box(checks, out)) == []
    # judged for real: the reference passes every client-side check it can be asked
    assert len(client) >= 10 and all(normal[c].outcome == "pass" for c in client)


def test_a_check_declared_client_side_wrongly_is_caught(reference_run):
    normal, out = reference_run
    catalogue = load_suites(SUITES_DIR)
    # MAP-008 passes on no capture at all (an unknown model must reach no provider), NORM-002
    # compares with the mock's file, ERR-001 needs the mock to play a 400: none is client-side.
    wrong = [dataclasses.replace(catalogue[c], observes=CLIENT) for c in ("MAP-008", "NORM-002", "ERR-001")]

    found = misjudged(wrong, normal, judged_as_black_box(wrong, out))

    assert [line.split(":")[0] for line in found] == ["MAP-008", "NORM-002", "ERR-001"]
    assert all("is declared client-side but reads" in line for line in found)


def test_every_check_declares_what_it_observes():
    catalogue = load_suites(SUITES_DIR)
    assert {c.observes for c in catalogue.values()} == set(OBSERVES)
    assert check.__kwdefaults__["observes"] == UPSTREAM  # the safe default: a black box skips it
    with pytest.raises(ValueError, match="observes must be one of"):
        check("MAP-999", "MUST", needs="any", spec="", scenario="every-alias", observes="both")
    listed = json.loads(CliRunner().invoke(app, ["checks", "--json"]).output)
    assert {c["id"]: c["observes"] for c in listed} == {c.id: c.observes for c in catalogue.values()}
