"""The pytest plugin: each registered check in suites/ becomes one pytest item.

`gwconf run` sets up the mocks and the gateway, passes the run environment to pytest (and to
xdist workers) in GWCONF_RUN_ENV, and collects each item's Outcome from the test reports.
An item drives its check's scenario the first time its process needs it and judges the
recording; the items of one scenario share an xdist group, so under `-n` a scenario still
runs once, on one worker.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.checks._registry import Check, catalogue
from harness.gateway._env import HttpCaptures, RunEnv, load_env_profile
from harness.paths import SUITES_DIR
from harness.records._outcome import Outcome
from harness.runner._executor import Recorder

OUTCOME_PROPERTY = "gwconf_outcome"


class CheckNotMet(Exception):
    """Raised by a check item so pytest reports it as failed; carries the Outcome's message."""


class CheckItem(pytest.Item):
    def __init__(self, *, check: Check, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        for word in (check.id, check.category, check.level, check.func.__name__):
            self.keywords[word] = True

    def runtest(self) -> None:
        outcome = recorder(self.config).outcome(self.check)
        self.user_properties.append((OUTCOME_PROPERTY, json.dumps(outcome.to_dict())))
        if outcome.outcome == "skip":
            pytest.skip(outcome.message)
        if outcome.outcome in ("fail", "error"):
            raise CheckNotMet(f"{outcome.outcome.upper()}: {outcome.message}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
                     ) -> str:
        if isinstance(excinfo.value, CheckNotMet):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.check.id} {self.check.title}"


def recorder(config: pytest.Config) -> Recorder:
    """This process's recorder: one per pytest process, so one per xdist worker."""
    cached = getattr(config, "_gwconf_recorder", None)
    if cached is None:
        env = RunEnv.from_environ()
        if env is None:
            raise pytest.UsageError("gwconf suites run under `gwconf run`, which starts the mock "
                                    "upstreams and the gateway (GWCONF_RUN_ENV is not set)")
        cached = Recorder(env, load_env_profile(env), HttpCaptures(env.upstream_urls),
                          Path(env.out_dir) if env.out_dir else None)
        config._gwconf_recorder = cached  # type: ignore[attr-defined]
    return cached


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--gwconf-suites", default=str(SUITES_DIR),
                     help="directory whose modules hold gwconf checks")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    suites = Path(parent.config.getoption("--gwconf-suites")).resolve()
    if (file_path.suffix == ".py" and file_path.parent.resolve() == suites
            and not file_path.name.startswith(("_", "conftest"))):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object
                              ) -> CheckItem | None:
    check = getattr(obj, "__gwconf_check__", None)
    if isinstance(check, Check):
        # Under `--dist loadgroup` an "@group" suffix sends every check of one scenario to the
        # same worker, so the scenario runs once (set here: xdist's own marker hook did not
        # reach items made by this plugin).
        grouped = collector.config.getoption("loadgroup", default=False)
        name = f"{check.id}@{check.scenario}" if grouped else check.id
        return CheckItem.from_parent(collector, name=name, check=check)
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Checks run in catalogue order (by category, MAP first), not in suite-file order: a
    black-box run's live budget goes to the catalogue's first checks, and the fuzz campaign
    (suites/fuzz.py sorts early by name) cannot spend it all before them."""
    order = {check_id: index for index, check_id in enumerate(catalogue())}
    items.sort(key=lambda item: order.get(item.check.id, len(order)) if isinstance(item, CheckItem) else len(order))


class OutcomeCollector:
    """Controller-side plugin: gathers the Outcome of every item, from any xdist worker."""

    def __init__(self, progress: Any = None) -> None:
        self.outcomes: dict[str, Outcome] = {}
        self.progress = progress
        self.collected = 0
        self.ids: list[str] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if session.items:
            self.start([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self.collected:
            self.start(ids)

    def start(self, node_ids: list[str]) -> None:
        self.collected = len(node_ids)
        self.ids = [node_id.rsplit("::", 1)[-1].split("@")[0] for node_id in node_ids]
        if self.progress is not None:
            per_category = Counter(check_id.split("-")[0] for check_id in self.ids)
            self.progress.start_total(self.collected, per_category)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == OUTCOME_PROPERTY:
                outcome = Outcome.from_dict(json.loads(value))
                if outcome.check_id not in self.outcomes:
                    self.outcomes[outcome.check_id] = outcome
                    if self.progress is not None:
                        self.progress.advance(outcome)
