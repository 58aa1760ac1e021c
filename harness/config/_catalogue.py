"""A provider's dated model catalogue: its models, their routes, request rules and lifecycle.

One `catalogue.yaml` per provider sits beside that provider's cassettes. Its date says which
requirement set a run's verdicts were judged against; a retired model (or route) carries the
provider's own answer for it, so a mock never serves it as live.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.config import _schemas as schemas
from harness.config._cassette import CATALOGUE_FILE, file_stamp
from harness.errors import ConfigError


@dataclass(frozen=True)
class Answer:
    """What the provider answers for something it has retired."""

    status: int
    body: dict[str, Any]
    note: str = ""


@dataclass(frozen=True)
class Unconfirmed:
    """A rule the docs conflict on or are silent about: a body outside it is accepted, with a note."""

    schema: str
    note: str


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    capability: str
    request: str | None = None  # schema id; None for a retired model's former routes
    unconfirmed: tuple[Unconfirmed, ...] = ()


@dataclass(frozen=True)
class Lifecycle:
    status: str  # "available" | "retired"
    date: str | None = None  # the retirement date
    shutdown: str | None = None  # an announced future retirement of an available model
    answer: Answer | None = None

    @property
    def retired(self) -> bool:
        return self.status == "retired"


@dataclass(frozen=True)
class Model:
    id: str
    lifecycle: Lifecycle
    endpoints: tuple[Endpoint, ...]

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(e.capability for e in self.endpoints)

    def endpoint(self, method: str, path: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.method == method and e.path == path), None)


@dataclass(frozen=True)
class RetiredRoute:
    prefix: str
    date: str
    answer: Answer


@dataclass(frozen=True)
class Catalogue:
    provider: str
    date: str
    path: Path
    models: dict[str, Model]
    retired_routes: tuple[RetiredRoute, ...] = ()
    defaults: dict[str, str] = field(default_factory=dict)  # "METHOD /path" -> model when omitted

    def model(self, model_id: str | None) -> Model | None:
        return self.models.get(model_id) if isinstance(model_id, str) else None

    def retired_route(self, path: str) -> RetiredRoute | None:
        for route in self.retired_routes:
            if path == route.prefix or path.startswith(route.prefix + "/"):
                return route
        return None

    def default_model(self, method: str, path: str) -> str | None:
        return self.defaults.get(f"{method} {path}")

    @property
    def available(self) -> frozenset[str]:
        return frozenset(m.id for m in self.models.values() if not m.lifecycle.retired)

    @property
    def retired(self) -> frozenset[str]:
        return frozenset(m.id for m in self.models.values() if m.lifecycle.retired)


def _answer(data: dict[str, Any] | None) -> Answer | None:
    if not data:
        return None
    return Answer(int(data["status"]), dict(data["body"]), data.get("note", ""))


def _endpoint(data: dict[str, Any]) -> Endpoint:
    method, path = data["route"].split(" ", 1)
    return Endpoint(method, path, data["capability"], data.get("request"),
                    tuple(Unconfirmed(u["schema"], u["note"]) for u in data.get("unconfirmed") or ()))


def load_catalogue(path: Path) -> Catalogue:
    """One provider's catalogue; every problem becomes a ConfigError naming the file. Parsed once
    per process while the file stays unchanged (every mock of every run reads it)."""
    return _load_catalogue(path, file_stamp(path))


@functools.lru_cache(maxsize=64)
def _load_catalogue(path: Path, stamp: tuple[int, int]) -> Catalogue:
    try:
        # libyaml's loader when PyYAML has it: every mock of every run reads its catalogue.
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read catalogue ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({getattr(exc, 'problem', exc)})") from exc
    problems = schemas.errors("catalogue", document)
    if problems:
        raise ConfigError(f"{path}: {problems[0]}")
    data = document["catalogue"]
    models = {
        model_id: Model(
            model_id,
            Lifecycle(m["lifecycle"]["status"], m["lifecycle"].get("date"), m["lifecycle"].get("shutdown"),
                      _answer(m["lifecycle"].get("answer"))),
            tuple(_endpoint(e) for e in m["endpoints"]),
        )
        for model_id, m in data["models"].items()
    }
    routes = tuple(RetiredRoute(r["prefix"], r["date"], _answer(r["answer"]))  # type: ignore[arg-type]
                   for r in data.get("retired_routes") or ())
    return Catalogue(data["provider"], str(data["date"]), path, models, routes, dict(data.get("defaults") or {}))


def catalogue_files(root: Path) -> list[Path]:
    return sorted(root.rglob(CATALOGUE_FILE))


def load_catalogues(root: Path) -> dict[str, Catalogue]:
    """Every provider catalogue under a cassette directory, by provider."""
    found: dict[str, Catalogue] = {}
    for path in catalogue_files(root):
        catalogue = load_catalogue(path)
        if catalogue.provider in found:
            raise ConfigError(f"{path}: a second catalogue for {catalogue.provider} "
                              f"(first: {found[catalogue.provider].path})")
        found[catalogue.provider] = catalogue
    return found


def catalogue_for(provider: str, cassette_paths: Iterable[Path]) -> Catalogue | None:
    """The catalogue beside a provider's cassettes, if there is one."""
    for folder in sorted({p.parent for p in cassette_paths}):
        candidate = folder / CATALOGUE_FILE
        if candidate.is_file():
            catalogue = load_catalogue(candidate)
            if catalogue.provider == provider:
                return catalogue
    return None


def catalogue_date(root: Path) -> str | None:
    """The date of the requirement set a run is judged against: the oldest provider catalogue."""
    dates = sorted(c.date for c in load_catalogues(root).values())
    return dates[0] if dates else None
