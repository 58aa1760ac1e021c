"""ERR: what the client sees when the upstream misbehaves.

One scenario plays every upstream fault once on the first image alias of each provider the
profile routes (DashScope's sync one, OpenAI's, Replicate's), each with that provider's own
error cassette; ERR-001 to ERR-014 judge that one recording, provider by provider. A provider
the gateway cannot reach fails that provider's assertions only: the others are judged as usual."""

from __future__ import annotations

from collections.abc import Callable

from harness.api import (
    MUST,
    SCRUBBED_SECRET,
    SHOULD,
    SPEC_DASHSCOPE_ERRORS,
    SPEC_DASHSCOPE_TASKS,
    SPEC_OPENAI_ERRORS,
    SPEC_RFC9110_RETRY_AFTER,
    Answer,
    CheckSkipped,
    Driver,
    GatewayProfile,
    Judgement,
    ModelRoute,
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
# provider -> fault -> the provider's own cassette that plays it (Replicate answers a bad
# request with 422; no 403 or 503 body of its is documented, so it has no cassette for them).
PROVIDER_PLAYS: dict[str, dict[str, str]] = {
    "dashscope": {play: play for play in EXPECTED_CLASS},
    "openai": {play: play for play in EXPECTED_CLASS},
    "replicate": {"error-400": "error-422", "error-401": "error-401", "error-429": "error-429",
                  "error-500": "error-500", "fault-hang": "fault-hang", "fault-drop": "fault-drop",
                  "fault-malformed": "fault-malformed"},
}
# provider -> cassette -> the provider's own code or message, as its cassette answers it
# (cassettes/<provider>/<play>.yaml). A generic "internal error" is none of these.
PROVIDER_REASONS: dict[str, dict[str, tuple[str, ...]]] = {
    "dashscope": {"error-400": ("InvalidParameter", "Required parameter"),
                  "error-500": ("InternalError", "An internal error has occured")},
    "openai": {"error-400": ("moderation_blocked", "rejected by the safety system"),
               "error-500": ("The server had an error while processing your request",)},
    "replicate": {"error-422": ("Input validation failed", "prompt is required"),
                  "error-500": ("An unexpected error occurred",)},
}
OPENAI_429 = "openai error-429"
COOKIE_HEADERS = ("set-cookie", "cookie")
FAULTS = "upstream-faults"
POLL_FAULT = "image-async-poll-error"


def fault_route(profile: GatewayProfile, provider: str) -> ModelRoute | None:
    """The image alias a provider's faults are played on (DashScope's sync one: its task models
    answer faults through the task API, which ASYNC and ERR-015 judge)."""
    for route in profile.routes_for("image.generate"):
        if route.provider == provider and (provider != "dashscope" or is_dashscope_sync_image(route)):
            return route
    return None


def fault_step(provider: str, play: str) -> str:
    """DashScope's steps keep the fault's bare name; the other providers' are prefixed."""
    return play if provider == "dashscope" else f"{provider} {play}"


@scenario(FAULTS, waits=True)
def play_each_upstream_fault(s: Driver) -> None:
    """Play each upstream fault once on the first image alias of every provider the profile routes."""
    def play_all(provider: str, alias: str) -> Callable[[Driver], None]:
        def program(d: Driver) -> None:
            for play, cassette in PROVIDER_PLAYS[provider].items():
                d.post_image(fault_step(provider, play), alias, play=cassette)
        return program

    # The providers side by side: each has a hang, and a hang lasts as long as the gateway waits.
    routes = [(provider, fault_route(s.profile, provider)) for provider in PROVIDER_PLAYS]
    s.side_by_side([play_all(provider, route.alias) for provider, route in routes if route is not None])


@scenario("task-poll-fault")
def poll_fault_on_a_task(s: Driver) -> None:
    """A DashScope task whose poll meets an upstream 500; then the job read once more."""
    route = s.route_where("image.generate", is_dashscope_task_image)
    if route is None:
        return
    result = s.generate(POLL_FAULT, route.alias, play=POLL_FAULT)
    if result is not None and result.job_id:
        s.poll("read again", result.job_id)


def fault_plays(t: Judgement, play: str) -> list[tuple[str, str, str]]:
    """(provider, step, cassette) for every provider the profile routes that has `play`; the
    check skips when there is none."""
    found = [(provider, fault_step(provider, play), plays[play]) for provider, plays in PROVIDER_PLAYS.items()
             if play in plays and fault_route(t.profile, provider) is not None]
    if not found:
        raise CheckSkipped(f"profile claims no image model of a provider gwconf plays {play!r} for")
    return found


def faulty_answer(t: Judgement, step: str, play: str, must_play: bool = True) -> Answer:
    """The answer to a plain image request the upstream answered with `play`; a hang past the
    bound fails the check."""
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
    """Judged for each provider in turn: the first one that mishandles the fault fails the check."""
    for provider, step, cassette in fault_plays(t, play):
        response = faulty_answer(t, step, cassette)
        try:
            body = response.json()
        except ValueError:
            body = None
        t.expect(response.status_code >= 400,
                 f"An upstream {cassette} from {provider} must not reach the client as success.",
                 "a non-2xx status with an error envelope", f"{response.status_code} {short(response.text)}")
        t.expect(not is_raw_provider_body(body),
                 f"The provider's raw error body ({provider}) must be translated, not passed through.",
                 '{"error": {"message", "type", "code"}}', short(response.text))
        t.expect(is_error_envelope(body), f"The error ({provider} {cassette}) must be an OpenAI error envelope.",
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
        for provider, step, cassette in fault_plays(t, play):
            status = faulty_answer(t, step, cassette).status_code
            seen = "429" if status == 429 else f"{status // 100}xx"
            if seen != wanted and not (wanted == "4xx" and seen == "429"):
                wrong.append(f"{provider} {cassette}: {status} (want {wanted})")
    t.expect(not wrong, "Error statuses must keep their meaning.",
             "400/401/403 -> 4xx, 429 -> 429, 500/503/timeout/drop/malformed -> 5xx", "; ".join(wrong))


@check("ERR-011", SHOULD, needs="image.generate", spec=SPEC_RFC9110_RETRY_AFTER, scenario=FAULTS)
def retry_after_survives(t: Judgement) -> None:
    """An upstream 429's Retry-After reaches the client (or the gateway retried and succeeded)."""
    t.route("openai", "image.generate")
    response = faulty_answer(t, OPENAI_429, "error-429")
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


@check("ERR-012", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario=FAULTS)
def provider_reason_is_visible(t: Judgement) -> None:
    """The provider's own error code or message is visible to the client, for every provider.

    Rests on the DashScope error-code page (spec): each failure names its cause in `code` and
    `message` ("InvalidParameter", "InternalError"), and on OpenAI's error guide ("error.message"
    and "error.code", e.g. moderation_blocked). A reason the client never sees leaves it nothing
    to act on (a content refusal reads as a server fault)."""
    missing = []
    for provider, reasons in PROVIDER_REASONS.items():
        if fault_route(t.profile, provider) is None:
            continue
        for cassette, words in reasons.items():
            play = next(p for p, c in PROVIDER_PLAYS[provider].items() if c == cassette)
            text = faulty_answer(t, fault_step(provider, play), cassette).text
            if not any(w.lower() in text.lower() for w in words):
                missing.append(f"{provider} {cassette}: {short(text, 160)}")
    t.expect(not missing, "The client must learn the provider's reason for an error.",
             "the provider's own code or message (" + "; ".join(
                 f"{p} {c}: {w[0]}" for p, r in PROVIDER_REASONS.items() for c, w in r.items()) + ")",
             "; ".join(missing))


@check("ERR-013", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario=FAULTS)
def upstream_timeout_is_bounded(t: Judgement) -> None:
    """No upstream timeout makes the client wait past the profile's request bound."""
    for provider, step, cassette in fault_plays(t, "fault-hang"):
        response = t.answer(step, bounded=f"An upstream ({provider}) that hangs must not hang the client.")
        t.expect_played(step, cassette, f"{response.status_code} {short(response.text)}")
        t.expect(response.status_code >= 400,
                 "The gateway must give up on the upstream, not wait out its hang and relay what follows.",
                 f"an error before {provider}'s hang ends", f"{response.status_code} {short(response.text)}")
        t.note(f"{provider}: answered {response.status_code} after {response.elapsed.total_seconds():.1f}s")


@check("ERR-014", MUST, needs="image.generate", spec=SPEC_OPENAI_ERRORS, scenario=FAULTS)
def provider_key_never_reaches_client(t: Judgement) -> None:
    """The gateway's provider key never appears in what the client receives (bodies, headers)."""
    # Recordings hold no key: a provider key in an answer shows as its fingerprint.
    marks = t.facts.provider_key_marks
    leaks = []
    for provider, step, cassette in [f for play in ("error-400", "error-401", "error-500", "fault-malformed")
                                     for f in fault_plays(t, play)]:
        # A key must never leak, whether or not the provider played the fault.
        response = faulty_answer(t, step, cassette, must_play=False)
        play = f"{provider} {cassette}"
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
    # The provider's own code or message (cassettes/dashscope/image-async-poll-error.yaml), not a
    # generic "internal error" any gateway could have made up.
    t.expect(any(reason in failure_text(result) for reason in PROVIDER_REASONS["dashscope"]["error-500"]),
             "The failed job must carry the provider's reason.",
             "InternalError or DashScope's message", short(result.body))
    again = t.answer("read again")
    t.expect(again.status_code == 200, "The failed job must stay readable.", "200 on GET of the job",
             f"{again.status_code} {short(again.text)}")
