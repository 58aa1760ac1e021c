"""The mutation proof: the reference gateway passes every check, and each mutant fails exactly
the checks that see its defect. A check no mutant can fail is not finished."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks._registry import load_suites
from harness.config._profile import Timeouts
from harness.paths import GATEWAYS_DIR, SUITES_DIR
from harness.reference import build_app
from harness.runner._inprocess import run_in_process
from tests.mutants import MUTANTS

PROFILE = GATEWAYS_DIR / "reference.toml"
# Small bounds: a mutant that hangs costs seconds, not minutes. In-process (no sockets), an answer
# takes milliseconds, so polls can be close together.
FAST = Timeouts(request=2, job=3, poll_interval=0.005, startup=10)
# The reference gateway's own bounds, inside FAST: an upstream that hangs costs 1 s. Not less:
# the whole test process stalls now and then (a gen-2 garbage collection took 0.38 s here, more
# under the full suite's load), and a stall longer than this bound turns a provider's answer into
# the gateway's own 504, so a check fails that no mutant broke (ERR-015 did, once).
UPSTREAM_TIMEOUT = 1.0
TEMPLATE = {"upstream_timeout": UPSTREAM_TIMEOUT, "task_max_polls": 100, "task_poll_interval": 0.002}


def not_passed(outcomes: list) -> dict[str, str]:
    return {o.check_id: f"{o.outcome}: {o.message}" for o in outcomes if o.outcome not in ("pass", "skip")}


def test_reference_gateway_passes_every_check() -> None:
    outcomes = run_in_process(PROFILE, lambda config: build_app(config).app, timeouts=FAST, template_vars=TEMPLATE)
    assert not_passed(outcomes) == {}
    assert {o.check_id for o in outcomes} == set(load_suites(SUITES_DIR))
    assert not [o.check_id for o in outcomes if o.outcome == "skip"], "the reference profile claims everything"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_fails_exactly_its_checks(name: str) -> None:
    mutant, expected = MUTANTS[name]
    outcomes = run_in_process(Path(PROFILE), mutant.factory(), timeouts=FAST, template_vars=TEMPLATE)
    failed = not_passed(outcomes)
    errors = {k: v for k, v in failed.items() if v.startswith("error")}
    assert not errors, f"harness errors instead of verdicts: {errors}"
    assert set(failed) == expected, (
        f"unexpected: {sorted(set(failed) - expected)}; missed: {sorted(expected - set(failed))}")


def test_every_registered_check_is_failed_by_some_mutant() -> None:
    covered = set().union(*(expected for _, expected in MUTANTS.values()))
    uncovered = set(load_suites(SUITES_DIR)) - covered
    assert not uncovered, f"checks no mutant can fail: {sorted(uncovered)}"


def test_catalogue_is_large_enough() -> None:
    assert len(load_suites(SUITES_DIR)) >= 25


# The same defects must show through a sync gateway, where "200 with no images" is the usual
# disguise of a failure (both audited gateways are sync).
SYNC_MUTANTS = {
    "failed-task-as-200-empty": {"ASYNC-003", "ASYNC-004", "ASYNC-008", "ASYNC-012"},
    "never-finishing-task-hangs": {"ASYNC-005"},
    "200-on-upstream-500": {"ASYNC-003", "ASYNC-004", "ASYNC-005", "ASYNC-008", "ASYNC-012", "ERR-005", "ERR-006",
                            "ERR-007", "ERR-008", "ERR-009", "ERR-010", "ERR-012", "ERR-013", "FALLBACK-002",
                            "FALLBACK-003", "FALLBACK-004", "FALLBACK-005"},
}


@pytest.fixture(scope="module")
def sync_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sync")
    text = PROFILE.read_text().replace('dialect = "jobs"', 'dialect = "sync"')
    (folder / "reference.toml").write_text(text)
    (folder / "reference.config.json.j2").write_text((GATEWAYS_DIR / "reference.config.json.j2").read_text())
    return folder / "reference.toml"


@pytest.mark.parametrize("name", sorted(SYNC_MUTANTS))
def test_mutant_fails_the_same_checks_through_a_sync_gateway(name: str, sync_profile: Path) -> None:
    mutant, _ = MUTANTS[name]
    outcomes = run_in_process(sync_profile, mutant.factory(), timeouts=FAST, template_vars=TEMPLATE)
    assert set(not_passed(outcomes)) == SYNC_MUTANTS[name]


def test_a_process_stall_shorter_than_the_upstream_bound_changes_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock stalls (as in a garbage collection) while the reference polls the ERR-015 task:
    the verdict must still be the reference's pass, not an upstream timeout."""
    import time

    from harness.upstream.engine import MockUpstream

    replay = MockUpstream.replay

    async def stalling(self: MockUpstream, request: object) -> object:
        if "/api/v1/tasks/" in request.url.path:  # type: ignore[attr-defined]
            time.sleep(0.6)  # blocks the mock's event loop, like a stop-the-world pause
        return await replay(self, request)

    monkeypatch.setattr(MockUpstream, "replay", stalling)
    check = load_suites(SUITES_DIR)["ERR-015"]
    outcomes = run_in_process(PROFILE, lambda config: build_app(config).app, checks=[check], timeouts=FAST,
                              template_vars=TEMPLATE)
    assert not_passed(outcomes) == {}
