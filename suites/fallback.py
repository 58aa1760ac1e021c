"""FALLBACK: a chain that falls back from one provider to another lands on the right endpoint."""

from __future__ import annotations

from harness.api import (
    MUST,
    SHOULD,
    SPEC_DASHSCOPE_ERRORS,
    SPEC_QWEN_IMAGE,
    CapturedRequest,
    CheckSkipped,
    Driver,
    Fallback,
    FallbackTarget,
    GatewayProfile,
    JobResult,
    Judgement,
    check,
    dashscope_parameters,
    image_paths_of,
    is_error_envelope,
    json_object,
    paths,
    scenario,
    short,
    submits,
)

SPEC_FALLBACKS = "https://docs.litellm.ai/docs/proxy/reliability"
CHAIN = "fallback-chain"
EXHAUSTED = "every target error-500"
# step -> (what the first target plays, the request's parameters)
FIRST_TARGET_FAULTS: dict[str, tuple[str, dict[str, object]]] = {
    "first error-429": ("error-429", {}),
    "first error-500": ("error-500", {}),
    "first fault-hang": ("fault-hang", {}),
    "first error-503": ("error-503", {"size": "1024x1024", "n": 1}),
    "first error-400": ("error-400", {}),
}


def image_chain(profile: GatewayProfile) -> Fallback | None:
    return next((f for f in profile.fallbacks if f.capability == "image.generate"), None)


@scenario(CHAIN, waits=True)
def fail_the_chain(s: Driver) -> None:
    """Fail the image fallback chain's first target with each fault, and then every target."""
    fallback = image_chain(s.profile)
    if fallback is None:
        return
    first = fallback.targets[0].provider
    for name, (play, params) in FIRST_TARGET_FAULTS.items():
        s.generate(name, fallback.alias, play=play, at=first, **params)
    s.post_image(EXHAUSTED, fallback.alias, play="error-500")


def image_paths(target: FallbackTarget) -> set[str]:
    return image_paths_of(target.provider, target.upstream_model)


def chain(t: Judgement) -> Fallback:
    fallback = image_chain(t.profile)
    if fallback is None:
        raise CheckSkipped("profile declares no image fallback alias")
    return fallback


def routing_to(t: Judgement, target: FallbackTarget) -> set[str]:
    """The routing checks whose failure means the gateway cannot reach this target at all: a
    chain cannot land where no plain request for that provider's model arrives either."""
    return t.routing_to(target.provider, target.upstream_model)


def lands_on(record: CapturedRequest, target: FallbackTarget) -> bool:
    body = record.json_body()
    model = body.get("model") or record.path
    return (record.provider == target.provider and record.path in image_paths(target)
            and (target.upstream_model in str(model) or target.provider == "replicate"))


def fall_back(t: Judgement, step: str) -> tuple[Fallback, list[CapturedRequest], JobResult]:
    """The chain whose first target failed with the step's fault: the upstream calls, the answer."""
    fallback = chain(t)
    first = fallback.targets[0]
    play = FIRST_TARGET_FAULTS[step][0]
    result = t.job(step, bounded="The fallback must answer within the profile's bound.")
    sent = sorted(submits(t.upstream(step)), key=lambda r: r.seq)
    t.note("chain: " + " -> ".join(paths(sent)))
    t.expect(any(r.provider == first.provider and r.scenario == play for r in sent),
             f"The chain must start at its first target, which answers {play}.",
             f"{first.provider} playing {play} first", ", ".join(paths(sent)) or "no upstream request",
             unless=() if any(r.provider == first.provider for r in sent) else routing_to(t, first))
    return fallback, sent, result


def expect_second_target(t: Judgement, step: str) -> None:
    fallback, sent, result = fall_back(t, step)
    play = FIRST_TARGET_FAULTS[step][0]
    second = fallback.targets[1]
    t.expect(any(lands_on(r, second) for r in sent),
             f"After the first target's {play}, the request must land on the next target's image endpoint.",
             f"{second.provider} POST {sorted(image_paths(second))} model={second.upstream_model}",
             ", ".join(paths(sent)) or "no upstream request", unless=routing_to(t, second))
    stray = [r for r in sent if r.provider == second.provider and not lands_on(r, second)]
    t.expect(not stray, "The fallback must never reach a chat or compatible-mode endpoint.",
             f"only {sorted(image_paths(second))}", ", ".join(paths(stray)))
    served = any(lands_on(r, second) and r.served for r in sent)
    t.expect(result.status == "succeeded" and result.data,
             "The client must get a normalized ImagesResponse from the fallback target.",
             "data[] from the second target", short(result.body), unless=() if served else routing_to(t, second))


