"""The CI gate: a run judged against a baseline's expectation set. Pure functions over run.json.

Each check the gate has something to say about gets one status:

* ``regression``: fails (fail or error) and the baseline does not expect it. Always fails the gate.
* ``expected``: fails as the baseline expects (or the baseline expects it and it was not judged
  this time: skipped or blocked). Never fails the gate.
* ``fixed``: the baseline expects a failure and the check now passes (or warns). Fails the gate
  only with ``ratchet``: tighten the baseline with ``gwconf baseline update``.
* ``pending``: a check the baseline's catalogue does not have (new in this gwconf). Reported,
  whatever its outcome; fails the gate only when it fails and ``pending_binding`` is set.

Outcomes the gate does not know (``blocked``, and whatever comes later) never fail it on their
own: a blocked check's cause is a check of its own, which is judged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.report.baseline import BAD, PASSING, ExpectationSet

STATUSES = ("regression", "fixed", "pending", "expected")


@dataclass(frozen=True)
class GateEntry:
    check_id: str
    title: str
    outcome: str
    status: str  # one of STATUSES
    failing: bool  # this entry alone fails the gate
    reason: str

    def line(self) -> str:
        verdict = {"regression": "new failure", "fixed": "expected failure now passes",
                   "pending": "pending", "expected": "expected failure"}[self.status]
        blocking = " [fails the gate]" if self.failing and self.status != "regression" else ""
        return f"{verdict}: {self.check_id} {self.outcome}: {self.title}{blocking} ({self.reason})"


@dataclass
class GateResult:
    baseline: str  # the baseline file
    version_key: str  # the expectation set used
    ratchet: bool = False
    pending_binding: bool = False
    entries: list[GateEntry] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(e.failing for e in self.entries)

    def with_status(self, status: str) -> list[GateEntry]:
        return [e for e in self.entries if e.status == status]

    def headline(self) -> str:
        counts = ", ".join(f"{len(self.with_status(s))} {s}" for s in STATUSES if self.with_status(s))
        verdict = "passed" if self.passed else "FAILED"
        return (f"gate {verdict} against {self.baseline} [{self.version_key}]"
                + (f": {counts}" if counts else ": nothing to report"))

    def lines(self, run_json: str = "RUN.json") -> list[str]:
        """The gate as plain text: the headline, then every entry but the expected ones."""
        out = [self.headline()]
        out += [e.line() for s in STATUSES[:-1] for e in self.with_status(s)]
        if self.with_status("fixed") or self.with_status("pending"):
            what = " and ".join(w for w, s in (("tighten", "fixed"), ("adopt new checks into", "pending"))
                                if self.with_status(s))
            out.append(f"to {what} the baseline: gwconf baseline update {run_json} --baseline {self.baseline}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "version_key": self.version_key, "ratchet": self.ratchet,
                "pending_binding": self.pending_binding, "passed": self.passed,
                "checks": {e.check_id: {k: v for k, v in asdict(e).items() if k != "check_id"}
                           for e in self.entries}}


def entry_for(check: dict[str, Any], expectations: ExpectationSet, *, ratchet: bool,
              pending_binding: bool) -> GateEntry | None:
    check_id, outcome = check["check_id"], check["outcome"]

    def entry(status: str, failing: bool, reason: str) -> GateEntry:
        return GateEntry(check_id, check["title"], outcome, status, failing, reason)

    if not expectations.adopted(check_id):
        return entry("pending", pending_binding and outcome in BAD,
                     "new check, not in the baseline's catalogue: adopt it with gwconf baseline update")
    reason = expectations.expected.get(check_id)
    if reason is None:
        return entry("regression", True, check["message"] or "not expected to fail") if outcome in BAD else None
    if outcome in PASSING:
        return entry("fixed", ratchet, f"expected: {reason}; tighten the baseline")
    return entry("expected", False, reason)


def judge(document: dict[str, Any], expectations: ExpectationSet, *, baseline: str = "",
          version_key: str = "", ratchet: bool = False, pending_binding: bool = False) -> GateResult:
    """Judge a run.json document against one expectation set."""
    result = GateResult(baseline, version_key, ratchet, pending_binding)
    for check in document["checks"]:
        found = entry_for(check, expectations, ratchet=ratchet, pending_binding=pending_binding)
        if found is not None:
            result.entries.append(found)
    return result
