"""Comparing two runs check by check (``gwconf diff``): what regressed, what got fixed, what is new.

The CI gate against a baseline lives in ``gate.py``, the baseline file in ``baseline.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.report.baseline import BAD


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
