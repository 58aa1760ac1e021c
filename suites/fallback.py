"""FALLBACK: a chain that falls back from one provider to another lands on the right endpoint."""

from __future__ import annotations

from harness.capture import CapturedRequest
from harness.checklib import (
    DASHSCOPE_IMAGE_PATHS,
    SPEC_DASHSCOPE_ERRORS,
    SPEC_QWEN_IMAGE,
    dashscope_parameters,
    is_error_envelope,
    json_object,
    paths,
    short,
    submits,
)
from harness.context import CheckContext
from harness.errors import CheckSkipped
from harness.profile import Fallback, FallbackTarget
from harness.registry import MUST, SHOULD, check

SPEC_FALLBACKS = "https://docs.litellm.ai/docs/proxy/reliability"


def image_paths(target: FallbackTarget) -> set[str]:
    if target.provider == "dashscope":
        return set(DASHSCOPE_IMAGE_PATHS)
    if target.provider == "openai":
        return {"/v1/images/generations"}
    return {f"/v1/models/{target.upstream_model.split(':')[0]}/predictions", "/v1/predictions"}


def chain(t: CheckContext) -> Fallback:
    for fallback in t.profile.fallbacks:
        if fallback.capability == "image.generate":
            return fallback
    raise CheckSkipped("profile declares no image fallback alias")


def lands_on(record: CapturedRequest, target: FallbackTarget) -> bool:
    body = record.json_body()
    model = body.get("model") or record.path
    return (record.provider == target.provider and record.path in image_paths(target)
            and (target.upstream_model in str(model) or target.provider == "replicate"))


def fall_back(t: CheckContext, scenario: str, **params: object) -> tuple[Fallback, list[CapturedRequest], object]:
    """Fail the first target with `scenario`; return the chain, the upstream calls, the answer."""
    fallback = chain(t)
    first = fallback.targets[0]
    with t.bounded("The fallback must answer within the profile's bound."):
        result = t.client.generate_image(fallback.alias, t.prompt(scenario=scenario, at=first.provider), **params)
    sent = sorted(submits(t.upstream()), key=lambda r: r.seq)
    t.note("chain: " + " -> ".join(paths(sent)))
    t.expect(any(r.provider == first.provider and r.scenario == scenario for r in sent),
             f"The chain must start at its first target, which answers {scenario}.",
             f"{first.provider} playing {scenario} first", ", ".join(paths(sent)) or "no upstream request")
    return fallback, sent, result


def expect_second_target(t: CheckContext, scenario: str) -> None:
    fallback, sent, result = fall_back(t, scenario)
    second = fallback.targets[1]
    t.expect(any(lands_on(r, second) for r in sent),
             f"After the first target's {scenario}, the request must land on the next target's image endpoint.",
             f"{second.provider} POST {sorted(image_paths(second))} model={second.upstream_model}",
             ", ".join(paths(sent)) or "no upstream request")
    stray = [r for r in sent if r.provider == second.provider and not lands_on(r, second)]
    t.expect(not stray, "The fallback must never reach a chat or compatible-mode endpoint.",
             f"only {sorted(image_paths(second))}", ", ".join(paths(stray)))
    t.expect(result.status == "succeeded" and result.data,  # type: ignore[attr-defined]
             "The client must get a normalized ImagesResponse from the fallback target.",
             "data[] from the second target", short(result.body))  # type: ignore[attr-defined]


@check("FALLBACK-001", MUST, needs="fallback", spec=SPEC_FALLBACKS)
def throttled_first_target_falls_back(t: CheckContext) -> None:
    """A 429 from the first target falls back to the next target's image endpoint and model."""
    expect_second_target(t, "error-429")


@check("FALLBACK-002", MUST, needs="fallback", spec=SPEC_FALLBACKS)
def failing_first_target_falls_back(t: CheckContext) -> None:
    """A 500 from the first target falls back to the next target's image endpoint and model."""
    expect_second_target(t, "error-500")


@check("FALLBACK-003", SHOULD, needs="fallback", spec=SPEC_FALLBACKS)
def timing_out_first_target_falls_back(t: CheckContext) -> None:
    """A first target that times out falls back to the next target."""
    expect_second_target(t, "fault-hang")


@check("FALLBACK-004", MUST, needs="fallback", spec=SPEC_QWEN_IMAGE)
def fallback_speaks_the_next_providers_dialect(t: CheckContext) -> None:
    """A fallback to DashScope converts the request: size as W*H, n in parameters."""
    fallback = chain(t)
    if fallback.targets[1].provider != "dashscope":
        raise CheckSkipped("the chain's second target is not DashScope")
    _, sent, _ = fall_back(t, "error-503", size="1024x1024", n=1)
    landed = [r for r in sent if lands_on(r, fallback.targets[1])]
    t.expect(landed, "The request must reach DashScope's image endpoint.", "a DashScope image request",
             ", ".join(paths(sent)))
    params = dashscope_parameters(landed[0])
    t.expect(params.get("size") == "1024*1024" and params.get("n") == 1,
             "The fallback request must use DashScope's parameters.",
             "parameters.size = '1024*1024', parameters.n = 1", short(landed[0].json_body()))


@check("FALLBACK-005", MUST, needs="fallback", spec=SPEC_DASHSCOPE_ERRORS)
def exhausted_chain_reports_last_failure(t: CheckContext) -> None:
    """When every target fails the client gets one error envelope naming the last failure."""
    fallback = chain(t)
    with t.bounded("The chain must answer within the profile's bound."):
        response = t.client.post_image(fallback.alias, t.prompt(scenario="error-500"))
    tried = {r.provider for r in t.upstream() if r.scenario == "error-500"}
    t.expect(tried >= {target.provider for target in fallback.targets},
             "Every target of the chain must be tried before giving up.",
             ", ".join(target.provider for target in fallback.targets), ", ".join(sorted(tried)) or "none")
    body = json_object(response)
    t.expect(response.status_code >= 500 and is_error_envelope(body),
             "An exhausted chain must answer one 5xx error envelope.", "5xx {error: {...}}",
             f"{response.status_code} {short(response.text)}")
    last = fallback.targets[-1].provider
    t.expect(last in response.text.lower() or "internalerror" in response.text.lower(),
             "The error must name the last target's failure.", f"a mention of {last} or its code InternalError",
             short(response.text))


@check("FALLBACK-006", SHOULD, needs="fallback", spec=SPEC_FALLBACKS)
def client_error_does_not_fall_back(t: CheckContext) -> None:
    """A 400 from the first target is the client's mistake: it is returned, not retried elsewhere."""
    fallback, sent, _ = fall_back(t, "error-400")
    others = [r for r in sent if r.provider != fallback.targets[0].provider]
    t.expect(not others, "A 400 must not trigger a fallback.", f"only {fallback.targets[0].provider}",
             ", ".join(paths(sent)))
