"""Judging a recording: what a check sees, and how its verdict becomes an Outcome.

A check is a pure function of (recording, profile, run facts) and the catalogue's files: it
sends nothing, waits for nothing and opens nothing, so it gives the same verdict during the run
and when `gwconf judge` re-reads the recording from disk.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

from harness.checks import _nonanswer as nonanswer
from harness.checks._assertions import raised_at
from harness.checks._checklib import is_dashscope_task_image
from harness.checks._registry import CLIENT, MUST, Check
from harness.config._profile import BLACK_BOX, CAPABILITIES, GatewayProfile, ModelRoute
from harness.errors import CheckFailed, CheckSkipped, ConfigError, UpstreamUnavailable
from harness.gateway.client import JobResult
from harness.paths import CASSETTES_DIR
from harness.records._capture import CapturedRequest
from harness.records._outcome import FAILED, Evidence, Exchange, Outcome
from harness.records._recording import Answer, Recording, RunFacts, Step
from harness.upstream._egress import EgressAttempt

BOUND_REQUIREMENT = "The gateway must answer within the profile's bound."
UNOBSERVED = "needs upstream observation"


class UpstreamUnobserved(Exception):
    """A check declared client-side read what only the mocks can show: its declaration is wrong
    (a harness error, never a verdict)."""

# The routing check that judges whether a request for an alias of this kind reaches its provider
# at all: when it failed, a check that needed that request to arrive is blocked by it.
ROUTING_CHECKS = {
    ("dashscope", "image.generate", "sync"): "MAP-001",
    ("dashscope", "image.generate", "task"): "MAP-003",
    ("dashscope", "image.edit", ""): "MAP-004",
    ("openai", "image.generate", ""): "MAP-005",
    ("openai", "image.edit", ""): "MAP-010",
    ("replicate", "image.generate", ""): "MAP-006",
    ("dashscope", "chat", ""): "MAP-009",
    ("dashscope", "video.generate", ""): "VIDEO-001",
}
REGION_CHECK = "MAP-012"  # a region-bound alias must reach its own region's upstream


class Blocked(CheckFailed):
    """A precondition failed (the request never reached the provider's play, no job was created).
    After the run it becomes `blocked` when one of `candidates` failed, else an ordinary failure
    with the precondition as its message: a blocked check never hides a defect."""

    def __init__(self, requirement: str, expected: str, actual: str, candidates: Iterable[str]) -> None:
        super().__init__(requirement, expected, actual)
        self.candidates = sorted(set(candidates))


def client_model(exchange: Exchange) -> str:
    """The `model` a client request named (JSON body or multipart form), or ""."""
    for name, value in exchange.form:
        if name == "model":
            return value
    try:
        body = json.loads(exchange.request_body or "null")
    except ValueError:
        return ""
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else ""


def route_checks(route: ModelRoute) -> set[str]:
    """The routing checks that judge whether requests for `route` reach their provider."""
    kind = ""
    if (route.provider, route.capability) == ("dashscope", "image.generate"):
        kind = "task" if is_dashscope_task_image(route) else "sync"
    found = {ROUTING_CHECKS.get((route.provider, route.capability, kind), "")} - {""}
    return found | {REGION_CHECK} if route.region else found


def routing_checks(profile: GatewayProfile, exchanges: Iterable[Exchange]) -> set[str]:
    """The routing checks that judge where the profile's aliases named in `exchanges` must go."""
    models = {client_model(exchange) for exchange in exchanges}
    return set().union(*(route_checks(r) for r in profile.models if r.alias in models))


class Judgement:
    """Handed to every check function as `t`."""

    def __init__(self, check: Check, recording: Recording, profile: GatewayProfile, facts: RunFacts) -> None:
        self.check = check
        self.recording = recording
        self.profile = profile
        self.facts = facts
        self.read: set[str] | None = set()  # the steps the check looked at (None: all of them)
        self.fates: list[dict[str, Any]] = []  # PARAM: what became of each parameter judged
        # A black-box run has no mocks: what reached the provider cannot be seen, and a check that
        # asks for it was declared client-side wrongly.
        self.blind = profile.mode == BLACK_BOX
        self.evidence = Evidence(exchanges=recording.exchanges, upstream=recording.upstream,
                                 notes=list(recording.notes),
                                 rerun=f"gwconf run --gateway {facts.profile_arg or facts.profile_path} -k {check.id}",
                                 variables=facts.repro_variables())

    # -- the profile ----------------------------------------------------------------------------

    def route(self, provider: str, capability: str, **match: str) -> ModelRoute:
        """The profile's alias for this provider and capability, or skip the check."""
        route = self.profile.route_for(provider, capability, **match)
        if route is None:
            wanted = ", ".join(f"{k}={v}" for k, v in match.items())
            raise CheckSkipped(f"profile claims no {provider} {capability} model"
                               + (f" with {wanted}" if wanted else ""))
        return route

    def route_where(self, capability: str, predicate: Callable[[ModelRoute], bool], why: str) -> ModelRoute:
        for route in self.profile.routes_for(capability):
            if predicate(route):
                return route
        raise CheckSkipped(f"profile claims no {capability} model that is {why}")

    def provider_file(self, name: str) -> bytes:
        """A file of the catalogue (cassettes/files): the bytes a provider hands out."""
        self._upstream_read(f"the mocks' file {name}")
        recorded = Path(self.facts.files_dir) / name
        return (recorded if recorded.is_file() else CASSETTES_DIR / "files" / name).read_bytes()

    # -- the recording --------------------------------------------------------------------------

    def step(self, name: str, bounded: bool | str = False) -> Step:
        """The named step. A step the harness could not drive makes the check an error; one the
        client gave up waiting on is the gateway's failure when the check is `bounded` and the
        gateway still answered the liveness probe, an error once it had stopped answering (the
        timeout rule, harness/gateway/_run_budget.py)."""
        step = self.recording.step(name)
        if step is None:
            raise UpstreamUnavailable(f"scenario {self.recording.scenario} recorded no step {name!r}")
        self._looked_at(name)
        if step.stopped:
            raise UpstreamUnavailable(step.stopped)
        if step.timeout:
            if bounded:
                self.fail(bounded if isinstance(bounded, str) else BOUND_REQUIREMENT,
                          f"an answer within {self.profile.timeouts.request:g}s", step.timeout)
            raise UpstreamUnavailable(step.timeout)
        if step.error:
            raise UpstreamUnavailable(step.error)
        if step.skipped:
            raise CheckSkipped(step.skipped)
        return step

    def job(self, name: str, bounded: bool | str = False) -> JobResult:
        """What a generate or edit step came to, followed through the dialect."""
        value = self.step(name, bounded).value.get("job")
        if not isinstance(value, dict):
            raise UpstreamUnavailable(f"step {name!r} recorded no job")
        return JobResult.from_dict(value)

    def answer(self, name: str, bounded: bool | str = False) -> Answer:
        """The gateway's answer to a plain request step."""
        value = self.step(name, bounded).value.get("answer")
        if not isinstance(value, dict):
            raise UpstreamUnavailable(f"step {name!r} recorded no answer")
        return Answer.from_dict(value)

    def token(self, name: str) -> str:
        return self.step(name).token

    def upstream(self, step: str | None = None, provider: str | None = None) -> list[CapturedRequest]:
        """What reached the mocks because of one step (or of the whole scenario)."""
        self._upstream_read("upstream captures")
        self._looked_at(step)
        if step is None:
            records = self.recording.upstream
        else:
            found = self.recording.step(step)
            records = found.upstream if found is not None else []
        return [r for r in records if provider is None or r.provider == provider]

    def _upstream_read(self, what: str) -> None:
        if self.blind:
            raise UpstreamUnobserved(f"{self.check.id} is declared client-side but reads {what}, which a "
                                     "black-box run cannot observe")

    def _looked_at(self, step: str | None) -> None:
        if step is None:
            self.read = None
        elif self.read is not None:
            self.read.add(step)

    def passing_evidence(self) -> Evidence:
        """A pass keeps what it judged; a failure keeps the whole scenario."""
        if self.read is None:
            return self.evidence
        steps = [s for s in self.recording.steps if s.name in self.read]
        self.evidence.exchanges = [x for s in steps for x in s.exchanges]
        self.evidence.upstream = sorted((r for s in steps for r in s.upstream), key=lambda r: r.seq)
        return self.evidence

    def egress(self) -> list[EgressAttempt]:
        """Attempts to reach a host other than the mocks while the scenario ran. Attribution is by
        time window: under xdist, a concurrent scenario's attempt can show up here too."""
        self._upstream_read("the egress log")
        return list(self.recording.egress)

    def expect_played(self, step: str, play: str, answer: str = "") -> None:
        """The upstream really played `play` for `step`: otherwise what the client saw says
        nothing about how the gateway handles it, and the check must not pass on it."""
        self._upstream_read(f"whether a mock played {play!r}")
        records = self.upstream(step)
        if any(r.scenario == play for r in records):
            return
        self.blocked(step, f"The request must reach the provider's endpoint that plays {play!r}; "
                  "the gateway's answer cannot show how it handles that case.",
                  f"a request the upstream answered with {play!r}",
                  ", ".join(f"{r.provider} {r.method} {r.path} -> {r.answered}" for r in records)
                  or "no upstream request" + (f"; the gateway answered {answer}" if answer else ""))

    def expect_served(self, step: str) -> None:
        """The provider served `step` (a 2xx upstream answer): otherwise how the gateway shapes a
        provider's result cannot be judged from it. A black box hides whether it was: the
        precondition is then assumed, and the note says so."""
        if self.blind:
            self.note(f"{step}: whether the provider served it cannot be seen in a black-box run")
            return
        records = self.upstream(step)
        if any(r.served for r in records):
            return
        self.blocked(step, "The request must be served by its provider; the gateway's answer cannot show "
                           "how it shapes a provider's result.", "a 2xx answer from the provider",
                     ", ".join(f"{r.provider} {r.method} {r.path} -> {r.answered}" for r in records)
                     or "no upstream request")

    def blocked(self, step: str, requirement: str, expected: str = "", actual: str = "") -> NoReturn:
        """A precondition of the check failed for `step`: blocked by the routing checks of the
        aliases the step asked for, if one of them fails in this run."""
        self.fail(requirement, expected, actual, unless=self.routing_of(step))

    def routing_of(self, *steps: str) -> set[str]:
        """The routing checks of the aliases these steps asked for: when one of them fails, the
        requests never reached their provider as they should, and what follows is its defect."""
        found = [self.recording.step(step) for step in steps]
        return routing_checks(self.profile, [x for s in found if s is not None for x in s.exchanges])

    def unless_reached(self, *steps: str, provider: str | None = None) -> set[str]:
        """For `unless=`: the routing checks of the steps that reached no provider (or not this one)."""
        if self.blind:  # a black box shows no provider, and judges no routing check that could explain it
            return set()
        return self.routing_of(*(s for s in steps if not self.upstream(s, provider)))

    def unless_served(self, *steps: str) -> set[str]:
        """For `unless=`: the routing checks of the steps no provider served with a 2xx answer."""
        if self.blind:  # as above
            return set()
        return self.routing_of(*(s for s in steps if not any(r.served for r in self.upstream(s))))

    def routing_to(self, provider: str, upstream_model: str = "") -> set[str]:
        """The routing checks of the profile's image aliases for this provider: those of the
        model's aliases, or of every alias of the provider when none serves that model."""
        routes = [r for r in self.profile.routes_for("image.generate") if r.provider == provider]
        same_model = [r for r in routes if r.upstream_model == upstream_model]
        return set().union(*map(route_checks, same_model or routes))

    # -- verdicts -------------------------------------------------------------------------------

    def expect(self, condition: object, requirement: str, expected: str = "", actual: str = "",
               unless: Iterable[str] = ()) -> None:
        """Fail unless `condition` holds. `unless` names checks whose failure explains this one:
        when one of them fails in the same run, this outcome becomes `blocked` by it, else it
        stays an ordinary failure with its own message."""
        if not condition:
            self.fail(requirement, expected, actual, unless)

    def fail(self, requirement: str, expected: str = "", actual: str = "", unless: Iterable[str] = ()) -> NoReturn:
        self.evidence.expected = expected
        self.evidence.actual = actual
        candidates = set(unless)
        if candidates:
            raise Blocked(requirement, expected, actual, candidates)
        raise CheckFailed(requirement, expected, actual)

    def note(self, text: str) -> None:
        self.evidence.notes.append(text)

    def record_fate(self, fate: dict[str, Any]) -> None:
        """Keep a parameter's fate (run.json `parameter_fates`), whatever the verdict."""
        self.fates.append(fate)

    def non_answers(self) -> list[str]:
        """The 2xx answers that are not JSON among the steps the check read (downloads aside)."""
        steps = [s for s in self.recording.steps
                 if (self.read is None or s.name in self.read) and "fetched" not in s.value]
        return nonanswer.non_answers(x for s in steps for x in s.exchanges)

    def fail_non_answers(self) -> None:
        """A non-answer is never a pass: the check fails on the first one it read, if any."""
        found = self.non_answers()
        if found:
            self.fail(nonanswer.REQUIREMENT, nonanswer.EXPECTED, nonanswer.describe(found))


def unmet_need(check: Check, profile: GatewayProfile, facts: RunFacts) -> str | None:
    """Why the profile does not claim what the check needs, or None when it does."""
    if profile.mode == BLACK_BOX and check.observes != CLIENT:
        return UNOBSERVED  # decided before its scenario is driven: nothing is sent for it
    need = check.needs
    if need in CAPABILITIES:
        return None if profile.claims(need) else f"profile claims no {need} model"
    if need == "async":
        return None if profile.dialect.is_async else "profile's dialect is sync"
    if need == "fallback":
        return None if profile.fallbacks else "profile declares no fallback alias"
    if need == "two-keys":
        return None if facts.has_second_key else "profile names no second client key (api_key_b_env)"
    if need == "any":
        return None
    raise ConfigError(f"{check.id}: unknown need {need!r}")


def skipped(check: Check, reason: str) -> Outcome:
    return Outcome(check.id, check.title, check.level, check.category, "skip", 0.0, message=reason,
                   spec=check.spec, observes=check.observes)


def judge_check(check: Check, recording: Recording, profile: GatewayProfile, facts: RunFacts) -> Outcome:
    """The check's verdict on the recording, with the recording as its evidence."""
    outcome = Outcome(check.id, check.title, check.level, check.category, "pass", recording.duration,
                      spec=check.spec, observes=check.observes)
    t = Judgement(check, recording, profile, facts)
    for attempt in recording.egress:
        seen = f" ({attempt.method} {attempt.path})" if attempt.path else f" ({attempt.method})"
        t.note(f"the gateway tried to reach {attempt.target}{seen}, not a configured upstream")
    try:
        if recording.error:
            raise UpstreamUnavailable(recording.error.removeprefix("harness could not decide: "))
        if recording.skipped:
            raise CheckSkipped(recording.skipped)
        try:
            check.func(t)
        except (CheckFailed, CheckSkipped, UpstreamUnavailable):
            raise
        except Exception:  # e.g. a JSONDecodeError on a non-answer: the gateway's failure
            if t.non_answers():
                t.fail_non_answers()
            raise
        t.fail_non_answers()
    except CheckFailed as exc:
        outcome.outcome = "fail" if check.level == MUST else "warn"
        outcome.message = exc.render()
        outcome.assertion = raised_at(check.id, check.func, exc.__traceback__)
        if isinstance(exc, Blocked):
            outcome.candidates = [c for c in exc.candidates if c != check.id]
    except CheckSkipped as exc:
        outcome.outcome, outcome.message = "skip", str(exc)
    except UpstreamUnavailable as exc:
        outcome.outcome, outcome.message = "error", f"harness could not decide: {exc}"
    except Exception as exc:  # a harness bug must not stop the run; it shows as an error
        outcome.outcome = "error"
        outcome.message = f"harness error: {type(exc).__name__}: {exc}"
        t.note(traceback.format_exc(limit=6))
    if outcome.outcome == "skip":
        return skipped(check, outcome.message)
    outcome.evidence = t.passing_evidence() if outcome.outcome == "pass" else t.evidence
    outcome.fates = t.fates
    return outcome


def resolve_blocked(outcomes: list[Outcome]) -> list[Outcome]:
    """A failed precondition becomes `blocked` when a check it names failed in the same run (its
    root causes, followed through checks that are blocked themselves), else it stays a failure.
    Run once all outcomes are in: during the run, by `gwconf judge`, in process."""
    by_id = {o.check_id: o for o in outcomes}

    def roots(check_id: str, seen: frozenset[str]) -> set[str]:
        cause = by_id.get(check_id)
        if cause is None or check_id in seen:
            return set()
        if cause.outcome in FAILED and not cause.candidates:
            return {check_id}
        if cause.candidates and cause.outcome in FAILED:
            # itself a failed precondition: whatever explains it explains this; nothing does, it is the cause
            return set().union(*(roots(c, seen | {check_id}) for c in cause.candidates)) or {check_id}
        return set()

    resolved = {o.check_id: sorted(set().union(*(roots(c, frozenset({o.check_id})) for c in o.candidates)))
                for o in outcomes if o.candidates and o.outcome in FAILED}
    for o in outcomes:
        if o.check_id in resolved:
            o.candidates = []
            if resolved[o.check_id]:
                o.outcome, o.blocked_by = "blocked", resolved[o.check_id]
    return outcomes
