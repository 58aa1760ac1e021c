"""ERR: what the client sees when the upstream misbehaves.

One scenario plays every upstream fault once on the sync DashScope image alias; ERR-001 to
ERR-014 judge that one recording."""

from __future__ import annotations

from harness.api import (
    MUST,
    SCRUBBED_SECRET,
    SHOULD,
    SPEC_DASHSCOPE_ERRORS,
    SPEC_DASHSCOPE_TASKS,
    SPEC_OPENAI_ERRORS,
    SPEC_RFC9110_RETRY_AFTER,
    Answer,
    Driver,
    Judgement,
    check,
    describe,
    failure_text,
    is_dashscope_sync_image,
    is_dashscope_task_image,
    is_error_envelope,
    json_object,
    scenario,
    short,
)

# play -> the status class a client should see (upstream client errors stay 4xx,
# throttling stays 429, upstream faults become 5xx)
EXPECTED_CLASS = {
    "error-400": "4xx", "error-401": "4xx", "error-403": "4xx", "error-429": "429",
    "error-500": "5xx", "error-503": "5xx", "fault-hang": "5xx", "fault-drop": "5xx",
    "fault-malformed": "5xx",
}
PROVIDER_REASONS = {"error-400": ("InvalidParameter", "Required parameter"),
                    "error-500": ("InternalError", "internal error")}
OPENAI_429 = "openai error-429"
COOKIE_HEADERS = ("set-cookie", "cookie")
FAULTS = "upstream-faults"
POLL_FAULT = "image-async-poll-error"


@scenario(FAULTS)
def play_each_upstream_fault(s: Driver) -> None:
    """Play each upstream fault once on the sync DashScope image alias, and a 429 on OpenAI's."""
    dashscope = s.route_where("image.generate", is_dashscope_sync_image)
    if dashscope is not None:
        for play in EXPECTED_CLASS:
            s.post_image(play, dashscope.alias, play=play)
    openai = s.profile.route_for("openai", "image.generate")
    if openai is not None:
        s.post_image(OPENAI_429, openai.alias, play="error-429")


@scenario("task-poll-fault")
def poll_fault_on_a_task(s: Driver) -> None:
    """A DashScope task whose poll meets an upstream 500; then the job read once more."""
    route = s.route_where("image.generate", is_dashscope_task_image)
    if route is None:
        return
    result = s.generate(POLL_FAULT, route.alias, play=POLL_FAULT)
    if result is not None and result.job_id:
        s.poll("read again", result.job_id)


def dashscope_alias(t: Judgement) -> str:
    return t.route_where("image.generate", is_dashscope_sync_image, "a DashScope multimodal image model").alias


def faulty_answer(t: Judgement, play: str, must_play: bool = True, step: str | None = None) -> Answer:
    """The answer to a plain image request the upstream answered with `play`; a hang past the
    bound fails the check."""
    step = step or play
    if step == play:
        dashscope_alias(t)
    response = t.answer(step, bounded="The gateway must answer within the profile's request bound.")
    # A gateway that never calls the provider cannot be judged on surfacing its error: say so,
    # rather than blame the envelope of an answer the upstream fault had no part in.
    if must_play:
        t.expect_played(step, play, f"{response.status_code} {short(response.text)}")
    return response


def is_raw_provider_body(body: object) -> bool:
    return isinstance(body, dict) and "error" not in body and (
        {"code", "request_id"} <= body.keys() or {"title", "detail"} <= body.keys())


def error_is_surfaced(t: Judgement, play: str) -> None:
    response = faulty_answer(t, play)
    try:
        body = response.json()
    except ValueError:
        body = None
    t.expect(response.status_code >= 400,
             f"An upstream {play} must not reach the client as success.",
             "a non-2xx status with an error envelope", f"{response.status_code} {short(response.text)}")
    t.expect(not is_raw_provider_body(body),
             "The provider's raw error body must be translated, not passed through.",
             '{"error": {"message", "type", "code"}}', short(response.text))
    t.expect(is_error_envelope(body), "The error must be an OpenAI error envelope.",
             '{"error": {"message", "type", "code"}}', short(response.text))


@check("ERR-001", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario=FAULTS)
def upstream_400_surfaces_as_error(t: Judgement) -> None:
    """An upstream 400 reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "error-400")


@check("ERR-002", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario=FAULTS)
def upstream_401_surfaces_as_error(t: Judgement) -> None:
    """An upstream 401 reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "error-401")


@check("ERR-003", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario=FAULTS)
def upstream_403_surfaces_as_error(t: Judgement) -> None:
    """An upstream 403 reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "error-403")


@check("ERR-004", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario=FAULTS)
def upstream_429_surfaces_as_error(t: Judgement) -> None:
    """An upstream 429 reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "error-429")


@check("ERR-005", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario=FAULTS)
def upstream_500_surfaces_as_error(t: Judgement) -> None:
    """An upstream 500 reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "error-500")


@check("ERR-006", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario=FAULTS)
def upstream_503_surfaces_as_error(t: Judgement) -> None:
    """An upstream 503 reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "error-503")


@check("ERR-007", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario=FAULTS)
def upstream_timeout_surfaces_as_error(t: Judgement) -> None:
    """An upstream that never answers reaches the client as a non-2xx OpenAI error envelope."""
    error_is_surfaced(t, "fault-hang")


@check("ERR-008", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario=FAULTS)
def dropped_connection_surfaces_as_error(t: Judgement) -> None:
    """A connection the upstream drops mid-answer reaches the client as an error envelope."""
    error_is_surfaced(t, "fault-drop")


