"""Comparing runs for CI: what regressed, what got fixed, and which failures are new.

Two pure functions the CLI calls:

* ``diff_runs(old, new)`` compares two run.json documents check by check (``gwconf diff``).
* ``gate(document, baseline)`` lists the failures of a run that its baseline does not expect
  (``gwconf run --baseline FILE``); an empty list means nothing got worse.

A baseline is either a previous run.json (its fail and error checks are the expected
failures) or an expected-failures file in JSON: one object mapping a check id to the reason
it is expected to fail, every reason a non-empty string::

    {
      "MAP-003": "refgw routes wan2.2-t2i through chat until issue #12 lands",
      "ASYNC-004": "the gateway does not surface FAILED tasks yet"
    }

The two are told apart by the run.json ``format`` field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import _schemas as schemas
from harness.errors import ConfigError
from harness.report.runjson import FORMAT, read_json

BAD = frozenset({"fail", "error"})
CHECK_ID = re.compile(r"^[A-Z]+-\d{3}$")


@dataclass(frozen=True)
class Change:
    check_id: str
    title: str
    old: str | None  # outcome in the old run; None for a new check
    new: str | None  # outcome in the new run; None for a removed check
    message: str = ""

    def line(self) -> str:
        arrow = f"{self.old or '(absent)'} -> {self.new or '(absent)'}"
        tail = f": {self.message}" if self.message else ""
        return f"{self.check_id} {arrow} {self.title}{tail}"


@dataclass
class RunDiff:
    regressions: list[Change] = field(default_factory=list)  # pass/warn -> fail/error
    fixes: list[Change] = field(default_factory=list)  # fail/error -> pass/warn
    new: list[Change] = field(default_factory=list)  # only in the new run
    removed: list[Change] = field(default_factory=list)  # only in the old run
    changed: list[Change] = field(default_factory=list)  # any other change, e.g. pass -> skip

    @property
    def has_regressions(self) -> bool:
        return bool(self.regressions)

    def lines(self) -> list[str]:
        """The diff as plain text lines, one section per kind of change that occurred."""
        out: list[str] = []
        for name, changes in (("regressions", self.regressions), ("fixes", self.fixes),
                              ("new checks", self.new), ("removed checks", self.removed),
                              ("other changes", self.changed)):
            if changes:
                out.append(f"{name} ({len(changes)}):")
                out += [f"  {c.line()}" for c in changes]
        return out or ["no changes"]


def diff_runs(old: dict[str, Any], new: dict[str, Any]) -> RunDiff:
    """Compare two run.json documents check by check, in the new run's order."""
    before = {c["check_id"]: c for c in old["checks"]}
    after = {c["check_id"]: c for c in new["checks"]}
    result = RunDiff()
    for check_id, check in after.items():
        was = before.get(check_id)
        now = check["outcome"]
        if was is None:
            result.new.append(Change(check_id, check["title"], None, now, check["message"]))
            continue
        change = Change(check_id, check["title"], was["outcome"], now, check["message"])
        if was["outcome"] == now:
            continue
        if was["outcome"] in ("pass", "warn") and now in BAD:
            result.regressions.append(change)
        elif was["outcome"] in BAD and now in ("pass", "warn"):
            result.fixes.append(change)
        else:
            result.changed.append(change)
    result.removed = [Change(i, c["title"], c["outcome"], None) for i, c in before.items()
                      if i not in after]
    return result


@dataclass
class Baseline:
    """The failures CI accepts: check id -> reason."""

    expected: dict[str, str]
    source: str = ""

    @classmethod
    def from_run(cls, document: dict[str, Any], source: str = "") -> Baseline:
        return cls({c["check_id"]: f"{c['outcome']} in baseline run {document['run_id']}"
                    + (f": {c['message']}" if c["message"] else "")
                    for c in document["checks"] if c["outcome"] in BAD}, source)

    @classmethod
    def load(cls, path: Path) -> Baseline:
        """Read a run.json or an expected-failures JSON file; a bad file is a ConfigError."""
        data = read_json(path, "baseline")
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: baseline must be a JSON object")
        if data.get("format") == FORMAT:
            problems = schemas.errors("report", data)
            if problems:
                raise ConfigError(f"{path}: not a gwconf run.json: {problems[0]}")
            return cls.from_run(data, str(path))
        for key, reason in data.items():
            if not CHECK_ID.match(key):
                raise ConfigError(f"{path}: {key!r} is not a check id (like MAP-001)")
            if not isinstance(reason, str) or not reason.strip():
                raise ConfigError(f"{path}: {key} needs a reason (a non-empty string)")
        return cls(dict(data), str(path))

    def stale(self, document: dict[str, Any]) -> list[str]:
        """Expected failures that no longer fail (or no longer run): candidates to remove."""
        bad = {c["check_id"] for c in document["checks"] if c["outcome"] in BAD}
        return [i for i in self.expected if i not in bad]


def gate(document: dict[str, Any], baseline: Baseline) -> list[dict[str, Any]]:
    """The run's fail/error checks that the baseline does not expect (empty: CI passes)."""
    return [c for c in document["checks"]
            if c["outcome"] in BAD and c["check_id"] not in baseline.expected]
