"""ERR: what the client sees when the upstream misbehaves."""

from __future__ import annotations

import httpx

from harness.checklib import (
    DASHSCOPE_TASK_MODELS,
    SPEC_DASHSCOPE_ERRORS,
    SPEC_DASHSCOPE_TASKS,
    SPEC_OPENAI_ERRORS,
    SPEC_RFC9110_RETRY_AFTER,
    describe,
    failure_text,
    is_error_envelope,
    json_object,
    short,
)
from harness.context import CheckContext
from harness.redact import KEY_PATTERNS
from harness.registry import MUST, SHOULD, check

# scenario -> the status class a client should see (upstream client errors stay 4xx,
# throttling stays 429, upstream faults become 5xx)
EXPECTED_CLASS = {
    "error-400": "4xx", "error-401": "4xx", "error-403": "4xx", "error-429": "429",
    "error-500": "5xx", "error-503": "5xx", "fault-hang": "5xx", "fault-drop": "5xx",
    "fault-malformed": "5xx",
}
PROVIDER_REASONS = {"error-400": ("InvalidParameter", "Required parameter"),
                    "error-500": ("InternalError", "internal error")}


def dashscope_alias(t: CheckContext) -> str:
    return t.route_where("image.generate", lambda r: r.provider == "dashscope" and
                         r.upstream_model not in DASHSCOPE_TASK_MODELS,
                         "a DashScope multimodal image model").alias


def faulty_request(t: CheckContext, scenario: str, alias: str | None = None, must_play: bool = True
                   ) -> httpx.Response:
    """A plain image request the upstream answers with `scenario`; a hang past the bound fails."""
    alias = alias or dashscope_alias(t)
    with t.bounded("The gateway must answer within the profile's request bound."):
        response = t.client.post_image(alias, t.prompt(scenario=scenario))
    # A gateway that never calls the provider cannot be judged on surfacing its error: say so,
    # rather than blame the envelope of an answer the upstream fault had no part in.
    if must_play:
        t.expect_played(scenario, f"{response.status_code} {short(response.text)}")
    return response


def is_raw_provider_body(body: object) -> bool:
    return isinstance(body, dict) and "error" not in body and (
        {"code", "request_id"} <= body.keys() or {"title", "detail"} <= body.keys())


def error_is_surfaced(t: CheckContext, scenario: str) -> None:
    response = faulty_request(t, scenario)
    try:
        body = response.json()
    except ValueError:
        body = None
    t.expect(response.status_code >= 400,
             f"An upstream {scenario} must not reach the client as success.",
             "a non-2xx status with an error envelope", f"{response.status_code} {short(response.text)}")
    t.expect(not is_raw_provider_body(body),
             "The provider's raw error body must be translated, not passed through.",
             '{"error": {"message", "type", "code"}}', short(response.text))
    t.expect(is_error_envelope(body), "The error must be an OpenAI error envelope.",
             '{"error": {"message", "type", "code"}}', short(response.text))


@check("ERR-001", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS)
def upstream_400_surfaces_as_error(t: CheckContext) -> None:
    """An upstream 400 reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "error-400")


@check("ERR-002", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS)
def upstream_401_surfaces_as_error(t: CheckContext) -> None:
    """An upstream 401 reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "error-401")


@check("ERR-003", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS)
def upstream_403_surfaces_as_error(t: CheckContext) -> None:
    """An upstream 403 reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "error-403")


@check("ERR-004", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS)
def upstream_429_surfaces_as_error(t: CheckContext) -> None:
    """An upstream 429 reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "error-429")


@check("ERR-005", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS)
def upstream_500_surfaces_as_error(t: CheckContext) -> None:
    """An upstream 500 reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "error-500")


@check("ERR-006", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS)
def upstream_503_surfaces_as_error(t: CheckContext) -> None:
    """An upstream 503 reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "error-503")