@check("ERR-009", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario=FAULTS)
def malformed_body_surfaces_as_error(t: Judgement) -> None:
    """An upstream body that is not JSON reaches the client as an error envelope."""
    error_is_surfaced(t, "fault-malformed")


@check("ERR-010", SHOULD, needs="image.generate", spec=SPEC_OPENAI_ERRORS, scenario=FAULTS)
def error_statuses_follow_usual_mapping(t: Judgement) -> None:
    """Client errors stay 4xx, 429 stays 429, upstream faults become 5xx."""
    wrong = []
    for play, wanted in EXPECTED_CLASS.items():
        status = faulty_answer(t, play).status_code
        seen = "429" if status == 429 else f"{status // 100}xx"
        if seen != wanted and not (wanted == "4xx" and seen == "429"):
            wrong.append(f"{play}: {status} (want {wanted})")
    t.expect(not wrong, "Error statuses must keep their meaning.",
             "400/401/403 -> 4xx, 429 -> 429, 500/503/timeout/drop/malformed -> 5xx", "; ".join(wrong))


@check("ERR-011", SHOULD, needs="image.generate", spec=SPEC_RFC9110_RETRY_AFTER, scenario=FAULTS)
def retry_after_survives(t: Judgement) -> None:
    """An upstream 429's Retry-After reaches the client (or the gateway retried and succeeded)."""
    t.route("openai", "image.generate")
    response = faulty_answer(t, "error-429", step=OPENAI_429)
    if response.status_code == 200:
        # The play answers 429 to every attempt, so a 200 must carry real images to count.
        t.expect(json_object(response).get("data"), "A 200 after a 429 must be a real result.",
                 "data[] from a successful retry", short(response.text))
        t.note("the gateway retried and succeeded: acceptable")
        return
    retry_after = response.headers.get("retry-after")
    t.note(f"client got {response.status_code} with Retry-After: {retry_after}")
    t.expect(response.status_code == 429 and retry_after,
             "A 429 must keep the upstream's Retry-After so clients back off correctly.",
             "429 with Retry-After: 7", f"{response.status_code}, Retry-After: {retry_after}")


@check("ERR-012", SHOULD, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario=FAULTS)
def provider_reason_is_visible(t: Judgement) -> None:
    """The provider's own error code or message is visible to the client."""
    missing = []
    for play, reasons in PROVIDER_REASONS.items():
        text = faulty_answer(t, play).text
        if not any(r.lower() in text.lower() for r in reasons):
            missing.append(f"{play}: {short(text, 160)}")
    t.expect(not missing, "The client must learn the provider's reason for an error.",
             "the provider's code (InvalidParameter, InternalError) or message", "; ".join(missing))


@check("ERR-013", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario=FAULTS)
def upstream_timeout_is_bounded(t: Judgement) -> None:
    """No upstream timeout makes the client wait past the profile's request bound."""
    dashscope_alias(t)
    response = t.answer("fault-hang", bounded="An upstream that hangs must not hang the client.")
    t.expect_played("fault-hang", "fault-hang", f"{response.status_code} {short(response.text)}")
    t.expect(response.status_code >= 400,
             "The gateway must give up on the upstream, not wait out its hang and relay what follows.",
             "an error before the upstream's hang ends", f"{response.status_code} {short(response.text)}")
    t.note(f"answered {response.status_code} after {response.elapsed.total_seconds():.1f}s")


@check("ERR-014", MUST, needs="image.generate", spec=SPEC_OPENAI_ERRORS, scenario=FAULTS)
def provider_key_never_reaches_client(t: Judgement) -> None:
    """The gateway's provider key never appears in what the client receives (bodies, headers)."""
    # Recordings hold no key: a provider key in an answer shows as its fingerprint.
    marks = t.facts.provider_key_marks
    leaks = []
    for play in ("error-400", "error-401", "error-500", "fault-malformed"):
        # A key must never leak, whether or not the provider played the fault.
        response = faulty_answer(t, play, must_play=False)
        seen = response.text + " " + " ".join(f"{k}: {v}" for k, v in response.headers.items())
        leaks += [f"{play}: a provider key in the answer" for mark in marks if mark in seen]
        if not t.facts.gateway_started:
            # Its provider keys are not gwconf's to know. Anything shaped like a key was scrubbed
            # to a fingerprint on recording, so a fingerprint outside the cookie headers is one.
            visible = response.text + " ".join(v for k, v in response.headers.items() if k not in COOKIE_HEADERS)
            if SCRUBBED_SECRET in visible:
                leaks.append(f"{play}: a key-shaped token in the answer")
    t.expect(not leaks, "A provider key must never reach the client.", "no provider key in any answer",
             "; ".join(leaks))


@check("ERR-015", MUST, needs="async", spec=SPEC_DASHSCOPE_TASKS, scenario="task-poll-fault")
def poll_fault_fails_the_job(t: Judgement) -> None:
    """An upstream fault while polling ends the job as failed with the reason; the job is not lost."""
    t.route_where("image.generate", is_dashscope_task_image, "a DashScope async-task model")
    result = t.job(POLL_FAULT, bounded=True)
    t.expect_played(POLL_FAULT, POLL_FAULT, describe(result))
    t.expect(result.job_id and not result.timed_out and result.status == "failed",
             "A fault while polling the provider must end the job as failed.",
             "job status failed", describe(result))
    t.expect("InternalError" in failure_text(result) or "internal error" in failure_text(result).lower(),
             "The failed job must carry the provider's reason.", "InternalError", short(result.body))
    again = t.answer("read again")
    t.expect(again.status_code == 200, "The failed job must stay readable.", "200 on GET of the job",
             f"{again.status_code} {short(again.text)}")
