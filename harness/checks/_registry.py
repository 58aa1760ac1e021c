"""The check registry: one decorator carries a check's metadata, the body carries its logic."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

# A check judges (its argument is a harness.checks._judge.Judgement); a scenario drives (a
# harness.scenarios._driver.Driver). Typed loosely here so the registry depends on neither.
CheckFunc = Callable[[Any], None]
ScenarioFunc = Callable[[Any], None]

MUST, SHOULD, MAY = "MUST", "SHOULD", "MAY"
LEVELS = (MUST, SHOULD, MAY)
# What a check observes: what the client got only, or also what reached the provider (captures,
# egress, a fault or file a mock played). Only client-side checks can judge a black box.
CLIENT, UPSTREAM = "client", "upstream"
OBSERVES = (CLIENT, UPSTREAM)
CATEGORIES = {
    "MAP": "model-ID mapping",
    "ASYNC": "async job surfacing",
    "EXTRA": "extra_body pass-through",
    "PARAM": "documented parameters",
    "NORM": "response normalization",
    "ERR": "error surfacing",
    "FALLBACK": "fallback chains",
    "SEC": "isolation",
    "FUZZ": "bad input",
    "AUTH": "client authentication",
    "COST": "usage and cost",
    "VIDEO": "video jobs",
}


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    level: str
    needs: str  # a capability ("image.generate") or a profile feature ("async", "fallback", ...)
    spec: str
    func: CheckFunc
    module: str
    scenario: str = ""  # the name of the scenario whose recording it judges
    observes: str = UPSTREAM  # CLIENT: judged from the client's side alone (black-box runs judge it)

    @property
    def category(self) -> str:
        return self.id.split("-")[0]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "level": self.level,
                "category": self.category, "needs": self.needs, "spec": self.spec,
                "scenario": self.scenario, "observes": self.observes}


@dataclass(frozen=True)
class Scenario:
    """A named traffic program: it runs once per run and records everything it caused."""

    name: str
    title: str
    func: ScenarioFunc
    module: str
    # It spends its time waiting on bounds (an upstream that hangs, a task that never ends), and
    # its checks read neither the egress log nor other scenarios' traffic: an in-process run
    # drives such scenarios side by side, before the others.
    waits: bool = False


REGISTRY: dict[str, Check] = {}
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, *, waits: bool = False) -> Callable[[ScenarioFunc], ScenarioFunc]:
    """Register a scenario. Its docstring says, in one line, what traffic it sends."""

    def register(func: ScenarioFunc) -> ScenarioFunc:
        title = (func.__doc__ or func.__name__).strip().splitlines()[0]
        existing = SCENARIOS.get(name)
        if existing and existing.func.__name__ != func.__name__:
            raise ValueError(f"scenario {name} registered twice: {existing.func.__name__}, {func.__name__}")
        SCENARIOS[name] = Scenario(name, title, func, func.__module__, waits)
        return func

    return register


def check(check_id: str, level: str, *, needs: str, spec: str, scenario: str, observes: str = UPSTREAM
          ) -> Callable[[CheckFunc], CheckFunc]:
    """Register a check that judges `scenario`'s recording. The function's docstring is its
    title: the requirement in one line. `observes=CLIENT` declares that it reads only what the
    client sent and got (no capture, egress, played fault or provider file): the default,
    UPSTREAM, is the safe one, since a black-box run skips such a check rather than misjudge it."""
    if level not in LEVELS:
        raise ValueError(f"{check_id}: level must be one of {LEVELS}")
    if observes not in OBSERVES:
        raise ValueError(f"{check_id}: observes must be one of {OBSERVES}")
    if check_id.split("-")[0] not in CATEGORIES:
        raise ValueError(f"{check_id}: unknown category")

    def register(func: CheckFunc) -> CheckFunc:
        title = (func.__doc__ or func.__name__).strip().splitlines()[0]
        entry = Check(check_id, title, level, needs, spec, func, func.__module__, scenario, observes)
        existing = REGISTRY.get(check_id)
        if existing and existing.func.__name__ != func.__name__:
            raise ValueError(f"{check_id} registered twice: {existing.func.__name__}, {func.__name__}")
        REGISTRY[check_id] = entry
        func.__gwconf_check__ = entry  # type: ignore[attr-defined]
        return func

    return register


def suite_files(suites_dir: Path) -> list[Path]:
    if not suites_dir.is_dir():
        raise ConfigError(f"{suites_dir}: suites directory not found")
    return sorted(p for p in suites_dir.glob("*.py") if p.name not in {"conftest.py", "__init__.py"})


def load_suites(suites_dir: Path) -> dict[str, Check]:
    """Import every suite module so its checks register; return the catalogue in id order."""
    for path in suite_files(suites_dir):
        name = f"gwconf_suites.{path.stem}"
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    unknown = sorted(f"{c.id} -> {c.scenario!r}" for c in REGISTRY.values() if c.scenario not in SCENARIOS)
    if unknown:
        raise ConfigError(f"{suites_dir}: checks judge scenarios nobody registered: {', '.join(unknown)}")
    return catalogue()


def catalogue() -> dict[str, Check]:
    return dict(sorted(REGISTRY.items(), key=lambda kv: (list(CATEGORIES).index(kv[1].category),
                                                         kv[0])))
