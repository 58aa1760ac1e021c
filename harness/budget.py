"""The run budget and the breaker: a run ends in bounded time, and a silent gateway is noticed once.

Budget. Every check gets a bound derived from the profile's timeouts (`check_bound`): room for
three client requests and one job, plus the time captures take to settle. The run's budget is
the gateway's startup bound plus the checks' bounds spread over the workers; `gwconf run` prints
it at the start and `--budget` overrides it. Inside a check, every client request is clamped to
what is left of the check's bound and of the run's budget; a check whose time is spent ends as
`error` (the harness could not judge it in time).

The rule for client timeouts (every check follows it; the executor and `t.bounded` apply it):

    A request the gateway does not answer within its bound is the gateway's `fail` (`warn` for a
    SHOULD check) when the gateway is still answering: right after the timeout the harness sends
    one liveness probe (GET /gwconf-liveness, a path no gateway serves) and any HTTP answer, 404
    included, shows the gateway is alive and chose not to answer in time: the profile's
    `timeouts.request` is a bound every answer must meet. When the probe gets no answer either,
    the gateway has stopped answering and no check can judge anything: the outcome is `error`.

Breaker. Each "stopped answering" verdict is written to a log file shared by every xdist worker
(its path travels in GWCONF_RUN_BUDGET, like the run environment); every answer a check gets is
written there too. Once `BREAKER_AFTER` stopped-answering verdicts follow each other with no
answer in between, the breaker is open for the rest of the run: every check that starts after
that ends at once as `error`, carrying the evidence of those first timeouts. The log lives in
the run's private temp dir and lines are appended with O_APPEND, which keeps small writes whole
across processes, so no lock is needed.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.errors import UpstreamUnavailable
from harness.profile import Timeouts

BUDGET_ENV = "GWCONF_RUN_BUDGET"
BREAKER_AFTER = 3  # consecutive stopped-answering verdicts that open the breaker
PROBE_PATH = "/gwconf-liveness"
PROBE_SECONDS = 3.0
SETTLE_SECONDS = 3.0  # captures settling after work the client could not follow
STOPPED = "the gateway stopped answering"


class GatewayStopped(UpstreamUnavailable):
    """The gateway answers nothing any more: the harness cannot judge the check (`error`)."""


class BudgetSpent(UpstreamUnavailable):
    """The check's bound or the run's budget is spent: the harness could not judge in time."""


@dataclass(frozen=True)
class Budget:
    """What a run may spend, shared with every worker through GWCONF_RUN_BUDGET."""

    per_check: float
    total: float
    deadline: float  # wall clock (time.time()) when the run's budget is spent
    breaker_log: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def describe(self, checks: int, workers: int) -> str:
        return (f"budget {self.total:.0f}s for {checks} checks at -n {workers} "
                f"(each check at most {self.per_check:g}s; --budget overrides)")


def check_bound(timeouts: Timeouts) -> float:
    """One check's bound: three client requests and one job, plus settling."""
    return 3 * timeouts.request + timeouts.job + SETTLE_SECONDS


def run_budget(timeouts: Timeouts, checks: int, workers: int) -> float:
    """The gateway's startup, then the checks' bounds spread over the workers."""
    return timeouts.startup + math.ceil(checks / max(workers, 1)) * check_bound(timeouts)


@contextmanager
def for_run(timeouts: Timeouts, checks: int, workers: int, override: float | None = None,
            announce: Callable[[str], None] | None = None) -> Iterator[Budget]:
    """The run's budget, announced, and visible to every worker (GWCONF_RUN_BUDGET) until the run ends."""
    total = override if override is not None else run_budget(timeouts, checks, workers)
    with tempfile.TemporaryDirectory(prefix="gwconf-budget-") as tmp:
        log = Path(tmp) / "breaker.log"
        log.touch()
        budget = Budget(check_bound(timeouts), total, time.time() + total, str(log))
        if announce is not None:
            announce(budget.describe(checks, workers))
        old = os.environ.get(BUDGET_ENV)
        os.environ[BUDGET_ENV] = budget.to_json()
        try:
            yield budget
        finally:
            if old is None:
                os.environ.pop(BUDGET_ENV, None)
            else:
                os.environ[BUDGET_ENV] = old


def current() -> Budget | None:
    """The run's budget in this process (controller or xdist worker), if a run set one."""
    text = os.environ.get(BUDGET_ENV)
    return Budget(**json.loads(text)) if text else None


# -- the breaker -----------------------------------------------------------------------------

def _append(path: str, entry: dict[str, str]) -> None:
    line = (json.dumps(entry) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError:  # the run that made the log has ended (a process that inherited its environment)
        return
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def record_answer() -> None:
    """A check got an HTTP answer from the gateway: the streak of silence is broken."""
    budget = current()
    if budget is not None:
        _append(budget.breaker_log, {"kind": "answer"})


def record_stopped(check_id: str, detail: str) -> None:
    budget = current()
    if budget is not None:
        _append(budget.breaker_log, {"kind": "stopped", "check": check_id, "detail": detail})


def open_breaker_evidence(log: str) -> list[str] | None:
    """The first BREAKER_AFTER consecutive stopped-answering verdicts, once there are that many."""
    try:
        lines = Path(log).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    streak: list[str] = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a dying worker
        if entry.get("kind") != "stopped":
            streak = []
            continue
        streak.append(f"{entry.get('check')}: {entry.get('detail')}")
        if len(streak) >= BREAKER_AFTER:
            return streak
    return None


# -- one check -------------------------------------------------------------------------------

_check_deadline: float | None = None  # monotonic; one check at a time per process


def start_check(t: Any) -> None:
    """Called as a check (its CheckContext `t`) starts: raise when it must not run at all."""
    global _check_deadline
    budget = current()
    _check_deadline = None
    if budget is None:
        return
    evidence = open_breaker_evidence(budget.breaker_log)
    if evidence is not None:
        for line in evidence:
            t.note(f"no answer: {line}")
        raise GatewayStopped(f"{STOPPED}: {len(evidence)} checks in a row got no answer, nor did a "
                             f"liveness probe after each; the first: {evidence[0]}; this check did not run")
    left = budget.deadline - time.time()
    if left <= 0:
        raise BudgetSpent(f"the run's budget of {budget.total:g}s was spent before this check started")
    _check_deadline = time.monotonic() + min(budget.per_check, left)


def clamp(bound: float) -> float:
    """A request's bound, cut to what is left of the check's; raise when nothing is left."""
    if _check_deadline is None:
        return bound
    left = _check_deadline - time.monotonic()
    if left <= 0:
        budget = current()
        per_check = f"{budget.per_check:g}s " if budget else ""
        raise BudgetSpent(f"the check's bound of {per_check}was spent before this request")
    return min(bound, left)


# -- the rule --------------------------------------------------------------------------------

def still_answering(base_url: str) -> bool:
    """The liveness probe: any HTTP answer to a path no gateway serves shows it is alive."""
    try:
        httpx.get(base_url.rstrip("/") + PROBE_PATH, timeout=PROBE_SECONDS)
    except httpx.HTTPError:
        return False
    return True


def stopped_verdict(check_id: str, base_url: str, timeout_text: str) -> GatewayStopped | None:
    """Apply the rule to one client timeout: None when the gateway is still answering (the
    timeout is the gateway's failure), else the `error` to raise (and recorded for the breaker)."""
    if still_answering(base_url):
        record_answer()
        return None
    detail = f"{timeout_text}, and GET {PROBE_PATH} got no answer within {PROBE_SECONDS:g}s"
    record_stopped(check_id, detail)
    return GatewayStopped(f"{STOPPED}: {detail}")
