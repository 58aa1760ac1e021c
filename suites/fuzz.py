"""FUZZ: invalid input from schemathesis (negative mode over schemas/gateway-openapi.yaml).

The three checks judge one shared campaign (harness/fuzzing.py): the same deterministic cases,
sent once. Every failing case is kept as evidence with schemathesis' curl reproduction.
"""

from __future__ import annotations

from harness.checklib import SPEC_OPENAI_ERRORS, is_error_envelope, short
from harness.context import CheckContext
from harness.errors import UpstreamUnavailable
from harness.fuzzing import Campaign, FuzzCall, campaign
from harness.gateway.client import GatewayTimeout
from harness.nonanswer import REQUIREMENT
from harness.registry import MUST, SHOULD, check

SPEC_SCHEMATHESIS = "https://schemathesis.readthedocs.io/en/stable/"
SPEC_RFC9110_5XX = "https://www.rfc-editor.org/rfc/rfc9110#name-server-error-5xx"
SHOWN = 5  # failing cases kept as evidence


def fuzz(t: CheckContext) -> Campaign:
    run = campaign(t.env, t.profile)
    t.note(run.describe())
    for note in run.notes:
        t.note(note)
    if not run.calls:
        raise UpstreamUnavailable("no fuzz request was sent")
    if not run.answered():
        if run.slow():  # hook: nothing answered, nothing judged; the timeout rule (harness/budget.py) decides
            with t.bounded("Invalid input must be answered within the request bound."):
                raise GatewayTimeout(f"none of {len(run.calls)} fuzz requests got an answer within "
                                     f"{run.bound:g}s, the first: {run.calls[0].summary()}")
        raise UpstreamUnavailable(f"no fuzz request was answered ({run.calls[0].summary()})")
    # hook: a non-answer is never a pass (harness/nonanswer.py)
    silent = [c for c in run.answered() if c.status is not None and 200 <= c.status < 300 and c.body is None]
    t.expect(not silent, REQUIREMENT, "a JSON body on every 2xx answer", keep(t, silent))
    return run


def keep(t: CheckContext, calls: list[FuzzCall]) -> str:
    """Record the first failing cases as evidence; return a one-line summary of them."""
    for call in calls[:SHOWN]:
        t.evidence.exchanges.append(call.exchange)
        t.note(f"{call.summary()}\nReproduce with:\n  {call.curl}")
    more = f" (and {len(calls) - SHOWN} more)" if len(calls) > SHOWN else ""
    return "; ".join(c.summary() for c in calls[:SHOWN]) + more


@check("FUZZ-001", MUST, needs="any", spec=SPEC_RFC9110_5XX)
def invalid_input_gets_no_server_error(t: CheckContext) -> None:
    """Invalid input never gets a 5xx: the gateway refuses it as the client's error."""
    run = fuzz(t)
    failed = run.server_errors()
    t.expect(not failed, "Invalid client input must be refused with a 4xx, never a 5xx.",
             "no 5xx answer to any fuzz request", keep(t, failed))


@check("FUZZ-002", SHOULD, needs="any", spec=SPEC_OPENAI_ERRORS)
def invalid_input_refusal_is_error_envelope(t: CheckContext) -> None:
    """Every 4xx answer to invalid input is an OpenAI error envelope."""
    run = fuzz(t)
    failed = [c for c in run.client_errors() if not is_error_envelope(c.body)]
    actual = keep(t, failed)
    if failed:
        actual += f"; first body: {short(failed[0].exchange.response_body, 200)}"
    t.expect(not failed, "A refusal must be an OpenAI error envelope.",
             '{"error": {"message": ...}} on every 4xx', actual)


@check("FUZZ-003", MUST, needs="any", spec=SPEC_SCHEMATHESIS)
def invalid_input_answered_within_bound(t: CheckContext) -> None:
    """Invalid input is answered within the profile's request bound."""
    run = fuzz(t)
    failed = run.slow()
    t.expect(not failed, "Invalid input must be answered within the request bound.",
             f"every answer within {run.bound:g}s", keep(t, failed))
