"""Running one check and turning whatever happened into an Outcome."""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterable

from harness import budget, nonanswer
from harness.context import CaptureSource, CheckContext, RunEnv
from harness.errors import CheckFailed, CheckSkipped, ConfigError, UpstreamUnavailable
from harness.outcome import Outcome
from harness.profile import CAPABILITIES, GatewayProfile
from harness.redact import scrub, scrub_data
from harness.registry import MUST, Check


def unmet_need(check: Check, profile: GatewayProfile, env: RunEnv) -> str | None:
    """Why the profile does not claim what the check needs, or None when it does."""
    need = check.needs
    if need in CAPABILITIES:
        return None if profile.claims(need) else f"profile claims no {need} model"
    if need == "async":
        return None if profile.dialect.is_async else "profile's dialect is sync"
    if need == "fallback":
        return None if profile.fallbacks else "profile declares no fallback alias"
    if need == "two-keys":
        return None if env.api_key_b else "profile names no second client key (api_key_b_env)"
    if need == "any":
        return None
    raise ConfigError(f"{check.id}: unknown need {need!r}")


def run_check(check: Check, env: RunEnv, profile: GatewayProfile,
              captures: CaptureSource) -> Outcome:
    outcome = Outcome(check.id, check.title, check.level, check.category, "pass", 0.0,
                      spec=check.spec)
    reason = unmet_need(check, profile, env)
    if reason:
        outcome.outcome, outcome.message = "skip", reason
        return outcome
    t = CheckContext(check, env, profile, captures)
    started = time.monotonic()
    try:
        budget.start_check(t)  # hook (harness/budget.py): breaker open or run budget spent: end now
        with t.bounded("The gateway must answer every request within the profile's request bound."), \
                nonanswer.judged(t):  # hooks: the timeout rule (harness/budget.py); a non-answer never passes
            check.func(t)
        _collect_captures(t)
    except CheckFailed as exc:
        _collect_captures(t)
        outcome.outcome = "fail" if check.level == MUST else "warn"
        outcome.message = exc.render()
    except CheckSkipped as exc:
        outcome.outcome, outcome.message = "skip", str(exc)
    except UpstreamUnavailable as exc:
        _collect_captures(t)
        outcome.outcome, outcome.message = "error", f"harness could not decide: {exc}"
    except Exception as exc:  # a harness bug must not stop the run; it shows as an error
        outcome.outcome = "error"
        outcome.message = f"harness error: {type(exc).__name__}: {exc}"
        t.note(traceback.format_exc(limit=6))
    finally:
        t.close()
    outcome.duration = round(time.monotonic() - started, 4)
    outcome.evidence = t.evidence
    return redact_outcome(outcome, env.secrets)


def _collect_captures(t: CheckContext) -> None:
    try:
        t.upstream()
    except UpstreamUnavailable as exc:
        t.note(f"captures unavailable: {exc}")
    try:
        escaped = t.egress()
    except UpstreamUnavailable as exc:
        t.note(f"egress log unavailable: {exc}")
        return
    for attempt in escaped:
        seen = f" ({attempt.method} {attempt.path})" if attempt.path else f" ({attempt.method})"
        note = f"the gateway tried to reach {attempt.target}{seen}, not a configured upstream"
        if note not in t.evidence.notes:
            t.note(note)


def redact_outcome(outcome: Outcome, secrets: Iterable[str]) -> Outcome:
    """Scrub every string of the outcome, evidence included: reports never carry a key."""
    data = scrub_data(outcome.to_dict(), tuple(secrets))
    assert isinstance(data, dict)
    clean = Outcome.from_dict(data)
    clean.message = scrub(clean.message, tuple(secrets))
    return clean