@check("FALLBACK-001", MUST, needs="fallback", spec=SPEC_FALLBACKS, scenario=CHAIN)
def throttled_first_target_falls_back(t: Judgement) -> None:
    """A 429 from the first target falls back to the next target's image endpoint and model."""
    expect_second_target(t, "first error-429")


@check("FALLBACK-002", MUST, needs="fallback", spec=SPEC_FALLBACKS, scenario=CHAIN)
def failing_first_target_falls_back(t: Judgement) -> None:
    """A 500 from the first target falls back to the next target's image endpoint and model."""
    expect_second_target(t, "first error-500")


@check("FALLBACK-003", SHOULD, needs="fallback", spec=SPEC_FALLBACKS, scenario=CHAIN)
def timing_out_first_target_falls_back(t: Judgement) -> None:
    """A first target that times out falls back to the next target."""
    expect_second_target(t, "first fault-hang")


@check("FALLBACK-004", MUST, needs="fallback", spec=SPEC_QWEN_IMAGE, scenario=CHAIN)
def fallback_speaks_the_next_providers_dialect(t: Judgement) -> None:
    """A fallback to DashScope converts the request: size as W*H, n in parameters."""
    fallback = chain(t)
    if fallback.targets[1].provider != "dashscope":
        raise CheckSkipped("the chain's second target is not DashScope")
    _, sent, _ = fall_back(t, "first error-503")
    landed = [r for r in sent if lands_on(r, fallback.targets[1])]
    t.expect(landed, "The request must reach DashScope's image endpoint.", "a DashScope image request",
             ", ".join(paths(sent)), unless=routing_to(t, fallback.targets[1]))
    params = dashscope_parameters(landed[0])
    t.expect(params.get("size") == "1024*1024" and params.get("n") == 1,
             "The fallback request must use DashScope's parameters.",
             "parameters.size = '1024*1024', parameters.n = 1", short(landed[0].json_body()))


@check("FALLBACK-005", MUST, needs="fallback", spec=SPEC_DASHSCOPE_ERRORS, scenario=CHAIN)
def exhausted_chain_reports_last_failure(t: Judgement) -> None:
    """When every target fails the client gets one error envelope naming the last failure."""
    fallback = chain(t)
    response = t.answer(EXHAUSTED, bounded="The chain must answer within the profile's bound.")
    tried = {r.provider for r in t.upstream(EXHAUSTED) if r.scenario == "error-500"}
    t.expect(tried >= {target.provider for target in fallback.targets},
             "Every target of the chain must be tried before giving up.",
             ", ".join(target.provider for target in fallback.targets), ", ".join(sorted(tried)) or "none",
             unless=set().union(*(routing_to(t, x) for x in fallback.targets if x.provider not in tried)))
    body = json_object(response)
    t.expect(response.status_code >= 500 and is_error_envelope(body),
             "An exhausted chain must answer one 5xx error envelope.", "5xx {error: {...}}",
             f"{response.status_code} {short(response.text)}")
    last = fallback.targets[-1].provider
    t.expect(last in response.text.lower() or "internalerror" in response.text.lower(),
             "The error must name the last target's failure.", f"a mention of {last} or its code InternalError",
             short(response.text))


@check("FALLBACK-006", SHOULD, needs="fallback", spec=SPEC_FALLBACKS, scenario=CHAIN)
def client_error_does_not_fall_back(t: Judgement) -> None:
    """A 400 from the first target is the client's mistake: it is returned, not retried elsewhere."""
    fallback, sent, _ = fall_back(t, "first error-400")
    others = [r for r in sent if r.provider != fallback.targets[0].provider]
    t.expect(not others, "A 400 must not trigger a fallback.", f"only {fallback.targets[0].provider}",
             ", ".join(paths(sent)))
