"""The run budget and the breaker: a run ends in bounded time, and a silent gateway is noticed once.

Budget. Every check gets a bound derived from the profile's timeouts (`check_bound`): room for
three client requests and one job, plus the time captures take to settle. A scenario is driven
once for all the checks that judge it, so its bound is theirs added up. The run's budget is the
gateway's startup bound plus the checks' bounds spread over the workers; `gwconf run` prints it
at the start and `--budget` overrides it. While a scenario is driven, every client request is
clamped to what is left of the scenario's bound and of the run's budget; a step whose time is
spent is recorded as an error (the harness could not judge it in time).

The rule for client timeouts (the Driver applies it to every step that times out; the
Judgement reads what it recorded, so `gwconf judge` decides the same way offline):

    A request the gateway does not answer within its bound is the gateway's `fail` (`warn` for a
    SHOULD check) when the gateway is still answering: right after the timeout the harness sends
    one liveness probe (GET /gwconf-liveness, a path no gateway serves) and any HTTP answer, 404
    included, shows the gateway is alive and chose not to answer in time: the profile's
    `timeouts.request` is a bound every answer must meet (for checks that judge the step as
    `bounded`). When the probe gets no answer either, the gateway has stopped answering and no
    check can judge anything: every check that reads the step is an `error`, labelled
    "the gateway stopped answering".

Breaker. Each "stopped answering" verdict is written to a log file shared by every xdist worker
(its path travels in GWCONF_RUN_BUDGET, like the run environment); every answer the client gets
is written there too. Once `BREAKER_AFTER` stopped-answering verdicts follow each other with no
answer in between, the breaker is open for the rest of the run: every later step sends nothing
and is recorded as stopped, carrying the evidence of those first timeouts. The log lives in the
run's private temp dir and lines are appended with O_APPEND, which keeps small writes whole
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

from harness.config._profile import Timeouts
from harness.errors import UpstreamUnavailable

BUDGET_ENV = "GWCONF_RUN_BUDGET"
BREAKER_AFTER = 3  # consecutive stopped-answering verdicts that open the breaker
PROBE_PATH = "/gwconf-liveness"
PROBE_SECONDS = 3.0
SETTLE_SECONDS = 3.0  # captures settling after work the client could not follow
STOPPED = "the gateway stopped answering"


class GatewayStopped(UpstreamUnavailable):
    """The gateway answers nothing any more: the harness cannot judge the check (`error`)."""

    def __init__(self, message: str, evidence: list[str] | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence or []


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
    """The client got an HTTP answer from the gateway: the streak of silence is broken."""
    budget = current()
    if budget is not None:
        _append(budget.breaker_log, {"kind": "answer"})


def record_stopped(step: str, detail: str) -> None:
    budget = current()
    if budget is not None:
        _append(budget.breaker_log, {"kind": "stopped", "step": step, "detail": detail})


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
        streak.append(f"{entry.get('step')}: {entry.get('detail')}")
        if len(streak) >= BREAKER_AFTER:
            return streak
    return None


# -- one scenario ----------------------------------------------------------------------------

_deadline: float | None = None  # monotonic; one scenario is driven at a time per process


def start_scenario(checks: int) -> str | None:
    """Called as a scenario starts (judged by `checks` checks): its deadline is set, and the
    reason it must not run at all is returned (the run's budget is spent)."""
    global _deadline
    budget = current()
    _deadline = None
    if budget is None:
        return None
    left = budget.deadline - time.time()
    if left <= 0:
        return f"the run's budget of {budget.total:g}s was spent before this scenario started"
    _deadline = time.monotonic() + min(budget.per_check * max(checks, 1), left)
    return None


def breaker_open() -> GatewayStopped | None:
    """The `error` every step gets once the breaker is open (nothing is sent), else None."""
    budget = current()
    evidence = open_breaker_evidence(budget.breaker_log) if budget is not None else None
    if evidence is None:
        return None
    return GatewayStopped(f"{STOPPED}: {len(evidence)} requests in a row got no answer, nor did a "
                          f"liveness probe after each; the first: {evidence[0]}; nothing was sent",
                          evidence)


def clamp(bound: float) -> float:
    """A request's bound, cut to what is left of the scenario's; raise when nothing is left, or
    when the breaker is open (the request is not sent)."""
    stopped = breaker_open()
    if stopped is not None:
        raise stopped
    if _deadline is None:
        return bound
    left = _deadline - time.monotonic()
    if left <= 0:
        raise BudgetSpent("the scenario's bound was spent before this request")
    return min(bound, left)


# -- the rule --------------------------------------------------------------------------------

def stopped_verdict(step: str, timeout_text: str, answered_probe: bool) -> str | None:
    """Apply the rule to one client timeout: None when the gateway still answered the liveness
    probe (the timeout is the gateway's failure), else the stopped label (recorded for the breaker)."""
    if answered_probe:
        record_answer()
        return None
    detail = f"{timeout_text}, and GET {PROBE_PATH} got no answer within {PROBE_SECONDS:g}s"
    record_stopped(step, detail)
    return f"{STOPPED}: {detail}"
