"""Baselines: the failures CI accepts for a gateway, and how a run tightens them.

A baseline file (``gateways/NAME.expected.json``, ``schemas/baseline.schema.json``) holds one
expectation set per gateway version. Each set records the catalogue it was made with (the check
ids it adopted, and their digest) and the expected failures with a reason each::

    {
      "format": "gwconf-baseline/1",
      "gateway": "litellm",
      "profile": "gateways/litellm.toml",
      "versions": {
        "1.106.12": {
          "source": {"run_id": "...", "started_at": "...", "harness_version": "0.1.0"},
          "catalogue": {"digest": "sha256:...", "checks": ["ASYNC-001", "..."]},
          "expected": {"MAP-003": "wan2.2-t2i-flash goes to the sync endpoint"}
        }
      }
    }

A run picks the set of its gateway's version (the profile's ``version`` key, which run.json
records); ``*`` serves any version without a set of its own, and a run whose gateway declares
no version. Two older forms still load as a single ``*`` set: a previous run.json (its fail and
error checks are expected, its checks are the catalogue) and a flat ``{"CHECK-ID": "reason"}``
object, which records no catalogue, so every check counts as adopted.

``update`` is the ratchet: expectations a run shows passing are dropped, the reasons of those
that remain are kept, and the run's checks are adopted into the catalogue.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.config import _schemas as schemas
from harness.errors import ConfigError
from harness.report.runjson import FORMAT as RUN_FORMAT
from harness.report.runjson import read_json

FORMAT = "gwconf-baseline/1"
ANY_VERSION = "*"
BAD = frozenset({"fail", "error"})  # outcomes a baseline may expect
PASSING = frozenset({"pass", "warn"})  # outcomes that show an expected failure is fixed
CHECK_ID = re.compile(r"^[A-Z]+-\d{3}$")
REASON_LIMIT = 300  # characters of a run's message kept in a new expectation's reason


def catalogue_digest(check_ids: frozenset[str] | set[str]) -> str:
    return "sha256:" + hashlib.sha256("\n".join(sorted(check_ids)).encode()).hexdigest()


@dataclass(frozen=True)
class ExpectationSet:
    """The expected failures of one gateway version, against the catalogue they were made with."""

    expected: dict[str, str]
    catalogue: frozenset[str] | None  # None: a flat file with no catalogue; every check is adopted
    source: dict[str, str] = field(default_factory=dict)

    def adopted(self, check_id: str) -> bool:
        return self.catalogue is None or check_id in self.catalogue

    def to_dict(self) -> dict[str, Any]:
        if self.catalogue is None:
            raise ValueError("a flat expected-failures set has no catalogue to write")
        checks = sorted(self.catalogue)
        return {"source": dict(self.source),
                "catalogue": {"digest": catalogue_digest(set(checks)), "checks": checks},
                "expected": dict(sorted(self.expected.items()))}


@dataclass(frozen=True)
class Baseline:
    """A baseline file: gateway version -> ExpectationSet."""

    versions: dict[str, ExpectationSet]
    path: str = ""
    gateway: str = ""
    profile: str = ""
    is_run: bool = False  # read from a previous run.json, not from a baseline file

    def key_for(self, version: str | None) -> str | None:
        """The set a run of this gateway version is judged against: its own, else ``*``."""
        if version and version in self.versions:
            return version
        return ANY_VERSION if ANY_VERSION in self.versions else None

    def select(self, version: str | None) -> tuple[str, ExpectationSet]:
        key = self.key_for(version)
        if key is None:
            known = ", ".join(sorted(self.versions))
            raise ConfigError(f"{self.path}: no expectations for {self.gateway or 'the gateway'} version "
                              f"{version or '(none declared)'} (has: {known}); "
                              "adopt this version with `gwconf baseline update RUN.json`")
        return key, self.versions[key]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": FORMAT}
        if self.gateway:
            data["gateway"] = self.gateway
        if self.profile:
            data["profile"] = self.profile
        data["versions"] = {k: self.versions[k].to_dict() for k in sorted(self.versions)}
        return data


def from_run(document: dict[str, Any], path: str = "") -> Baseline:
    """A previous run.json as a baseline: its fail/error checks are the expected failures."""
    expected = {c["check_id"]: f"{c['outcome']} in baseline run {document['run_id']}"
                + (f": {c['message']}" if c["message"] else "")
                for c in document["checks"] if c["outcome"] in BAD}
    catalogue = frozenset(c["check_id"] for c in document["checks"])
    return Baseline({ANY_VERSION: ExpectationSet(expected, catalogue)}, path, document["gateway"]["name"],
                    is_run=True)


def parse(data: Any, path: Path) -> Baseline:
    """A baseline from parsed JSON in any of its three forms; a bad one is a one-line ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: baseline must be a JSON object")
    if data.get("format") == RUN_FORMAT:
        problems = schemas.errors("report", data)
        if problems:
            raise ConfigError(f"{path}: not a gwconf run.json: {problems[0]}")
        return from_run(data, str(path))
    if "format" in data or "versions" in data:
        problems = schemas.errors("baseline", data)
        if problems:
            raise ConfigError(f"{path}: not a gwconf baseline ({FORMAT}): {problems[0]}")
        versions = {key: ExpectationSet(dict(s["expected"]), frozenset(s["catalogue"]["checks"]),
                                        dict(s.get("source", {})))
                    for key, s in data["versions"].items()}
        return Baseline(versions, str(path), data.get("gateway", ""), data.get("profile", ""))
    for key, reason in data.items():
        if not CHECK_ID.match(key):
            raise ConfigError(f"{path}: {key!r} is not a check id (like MAP-001)")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{path}: {key} needs a reason (a non-empty string)")
    return Baseline({ANY_VERSION: ExpectationSet(dict(data), None)}, str(path))


