"""Shared fixtures of the project's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.config._cassette import load_cassettes
from harness.paths import CASSETTES_DIR
from harness.upstream import UpstreamSet, start_upstreams

FILES_DIR = CASSETTES_DIR / "files"


@pytest.fixture(scope="session")
def cassettes():
    return load_cassettes(CASSETTES_DIR)


@pytest.fixture(scope="session")
def upstreams(cassettes) -> Iterator[UpstreamSet]:
    """The three mock upstreams on loopback, shared by the whole session (xdist: per worker)."""
    with start_upstreams(cassettes, FILES_DIR) as running:
        yield running


# Collected last: the per-assertion table reads what every mutant test of the session recorded,
# so on each xdist worker it must come after that worker's own mutant tests.
LAST = "test_every_assertion_is_killed_by_some_mutant"
# Collected first: tests that spend tens of seconds waiting (a real gateway starting, a gateway or
# mutant that hangs until each bound), so that under xdist they overlap the rest of the run
# instead of being its tail.
LONG_WAITS = ("test_gateways_integration.py", "hung_after_health", "html_200_gateway", "[task-job-reads-hang]",
              "[video-store-hangs]", "[job-id-dropped]", "[hangs-on-provider-errors]")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: 1 if item.name == LAST else -1 if any(w in item.nodeid for w in LONG_WAITS) else 0)
