"""AUTH: a request without a valid client key is refused before anything reaches a provider,
and no placeholder credential ever travels upstream.

Another tenant's key on a job it does not own is SEC-001's case (suites/security.py), and the
client's own key reaching a provider is SEC-002's: both are judged there, not repeated here.
"""

from __future__ import annotations

import base64

from harness.api import (
    MUST,
    SPEC_OPENAI_ERRORS,
    SPEC_OWASP_AUTH,
    Answer,
    CheckSkipped,
    Driver,
    Judgement,
    check,
    is_error_envelope,
    json_object,
    paths,
    placeholder_credential,
    scenario,
    short,
)

SCENARIO = "client-auth"
SPEC_OPENAI_AUTH = "https://platform.openai.com/docs/api-reference/authentication"
# What `Bearer ${KEY}` renders to when KEY is unset: the commonest placeholder a client sends.
PLACEHOLDER = "Bearer undefined"
# Basic credentials for the user `undefined` with no password: a scheme the gateway does not speak.
MALFORMED = "Basic " + base64.b64encode(b"undefined:").decode()
WRONG_KEY = "Bearer sk-gwconf-not-a-client-key-7f3a9c2e"


@scenario(SCENARIO)
def send_without_a_valid_key(s: Driver) -> None:
    """One image request per way of lacking a valid key, then one with the client's key (so the
    forwarding scan sees the credential the gateway really sends upstream)."""
    # OpenAI's image route where there is one: the request every OpenAI-compatible gateway serves.
    routes = s.profile.routes_for("image.generate")
    route = s.profile.route_for("openai", "image.generate") or (routes[0] if routes else None)
    if route is None:
        return
    alias = route.alias
    body = {"model": alias}
    path = "/v1/images/generations"
    s.request("no key", "POST", path, alias=alias, key="", body=body)
    s.request("empty bearer", "POST", path, alias=alias, key="", body=body, headers={"Authorization": "Bearer"})
    s.request("malformed header", "POST", path, alias=alias, key="", body=body, headers={"Authorization": MALFORMED})
    s.request("placeholder key", "POST", path, alias=alias, key="", body=body, headers={"Authorization": PLACEHOLDER})
    s.request("wrong key", "POST", path, alias=alias, key="", body=body, headers={"Authorization": WRONG_KEY})
    s.request("key in query", "POST", path, alias=alias, key="", body=body,
              params={"api_key": s.env.api_key, "key": s.env.api_key})
    s.request("with key", "POST", path, alias=alias, body=body)
    s.keep_stray()


# The refusal steps in scenario order, each with its check.
REFUSALS = {"no key": "AUTH-001", "empty bearer": "AUTH-002", "malformed header": "AUTH-003",
            "placeholder key": "AUTH-004", "wrong key": "AUTH-005", "key in query": "AUTH-006"}


def same_answer_before(t: Judgement, step: str, answer: Answer) -> set[str]:
    """The checks of the earlier bad credentials that got this very answer: one behaviour, reported
    by the first credential it met."""
    found = set()
    for earlier in list(REFUSALS)[:list(REFUSALS).index(step)]:
        before = t.recording.step(earlier)
        seen = before.value.get("answer") if before is not None else None
        if isinstance(seen, dict) and (seen.get("status_code"), seen.get("text")) == (answer.status_code, answer.text):
            found.add(REFUSALS[earlier])
    return found


def expect_refused(t: Judgement, step: str) -> None:
    """401 or 403 in an OpenAI error envelope, and nothing of the request upstream."""
    if t.profile.client_auth == "none":
        raise CheckSkipped('the profile declares that the gateway authenticates no client (client_auth = "none")'
                           + (f": {t.profile.key_model}" if t.profile.key_model else ""))
    t.route_where("image.generate", lambda _: True, "an image model")
    answer = t.answer(step, bounded=True)
    seen = f"{answer.status_code} {short(answer.text)}"
    t.expect(answer.status_code in (401, 403), "A request without a valid client key must be refused.",
             "401 or 403", seen, unless=same_answer_before(t, step, answer))
    t.expect(is_error_envelope(json_object(answer)), "The refusal must be an OpenAI error envelope.",
             '{"error": {"message": ...}}', seen)
    sent = t.upstream(step)
    t.expect(not sent, "Nothing of a refused request may reach a provider.", "no upstream request",
             ", ".join(paths(sent)))


@check("AUTH-001", MUST, needs="image.generate", spec=SPEC_OWASP_AUTH, scenario=SCENARIO)
def no_key_is_refused(t: Judgement) -> None:
    """A request with no Authorization header is refused (401/403) and reaches no provider."""
    expect_refused(t, "no key")


@check("AUTH-002", MUST, needs="image.generate", spec=SPEC_OPENAI_AUTH, scenario=SCENARIO)
def empty_bearer_is_refused(t: Judgement) -> None:
    """`Authorization: Bearer` with nothing after it is refused and reaches no provider."""
    expect_refused(t, "empty bearer")


@check("AUTH-003", MUST, needs="image.generate", spec=SPEC_OPENAI_AUTH, scenario=SCENARIO)
def malformed_header_is_refused(t: Judgement) -> None:
    """An Authorization header in another scheme (Basic) is refused and reaches no provider."""
    expect_refused(t, "malformed header")


@check("AUTH-004", MUST, needs="image.generate", spec=SPEC_OWASP_AUTH, scenario=SCENARIO)
def placeholder_key_is_refused(t: Judgement) -> None:
    """`Bearer undefined` (an unset variable in a key template) is refused and reaches no provider."""
    expect_refused(t, "placeholder key")


@check("AUTH-005", MUST, needs="image.generate", spec=SPEC_OPENAI_ERRORS, scenario=SCENARIO)
def wrong_key_is_refused(t: Judgement) -> None:
    """A key the gateway never issued is refused (OpenAI: 401 Invalid Authentication) and reaches no provider."""
    expect_refused(t, "wrong key")


@check("AUTH-006", MUST, needs="image.generate", spec=SPEC_OWASP_AUTH, scenario=SCENARIO)
def key_in_query_is_refused(t: Judgement) -> None:
    """The client key in the query string (OWASP API2: credentials in the URL) is refused, not served."""
    expect_refused(t, "key in query")


@check("AUTH-007", MUST, needs="image.generate", spec=SPEC_OWASP_AUTH, scenario=SCENARIO)
def no_placeholder_credential_upstream(t: Judgement) -> None:
    """No provider receives a placeholder credential (`undefined`, `null`, an empty bearer, ...).

    Judged over this scenario's upstream requests and every one of the run so far that carried a
    placeholder. It runs whether or not the gateway authenticates clients (client_auth = "none"
    included). The client's own key reaching a provider is SEC-002's judgement."""
    t.route_where("image.generate", lambda _: True, "an image model")
    scanned = [*t.upstream(), *t.recording.stray]
    if not scanned:  # the gateway reached no provider at all: its routing check says why
        t.step("with key")  # unless the request itself went unanswered: then nothing could be judged
        t.blocked("with key", "The requests must reach the providers for the check to see what travels.",
                  "upstream requests, the one with the client's key at least", "no upstream request")
    found = [f"{r.provider} {r.method} {r.path} ({placeholder_credential(r)})" for r in scanned
             if placeholder_credential(r) is not None]
    t.expect(not found, "A provider must never receive a placeholder credential.",
             "a real provider key on every upstream request", "; ".join(sorted(set(found))))
