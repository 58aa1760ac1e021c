"""Running checks in this process against an ASGI gateway: fast, no pytest, no subprocess, no socket.

This is how the project's tests run the catalogue against the reference gateway and its
mutants: the gateway, the mocks and the egress sink are ASGI apps behind the seam
(harness/gateway/_seam.py). `gwconf run` goes through pytest and real servers instead. Both drive
scenarios and judge through harness.runner._executor.Recorder.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterable
from pathlib import Path

from harness.checks._registry import Check, load_suites
from harness.config._profile import Timeouts
from harness.gateway._session import AppFactory, open_session
from harness.paths import CASSETTES_DIR, SUITES_DIR
from harness.records._outcome import Outcome
from harness.runner._executor import Recorder, save_facts


def run_in_process(profile_path: Path, app_factory: AppFactory,
                   checks: Iterable[Check] | None = None, timeouts: Timeouts | None = None,
                   cassettes: Path = CASSETTES_DIR,
                   template_vars: dict[str, object] | None = None,
                   store: Path | None = None) -> list[Outcome]:
    """The checks' outcomes; with `store`, the recordings are kept there as a run keeps them."""
    selected = list(checks) if checks is not None else list(load_suites(SUITES_DIR).values())
    with tempfile.TemporaryDirectory(prefix="gwconf-") as tmp, open_session(
        profile_path, cassettes, Path(tmp), environ={}, app_factory=app_factory,
        template_vars=template_vars, sockets=False,
    ) as session:
        profile = session.profile
        if timeouts is not None:
            profile = dataclasses.replace(profile, timeouts=timeouts)
        recorder = Recorder(session.env, profile, session.upstreams.captures, store)
        if store is not None:
            save_facts(store, recorder.facts)
        return recorder.run(selected)
