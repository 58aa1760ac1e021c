"""Shared fixtures of the project's own tests."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.config._cassette import load_cassettes
from harness.paths import CASSETTES_DIR
from harness.upstream import UpstreamSet, start_upstreams

FILES_DIR = CASSETTES_DIR / "files"


@pytest.fixture(scope="session")
def cassettes():
    return load_cassettes(CASSETTES_DIR)


def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temp folder of the whole test session: under xdist, the one every worker's sits in."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_session(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """A folder `make` fills once per test session, shared by every xdist worker: a whole-catalogue
    run that tests on several workers read would otherwise cost each of those workers its CPU."""
    root = session_dir(tmp_path_factory)
    folder, done = root / name, root / f"{name}.done"
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if `make` fails
        if not done.exists():
            folder.mkdir(exist_ok=True)
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def upstreams(cassettes) -> Iterator[UpstreamSet]:
    """The three mock upstreams on loopback, shared by the whole session (xdist: per worker)."""
    with start_upstreams(cassettes, FILES_DIR) as running:
        yield running


# Collected last: the per-assertion table reads what every mutant test of the session recorded,
# so on each xdist worker it must come after that worker's own mutant tests.
LAST = "test_every_assertion_is_killed_by_some_mutant"
# Tests that spend tens of seconds waiting (a real gateway starting, a gateway or mutant that hangs
# until each bound): each xdist worker starts with its share of them, so that they overlap the rest
# of the run instead of queueing on one worker and becoming its tail.
LONG_WAITS = ("test_litellm_routes_dashscope", "[task-job-reads-hang]", "html_200_gateway", "hung_after_health",
              "[job-id-dropped]", "[video-store-hangs]", "[hangs-on-provider-errors]", "test_litellm_as_deployed",
              "test_portkey_routes", "[never-finishing-task-hangs]", "[exhausted-chain-hangs]")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    long_waits = sorted((item for item in items if any(w in item.nodeid for w in LONG_WAITS)),
                        key=lambda item: next(i for i, w in enumerate(LONG_WAITS) if w in item.nodeid))
    last = [item for item in items if item.name == LAST]
    rest = [item for item in items if item not in long_waits and item not in last]
    items[:] = [*spread(long_waits, rest, workers, len(items)), *last]


def spread(long_waits: list[pytest.Item], rest: list[pytest.Item], workers: int, total: int) -> list[pytest.Item]:
    """xdist's load scheduling first hands each worker a chunk of consecutive tests, total // workers
    // 4 of them (xdist/scheduler/load.py): the long waits go to the heads of those chunks, longest
    first and one worker after another. Every worker computes the same order, as xdist requires."""
    if workers <= 1:
        return [*long_waits, *rest]
    chunk = max(total // workers // 4, 2)
    ordered: list[pytest.Item] = []
    for worker in range(workers):
        heads = long_waits[worker::workers]
        ordered += heads
        take = max(chunk - len(heads), 0)
        ordered += rest[:take]
        rest = rest[take:]
    return [*ordered, *rest]
