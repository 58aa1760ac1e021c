"""The mutation proof: the reference gateway passes every check, and each mutant fails exactly
the checks that see its defect. A check no mutant can fail is not finished, and neither is an
assertion: every `t.expect`/`t.fail` call site of every check (numbered as harness.checks._assertions
numbers them, "MAP-004#3") must be the one that fails for at least one mutant."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness.checks._assertions import assertion_ids, sites
from harness.checks._registry import load_suites
from harness.config._profile import Timeouts
from harness.paths import GATEWAYS_DIR, SUITES_DIR
from harness.records._outcome import Outcome
from harness.reference import build_app
from harness.runner._inprocess import run_in_process
from tests.conftest import session_dir
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


KILLS = ("fail", "warn", "blocked")
# How long the per-assertion table waits for mutant tests still running on another xdist worker
# before it runs the missing mutants itself.
OTHER_WORKER_BOUND = 240.0
SYNC_PREFIX = "sync:"  # a blocked check's failing assertion is its precondition
# Assertions no gateway behaviour can reach, with the reason. Keep empty: an assertion nothing can
# trip is removed or merged into one that can, not listed here.
EXEMPT: dict[str, str] = {}


def not_passed(outcomes: list) -> dict[str, str]:
    return {o.check_id: f"{o.outcome}: {o.message}" for o in outcomes if o.outcome not in ("pass", "skip")}


@pytest.fixture(scope="session")
def kills_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each mutant's failing assertions are kept for this session, shared by xdist workers."""
    folder = session_dir(tmp_path_factory) / "mutant-kills"
    folder.mkdir(exist_ok=True)
    return folder


def keep_kills(folder: Path, name: str, outcomes: list[Outcome]) -> None:
    kills = sorted({o.assertion or f"{o.check_id}#?" for o in outcomes if o.outcome in KILLS})
    temporary = folder / f".{name}.{os.getpid()}"
    temporary.write_text(json.dumps(kills))
    temporary.replace(folder / f"{name}.json")


def kills_of(folder: Path, name: str, selected: bool = False, deadline: float = 0.0) -> list[str]:
    """The assertions `name` fails ("sync:" + name: through a sync gateway): as its test recorded
    them, or from a run of its own when that test was not `selected` in this session. A selected
    test may still be running on another xdist worker: wait for it (until `deadline`) rather than
    run the mutant twice."""
    path = folder / f"{name}.json"
    while selected and not path.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    if not path.is_file():
        mutant, _ = MUTANTS[name.removeprefix(SYNC_PREFIX)]
        profile = write_sync_profile(folder / f"profile-{os.getpid()}") if name.startswith(SYNC_PREFIX) else PROFILE
        keep_kills(folder, name, run_in_process(profile, mutant.factory(), timeouts=FAST, template_vars=TEMPLATE))
    return json.loads(path.read_text())


def kill_table(killers: dict[str, list[str]]) -> str:
    width = max(map(len, killers), default=10)
    lines = [f"{'assertion':<{width}}  killed by"]
    for aid, names in killers.items():
        shown = ", ".join(names) if names else f"exempt: {EXEMPT[aid]}" if aid in EXEMPT else "-- NOT KILLED --"
        lines.append(f"{aid:<{width}}  {shown}")
    killed = sum(bool(n) for n in killers.values())
    lines.append(f"{killed}/{len(killers)} assertions killed ({killed / max(len(killers), 1):.0%}), "
                 f"{len(EXEMPT)} exempt, by {len(MUTANTS)} mutants ({len(SYNC_MUTANTS)} also through a sync gateway)")
    return "\n".join(lines)


def test_reference_gateway_passes_every_check() -> None:
    outcomes = run_in_process(PROFILE, lambda config: build_app(config).app, timeouts=FAST, template_vars=TEMPLATE)
    assert not_passed(outcomes) == {}
    assert {o.check_id for o in outcomes} == set(load_suites(SUITES_DIR))
    assert not [o.check_id for o in outcomes if o.outcome == "skip"], "the reference profile claims everything"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_fails_exactly_its_checks(name: str, kills_dir: Path) -> None:
    mutant, expected = MUTANTS[name]
    outcomes = run_in_process(Path(PROFILE), mutant.factory(), timeouts=FAST, template_vars=TEMPLATE)
    keep_kills(kills_dir, name, outcomes)
    failed = not_passed(outcomes)
    errors = {k: v for k, v in failed.items() if v.startswith("error")}
    assert not errors, f"harness errors instead of verdicts: {errors}"
    assert set(failed) == expected, (
        f"unexpected: {sorted(set(failed) - expected)}; missed: {sorted(expected - set(failed))}")


def test_every_registered_check_is_failed_by_some_mutant() -> None:
    covered = set().union(*(expected for _, expected in MUTANTS.values()))
    uncovered = set(load_suites(SUITES_DIR)) - covered
    assert not uncovered, f"checks no mutant can fail: {sorted(uncovered)}"