def load(path: Path) -> Baseline:
    return parse(read_json(path, "baseline"), path)


def new_reason(check: dict[str, Any], document: dict[str, Any]) -> str:
    gateway = document["gateway"]
    who = " ".join(filter(None, [gateway["name"], gateway.get("version")]))
    message = " ".join(check["message"].split())
    if len(message) > REASON_LIMIT:
        message = message[:REASON_LIMIT] + "..."
    return f"{check['outcome']} in {who} run {document['run_id']}" + (f": {message}" if message else "")


def tightened(previous: ExpectationSet | None, document: dict[str, Any]) -> ExpectationSet:
    """The expectation set after `document`: passing expectations dropped, its checks adopted.

    A run of the whole catalogue (no ``-k``) also retires checks it no longer has. A partial run
    only speaks for the checks it ran; the others keep their expectations and adoption.
    """
    outcomes = {c["check_id"]: c for c in document["checks"]}
    whole = not (document.get("options") or {}).get("keyword")
    before = previous or ExpectationSet({}, frozenset())
    kept_before = frozenset() if whole or before.catalogue is None else before.catalogue
    catalogue = frozenset(outcomes) | kept_before
    expected: dict[str, str] = {}
    for check_id, reason in before.expected.items():
        check = outcomes.get(check_id)
        if check is None and check_id not in catalogue:
            continue  # retired from the catalogue
        if check is not None and check["outcome"] in PASSING:
            continue  # fixed: the ratchet tightens
        expected[check_id] = reason  # still failing, or not judged this time (skip, blocked)
    for check_id, check in outcomes.items():
        if check["outcome"] in BAD and check_id not in expected:
            expected[check_id] = new_reason(check, document)
    source = {"run_id": document["run_id"], "started_at": document["started_at"],
              "harness_version": document["harness"]["version"]}
    return ExpectationSet(expected, catalogue, source)


def update(baseline: Baseline | None, document: dict[str, Any]) -> tuple[str, Baseline]:
    """Tighten `baseline` (or start one) with a run; returns the version key it wrote."""
    gateway = document["gateway"]
    key = gateway.get("version") or ANY_VERSION
    base = baseline or Baseline({}, gateway=gateway["name"], profile=gateway["profile"])
    # A flat file adopted every check there was; from now on that is the run's catalogue.
    everything = frozenset(c["check_id"] for c in document["checks"])
    base = replace(base, versions={k: s if s.catalogue is not None
                                   else replace(s, catalogue=everything | frozenset(s.expected))
                                   for k, s in base.versions.items()})
    # A new version starts from the set it was judged against (``*``), then tightens.
    source_key = base.key_for(gateway.get("version"))
    previous = base.versions.get(source_key) if source_key else None
    versions = {**base.versions, key: tightened(previous, document)}
    return key, replace(base, versions=versions, gateway=base.gateway or gateway["name"],
                        profile=base.profile or gateway["profile"], is_run=False)


def default_path(document: dict[str, Any]) -> Path:
    """``gateways/NAME.toml`` -> ``gateways/NAME.expected.json``, beside the run's profile."""
    profile = Path(document["gateway"]["profile"])
    return profile.with_name(profile.name.removesuffix(profile.suffix) + ".expected.json")


def write(baseline: Baseline, path: Path) -> Path:
    data = baseline.to_dict()
    problems = schemas.errors("baseline", data)
    if problems:  # pragma: no cover - to_dict builds valid documents; this guards against drift
        raise AssertionError(f"baseline would not validate: {problems[0]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
