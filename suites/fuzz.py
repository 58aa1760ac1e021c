"""FUZZ: invalid input from schemathesis (negative mode over schemas/gateway-openapi.yaml).

The three checks judge one shared campaign (harness/scenarios/_fuzzing.py): the same deterministic cases,
sent once. Every failing case is kept as evidence with its curl reproduction.
"""

from __future__ import annotations

from harness.api import (
    CLIENT,
    MUST,
    NON_ANSWER,
    SHOULD,
    SPEC_OPENAI_ERRORS,
    Campaign,
    Driver,
    FuzzCall,
    Judgement,
    UpstreamUnavailable,
    campaign,
    check,
    is_error_envelope,
    scenario,
    short,
)

SPEC_SCHEMATHESIS = "https://schemathesis.readthedocs.io/en/stable/"
SPEC_RFC9110_5XX = "https://www.rfc-editor.org/rfc/rfc9110#name-server-error-5xx"
SHOWN = 5  # failing cases spelled out in the notes
FUZZ = "fuzz-campaign"
ANSWERED = "Invalid input must be answered within the request bound."


@scenario(FUZZ)
def send_the_fuzz_campaign(s: Driver) -> None:
    """Every negative case schemathesis makes for the operations the profile claims, sent once."""
    with s.step("campaign") as step:
        s.guard()  # the campaign's traffic goes around the client: nothing once the breaker is open
        run = campaign(s.env, s.profile)
        step.value["campaign"] = run.to_dict()
        step.exchanges.extend(c.exchange for c in run.calls)
        if run.calls and not run.answered() and run.slow():  # nothing answered: the timeout rule decides
            s.timed_out(f"none of {len(run.calls)} fuzz requests got an answer within {run.bound:g}s, "
                        f"the first: {run.calls[0].summary()}")


def fuzz(t: Judgement) -> Campaign:
    run = Campaign.from_dict(t.step("campaign", bounded=ANSWERED).value["campaign"])
    t.note(run.describe())
    for note in run.notes:
        t.note(note)
    if not run.calls:
        raise UpstreamUnavailable("no fuzz request was sent")
    if not run.answered():  # nothing answered, nothing judged (and never a pass)
        raise UpstreamUnavailable(f"no fuzz request was answered ({run.calls[0].summary()})")
    # A non-answer is never a pass (harness/checks/_nonanswer.py).
    silent = [c for c in run.answered() if c.status is not None and 200 <= c.status < 300 and c.body is None]
    t.expect(not silent, NON_ANSWER, "a JSON body on every 2xx answer", keep(t, silent))
    return run


def keep(t: Judgement, calls: list[FuzzCall]) -> str:
    """Spell out the first failing cases in the notes; return a one-line summary of them."""
    for call in calls[:SHOWN]:
        t.note(f"{call.summary()}\nReproduce with:\n  {call.curl}")
    more = f" (and {len(calls) - SHOWN} more)" if len(calls) > SHOWN else ""
    return "; ".join(c.summary() for c in calls[:SHOWN]) + more


@check("FUZZ-001", MUST, needs="any", spec=SPEC_RFC9110_5XX, scenario=FUZZ, observes=CLIENT)
def invalid_input_gets_no_server_error(t: Judgement) -> None:
    """Invalid input never gets a 5xx: the gateway refuses it as the client's error."""
    run = fuzz(t)
    failed = run.server_errors()
    t.expect(not failed, "Invalid client input must be refused with a 4xx, never a 5xx.",
             "no 5xx answer to any fuzz request", keep(t, failed))


@check("FUZZ-002", SHOULD, needs="any", spec=SPEC_OPENAI_ERRORS, scenario=FUZZ, observes=CLIENT)
def invalid_input_refusal_is_error_envelope(t: Judgement) -> None:
    """Every 4xx answer to invalid input is an OpenAI error envelope."""
    run = fuzz(t)
    failed = [c for c in run.client_errors() if not is_error_envelope(c.body)]
    actual = keep(t, failed)
    if failed:
        actual += f"; first body: {short(failed[0].exchange.response_body, 200)}"
    t.expect(not failed, "A refusal must be an OpenAI error envelope.",
             '{"error": {"message": ...}} on every 4xx', actual)


@check("FUZZ-003", MUST, needs="any", spec=SPEC_SCHEMATHESIS, scenario=FUZZ, observes=CLIENT)
def invalid_input_answered_within_bound(t: Judgement) -> None:
    """Invalid input is answered within the profile's request bound."""
    run = fuzz(t)
    failed = run.slow()
    t.expect(not failed, ANSWERED,
             f"every answer within {run.bound:g}s", keep(t, failed))