@check("ERR-007", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS)
def upstream_timeout_surfaces_as_error(t: CheckContext) -> None:
    """An upstream that never answers reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "fault-hang")


@check("ERR-008", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS)
def dropped_connection_surfaces_as_error(t: CheckContext) -> None:
    """A connection the upstream drops mid-answer reaches the client as an error envelope."""
    error_is_surfaced(t, "fault-drop")


@check("ERR-009", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS)
def malformed_body_surfaces_as_error(t: CheckContext) -> None:
    """An upstream body that is not JSON reaches the client as an error envelope."""
    error_is_surfaced(t, "fault-malformed")


@check("ERR-010", SHOULD, needs="image.generate", spec=SPEC_OPENAI_ERRORS)
def error_statuses_follow_usual_mapping(t: CheckContext) -> None:
    """Client errors stay 4xx, 429 stays 429, upstream faults become 5xx."""
    wrong = []
    for scenario, wanted in EXPECTED_CLASS.items():
        status = faulty_request(t, scenario).status_code
        seen = "429" if status == 429 else f"{status // 100}xx"
        if seen != wanted and not (wanted == "4xx" and seen == "429"):
            wrong.append(f"{scenario}: {status} (want {wanted})")
    t.expect(not wrong, "Error statuses must keep their meaning.",
             "400/401/403 -> 4xx, 429 -> 429, 500/503/timeout/drop/malformed -> 5xx", "; ".join(wrong))


@check("ERR-011", SHOULD, needs="image.generate", spec=SPEC_RFC9110_RETRY_AFTER)
def retry_after_survives(t: CheckContext) -> None:
    """An upstream 429's Retry-After reaches the client (or the gateway retried and succeeded)."""
    alias = t.route("openai", "image.generate").alias
    response = faulty_request(t, "error-429", alias)
    if response.status_code == 200:
        # The scenario answers 429 to every attempt, so a 200 must carry real images to count.
        t.expect(json_object(response).get("data"), "A 200 after a 429 must be a real result.",
                 "data[] from a successful retry", short(response.text))
        t.note("the gateway retried and succeeded: acceptable")
        return
    retry_after = response.headers.get("retry-after")
    t.note(f"client got {response.status_code} with Retry-After: {retry_after}")
    t.expect(response.status_code == 429 and retry_after,
             "A 429 must keep the upstream's Retry-After so clients back off correctly.",
             "429 with Retry-After: 7", f"{response.status_code}, Retry-After: {retry_after}")


@check("ERR-012", SHOULD, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS)
def provider_reason_is_visible(t: CheckContext) -> None:
    """The provider's own error code or message is visible to the client."""
    missing = []
    for scenario, reasons in PROVIDER_REASONS.items():
        text = faulty_request(t, scenario).text
        if not any(r.lower() in text.lower() for r in reasons):
            missing.append(f"{scenario}: {short(text, 160)}")
    t.expect(not missing, "The client must learn the provider's reason for an error.",
             "the provider's code (InvalidParameter, InternalError) or message", "; ".join(missing))


@check("ERR-013", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS)
def upstream_timeout_is_bounded(t: CheckContext) -> None:
    """No upstream timeout makes the client wait past the profile's request bound."""
    alias = dashscope_alias(t)
    with t.bounded("An upstream that hangs must not hang the client."):
        response = t.client.post_image(alias, t.prompt(scenario="fault-hang"))
    t.expect_played("fault-hang", f"{response.status_code} {short(response.text)}")
    t.expect(response.status_code >= 400,
             "The gateway must give up on the upstream, not wait out its hang and relay what follows.",
             "an error before the upstream's hang ends", f"{response.status_code} {short(response.text)}")
    t.note(f"answered {response.status_code} after {response.elapsed.total_seconds():.1f}s")


@check("ERR-014", MUST, needs="image.generate", spec=SPEC_OPENAI_ERRORS)
def provider_key_never_reaches_client(t: CheckContext) -> None:
    """The gateway's provider key never appears in what the client receives (bodies, headers)."""
    keys = [k for k in t.env.provider_keys.values() if k]
    leaks = []
    for scenario in ("error-400", "error-401", "error-500", "fault-malformed"):
        # A key must never leak, whether or not the provider played the fault.
        response = faulty_request(t, scenario, must_play=False)
        seen = response.text + " " + " ".join(f"{k}: {v}" for k, v in response.headers.items())
        leaks += [f"{scenario}: a provider key in the answer" for key in keys if key in seen]
        if not t.env.gateway_started:
            # Its provider keys are not gwconf's to know: look for anything shaped like one.
            leaks += [f"{scenario}: a key-shaped token in the answer" for p in KEY_PATTERNS if p.search(seen)]
    t.expect(not leaks, "A provider key must never reach the client.", "no provider key in any answer",
             "; ".join(leaks))


@check("ERR-015", MUST, needs="async", spec=SPEC_DASHSCOPE_TASKS)
def poll_fault_fails_the_job(t: CheckContext) -> None:
    """An upstream fault while polling ends the job as failed with the reason; the job is not lost."""
    route = t.route_where("image.generate", lambda r: r.provider == "dashscope" and
                          r.upstream_model in DASHSCOPE_TASK_MODELS, "a DashScope async-task model")
    with t.bounded():
        result = t.client.generate_image(route.alias, t.prompt(scenario="image-async-poll-error"))
    t.expect_played("image-async-poll-error", describe(result))
    t.expect(result.job_id and not result.timed_out and result.status == "failed",
             "A fault while polling the provider must end the job as failed.",
             "job status failed", describe(result))
    t.expect("InternalError" in failure_text(result) or "internal error" in failure_text(result).lower(),
             "The failed job must carry the provider's reason.", "InternalError", short(result.body))
    assert result.job_id
    again = t.client.poll(result.job_id)
    t.expect(again.status_code == 200, "The failed job must stay readable.", "200 on GET of the job",
             f"{again.status_code} {short(again.text)}")