def selected_mutant_tests(request: pytest.FixtureRequest) -> set[str]:
    """The mutant names ("sync:" + name) whose own test this session runs, on any worker."""
    found = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "name" in callspec.params and item.module is request.module:
            sync = item.originalname == "test_mutant_fails_the_same_checks_through_a_sync_gateway"
            found.add((SYNC_PREFIX if sync else "") + callspec.params["name"])
    return found


def test_every_assertion_is_killed_by_some_mutant(kills_dir: Path, tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    """Prints the table (`-s`) and keeps it in kill-table.txt: which mutants kill which assertion."""
    catalogue = load_suites(SUITES_DIR)
    killers: dict[str, list[str]] = {aid: [] for c in catalogue.values() for aid in assertion_ids(c.id, c.func)}
    stray: dict[str, list[str]] = {}
    selected = selected_mutant_tests(request)
    deadline = time.monotonic() + OTHER_WORKER_BOUND
    for name in [*sorted(MUTANTS), *(SYNC_PREFIX + n for n in sorted(SYNC_MUTANTS))]:
        for aid in kills_of(kills_dir, name, name in selected, deadline):
            (killers[aid] if aid in killers else stray.setdefault(aid, [])).append(name)
    table = kill_table(killers)
    (tmp_path / "kill-table.txt").write_text(table + "\n")
    print("\n" + table)
    assert not [c.id for c in catalogue.values() if not sites(c.func)], "checks with no numbered assertion"
    assert not stray, f"failures no numbered assertion explains (a check failed outside its t.expect calls): {stray}"
    unkilled = [aid for aid, names in killers.items() if not names and aid not in EXEMPT]
    assert not unkilled, f"assertions no mutant kills: {unkilled}\n{table}"
    assert not [aid for aid in EXEMPT if killers.get(aid)], "an exempt assertion is killed: drop its exemption"


def test_catalogue_is_large_enough() -> None:
    assert len(load_suites(SUITES_DIR)) >= 25


# The same defects must show through a sync gateway, where "200 with no images" is the usual
# disguise of a failure (both audited gateways are sync).
SYNC_MUTANTS = {
    "failed-task-as-200-empty": {"ASYNC-003", "ASYNC-004", "ASYNC-008", "ASYNC-012", "VIDEO-008"},
    "never-finishing-task-hangs": {"ASYNC-005", "VIDEO-009"},
    # A sync gateway's answer is the submit's answer: ASYNC-001 judges its shape (the jobs dialect
    # judges the job instead).
    "raw-dashscope-shape": {"ASYNC-001", "ASYNC-002", "ASYNC-007", "ASYNC-010", "FALLBACK-001", "FALLBACK-002",
                            "FALLBACK-003", "NORM-001", "NORM-002", "NORM-004", "NORM-005", "NORM-006", "NORM-007",
                            "ASYNC-013", "COST-002", "COST-004", "COST-005", "COST-007"},
    "200-on-upstream-500": {"ASYNC-003", "ASYNC-005", "ASYNC-012", "ERR-005", "ERR-006",
                            "ERR-007", "ERR-008", "ERR-009", "ERR-010", "ERR-012", "ERR-013", "FALLBACK-002",
                            "FALLBACK-003", "FALLBACK-004", "FALLBACK-005"},
}


def write_sync_profile(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = PROFILE.read_text().replace('dialect = "jobs"', 'dialect = "sync"')
    (folder / "reference.toml").write_text(text)
    (folder / "reference.config.json.j2").write_text((GATEWAYS_DIR / "reference.config.json.j2").read_text())
    return folder / "reference.toml"


@pytest.fixture(scope="module")
def sync_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sync_profile(tmp_path_factory.mktemp("sync"))


@pytest.mark.parametrize("name", sorted(SYNC_MUTANTS))
def test_mutant_fails_the_same_checks_through_a_sync_gateway(name: str, sync_profile: Path, kills_dir: Path) -> None:
    mutant, _ = MUTANTS[name]
    outcomes = run_in_process(sync_profile, mutant.factory(), timeouts=FAST, template_vars=TEMPLATE)
    keep_kills(kills_dir, SYNC_PREFIX + name, outcomes)
    assert set(not_passed(outcomes)) == SYNC_MUTANTS[name]


def test_a_process_stall_shorter_than_the_upstream_bound_changes_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock stalls (as in a garbage collection) while the reference polls the ERR-015 task:
    the verdict must still be the reference's pass, not an upstream timeout."""
    import time

    from starlette.types import Receive, Scope, Send

    from harness.upstream.engine import MockUpstream

    replay = MockUpstream.replay

    async def stalling(self: MockUpstream, scope: Scope, receive: Receive, send: Send) -> None:
        if "/api/v1/tasks/" in scope["path"]:
            time.sleep(0.6)  # blocks the mock's event loop, like a stop-the-world pause
        await replay(self, scope, receive, send)

    monkeypatch.setattr(MockUpstream, "replay", stalling)
    check = load_suites(SUITES_DIR)["ERR-015"]
    outcomes = run_in_process(PROFILE, lambda config: build_app(config).app, checks=[check], timeouts=FAST,
                              template_vars=TEMPLATE)
    assert not_passed(outcomes) == {}
