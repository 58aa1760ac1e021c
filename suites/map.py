"""MAP: a client-facing model alias reaches the right provider endpoint with the right model."""

from __future__ import annotations

import functools

from harness.api import (
    CLIENT,
    DASHSCOPE_CHAT_PATHS,
    DASHSCOPE_IMAGE_PATHS,
    DASHSCOPE_MULTIMODAL,
    DASHSCOPE_REGION_HOSTS,
    DASHSCOPE_REGIONS,
    DASHSCOPE_TASK_SUBMIT_PATHS,
    DEFAULT_DASHSCOPE_REGION,
    MUST,
    PNG_SIGNATURE,
    SHOULD,
    SPEC_DASHSCOPE_COMPAT,
    SPEC_OPENAI_EDITS,
    SPEC_OPENAI_ERRORS,
    SPEC_OPENAI_IMAGES,
    SPEC_QWEN_IMAGE,
    SPEC_QWEN_IMAGE_ASYNC,
    SPEC_QWEN_IMAGE_EDIT,
    SPEC_REPLICATE,
    CheckSkipped,
    Driver,
    Judgement,
    ModelRoute,
    alias_step,
    check,
    dashscope_content,
    describe,
    expect_only_on,
    is_dashscope_task_image,
    is_error_envelope,
    paths,
    scenario,
    sha256_hex,
    short,
    submits,
    unmarked_during,
)

UNKNOWN_MODEL = "gwconf-no-such-model-7f3a"
EDIT_INSTRUCTION = "put a red scarf on the cat"
EDIT_IMAGE = "input-1.png"
SPEC_DASHSCOPE_REGIONS = "https://www.alibabacloud.com/help/en/model-studio/regions"
SPEC_HTTP_PROXY = "https://www.rfc-editor.org/rfc/rfc9110#name-connect"
KNOWN_REGIONS = frozenset(DASHSCOPE_REGIONS.values())
# Where DashScope takes each capability (POSTs; task polls are GETs).
CAPABILITY_PATHS = {"image.generate": DASHSCOPE_IMAGE_PATHS, "image.edit": frozenset({DASHSCOPE_MULTIMODAL}),
                    "chat": DASHSCOPE_CHAT_PATHS}


def drivable(route: ModelRoute) -> bool:
    return route.capability in ("image.generate", "image.edit", "chat")


@scenario("every-alias")
def one_request_per_alias(s: Driver) -> None:
    """One ordinary request through every alias the profile routes (generate, edit or chat). The
    generations and chats go at once: each is marked as its own, and a dozen async jobs then cost
    one wait. The edits go after them, one by one: an edit that lost its instruction lost its marker
    too, and MAP-004 finds it by the quiet window between its neighbours' requests."""
    routes = [route for route in s.profile.models if drivable(route)]
    s.side_by_side([functools.partial(request_through, route=route) for route in routes
                    if route.capability != "image.edit"])
    for route in routes:
        if route.capability == "image.edit":
            request_through(s, route)
    s.keep_stray()


def request_through(s: Driver, route: ModelRoute) -> None:
    if route.capability == "image.generate":
        s.generate(alias_step(route), route.alias)
    elif route.capability == "image.edit":
        s.edit(alias_step(route), route.alias, EDIT_INSTRUCTION, EDIT_IMAGE)
    else:
        s.chat(alias_step(route), route.alias, "Say hello.")


@scenario("unknown-model")
def generate_with_unknown_model(s: Driver) -> None:
    """One image request for a model no profile routes."""
    s.generate("unknown", UNKNOWN_MODEL)


@check("MAP-001", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE, scenario="every-alias")
def image_model_reaches_image_endpoint(t: Judgement) -> None:
    """A DashScope image model reaches DashScope's image endpoint, never chat or compatible mode."""
    route = t.route("dashscope", "image.generate")
    t.job(alias_step(route))
    sent = submits(t.upstream(alias_step(route)))
    t.expect(sent, "The request must reach the DashScope upstream.",
             f"POST to one of {sorted(DASHSCOPE_IMAGE_PATHS)}", "no upstream request")
    wrong = [r for r in sent if r.provider != "dashscope" or r.path not in DASHSCOPE_IMAGE_PATHS]
    t.expect(not wrong, "An image model must reach DashScope's image endpoint only.",
             f"POST to one of {sorted(DASHSCOPE_IMAGE_PATHS)}", ", ".join(paths(wrong)))
    refused = [r for r in sent if r.answered is not None and 400 <= r.answered < 500]
    # Another region's host refuses this region's key: MAP-012's defect (the region), not the body.
    astray = any(r.region != (route.region or DEFAULT_DASHSCOPE_REGION) for r in refused)
    t.expect(not refused, "DashScope must accept the request: the body must be the one its image route takes.",
             "a 2xx answer from DashScope",
             "; ".join(f"{r.path} -> {r.answered} ({'; '.join(r.notes)})" for r in refused),
             unless={"MAP-012"} if astray else ())


@check("MAP-002", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE, scenario="every-alias")
def image_request_carries_registered_model(t: Judgement) -> None:
    """Every DashScope image alias sends the registered upstream model ID in `model`."""
    routes = [r for r in t.profile.routes_for("image.generate") if r.provider == "dashscope"]
    t.route("dashscope", "image.generate")  # skip when there is none
    for route in routes:
        t.job(alias_step(route))
    sent = [r for route in routes for r in submits(t.upstream(alias_step(route), "dashscope"))]
    seen = [r.json_body().get("model") for r in sent]
    wanted = [r.upstream_model for r in routes]
    # Aliases whose request never reached DashScope are their routing checks' defect, not this one's.
    unreached = [alias_step(r) for r in routes if not submits(t.upstream(alias_step(r), "dashscope"))]
    t.expect(sorted(map(str, seen)) == sorted(wanted),
             "The upstream `model` must be the registered provider model ID.",
             f"models {wanted}", f"models {seen}",
             unless=t.routing_of(*unreached) if set(map(str, seen)) <= set(wanted) else ())
    # The right model at the wrong endpoint (chat, say) is no image request at all.
    astray = [r for r in sent if r.path not in DASHSCOPE_IMAGE_PATHS]
    t.expect(not astray, "The registered image model must reach one of DashScope's image endpoints.",
             f"POST to one of {sorted(DASHSCOPE_IMAGE_PATHS)}", "; ".join(r.summary() for r in astray))


@check("MAP-003", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE_ASYNC, scenario="every-alias")
def task_model_uses_async_task_api(t: Judgement) -> None:
    """An async-only DashScope model is submitted to the task API with `X-DashScope-Async: enable`."""
    route = t.route_where("image.generate", is_dashscope_task_image, "a DashScope async-task model")
    t.job(alias_step(route))
    sent = submits(t.upstream(alias_step(route), "dashscope"))
    # When the sync image alias reached DashScope no more than this one, the gateway sends no
    # DashScope image request at all: MAP-001's defect, seen again.
    sync = next((r for r in t.profile.routes_for("image.generate")
                 if r.provider == "dashscope" and not is_dashscope_task_image(r)), None)
    no_images = sync is not None and not submits(t.upstream(alias_step(sync), "dashscope"))
    t.expect(sent, "The request must reach the DashScope upstream.",
             f"POST {sorted(DASHSCOPE_TASK_SUBMIT_PATHS)}", "no upstream request",
             unless={"MAP-001"} if no_images else ())
    task_submits = [r for r in sent if r.path in DASHSCOPE_TASK_SUBMIT_PATHS]
    t.expect(task_submits, f"{route.upstream_model} is served by the async task API only.",
             f"POST {sorted(DASHSCOPE_TASK_SUBMIT_PATHS)}", ", ".join(paths(sent)))
    header = task_submits[0].header("x-dashscope-async")
    t.expect(header == "enable", "A DashScope task submit must carry X-DashScope-Async: enable.",
             "X-DashScope-Async: enable", f"X-DashScope-Async: {header}")


@check("MAP-004", MUST, needs="image.edit", spec=SPEC_QWEN_IMAGE_EDIT, scenario="every-alias")
def edit_reaches_dashscope_edit_route(t: Judgement) -> None:
    """An edit (/v1/images/edits) reaches DashScope's edit model with the image and the instruction."""
    route = t.route("dashscope", "image.edit")
    t.job(alias_step(route))
    sent = submits(t.upstream(alias_step(route), "dashscope"))
    # An edit that lost its instruction lost the step's marker with it: find it by route and time
    # window (between the neighbouring steps' requests) instead of calling it missing.
    unmarked = [] if sent else [r for r in submits(unmarked_during(t, alias_step(route)))
                                if r.provider == "dashscope" and r.json_body().get("model") == route.upstream_model]
    t.expect(sent or unmarked, "The edit must reach the DashScope upstream.", f"POST {DASHSCOPE_MULTIMODAL}",
             "no upstream request")
    request = (sent or unmarked)[0]
    t.expect(request.path == DASHSCOPE_MULTIMODAL and
             request.json_body().get("model") == route.upstream_model,
             "An edit must reach DashScope's multimodal route with the edit model.",
             f"POST {DASHSCOPE_MULTIMODAL} model={route.upstream_model}",
             f"{request.method} {request.path} model={request.json_body().get('model')}")
    content = dashscope_content(request)
    images = [c["image"] for c in content if "image" in c]
    texts = [c["text"] for c in content if "text" in c]
    t.expect(images and all(isinstance(i, str) and i for i in images),
             "The edit must carry the input image in input.messages[0].content.",
             "an {image: url-or-data-url} item", short(content))
    token = t.token(alias_step(route))
    t.expect(any(token in x for x in texts),
             "The edit must carry the instruction as a text item.",
             f"a {{text}} item containing {EDIT_INSTRUCTION!r} and its marker {token}",
             ("the edit arrived without the marker (the instruction was lost): " if unmarked else "")
             + short(content))


@check("MAP-005", MUST, needs="image.generate", spec=SPEC_OPENAI_IMAGES, scenario="every-alias")
def openai_image_reaches_openai(t: Judgement) -> None:
    """An OpenAI image alias reaches OpenAI's /v1/images/generations with its model ID."""
    route = t.route("openai", "image.generate")
    t.job(alias_step(route))
    expect_only_on(t, submits(t.upstream(alias_step(route))),
                   lambda r: r.provider == "openai" and r.path == "/v1/images/generations"
                   and r.json_body().get("model") == route.upstream_model,
                   "An OpenAI image alias must reach OpenAI's image endpoint only.",
                   f"openai POST /v1/images/generations model={route.upstream_model}")


@check("MAP-006", MUST, needs="image.generate", spec=SPEC_REPLICATE, scenario="every-alias")
def replicate_image_reaches_replicate(t: Judgement) -> None:
    """A Replicate image alias creates a prediction on its own model."""
    route = t.route("replicate", "image.generate")
    owner_name = route.upstream_model.split(":")[0]
    t.job(alias_step(route))
    model_path = f"/v1/models/{owner_name}/predictions"
    expect_only_on(t, submits(t.upstream(alias_step(route))),
                   lambda r: r.provider == "replicate" and (
                       r.path == model_path or (r.path == "/v1/predictions" and
                                                str(r.json_body().get("version", "")).startswith(owner_name))),
                   "A Replicate alias must create a prediction on its model.", f"replicate POST {model_path}")


@check("MAP-007", MUST, needs="any", spec=SPEC_OPENAI_ERRORS, scenario="unknown-model", observes=CLIENT)
def unknown_model_gets_error_envelope(t: Judgement) -> None:
    """An unknown model gets a 4xx OpenAI error envelope (or, through an async dialect, a job
    that fails naming the model), not a silent fallback."""
    result = t.job("unknown")
    response = result.submit
    assert response is not None
    # Refused loudly through the async path: accepted, then a failed job whose error names the
    # model (what EXTRA counts as a loud refusal too).
    # (A job view echoes its `model`; only the rest of what the client was told counts as naming it.)
    told = {k: v for k, v in result.body.items() if k != "model"}
    failed_job = response.status_code < 300 and result.status == "failed" and UNKNOWN_MODEL in short(told, 10**6)
    t.expect(400 <= response.status_code < 500 or failed_job,
             "An unknown model must be refused with a 4xx status, or its job must fail naming it.",
             f"400 or 404, or a failed job naming {UNKNOWN_MODEL}",
             f"{response.status_code} {short(response.text)}; {describe(result)}")
    t.expect(is_error_envelope(result.body), "The refusal must be an OpenAI error envelope.",
             '{"error": {"message": ...}}', short(response.text))


@check("MAP-008", MUST, needs="any", spec=SPEC_OPENAI_ERRORS, scenario="unknown-model")
def unknown_model_reaches_no_upstream(t: Judgement) -> None:
    """An unknown model reaches no upstream at all."""
    t.job("unknown")
    sent = t.upstream("unknown")
    t.expect(not sent, "An unknown model must not be sent to any provider.", "no upstream request",
             ", ".join(paths(sent)))


@check("MAP-009", MUST, needs="chat", spec=SPEC_DASHSCOPE_COMPAT, scenario="every-alias")
def chat_model_reaches_chat_endpoint(t: Judgement) -> None:
    """A DashScope chat alias reaches DashScope chat (compatible mode or native text generation)."""
    route = t.route("dashscope", "chat")
    t.answer(alias_step(route))
    expect_only_on(t, submits(t.upstream(alias_step(route))),
                   lambda r: r.provider == "dashscope" and r.path in DASHSCOPE_CHAT_PATHS
                   and r.json_body().get("model") == route.upstream_model,
                   "A chat alias must reach DashScope's chat endpoint with its model ID.",
                   f"POST {sorted(DASHSCOPE_CHAT_PATHS)} model={route.upstream_model}")


@check("MAP-010", SHOULD, needs="image.edit", spec=SPEC_OPENAI_EDITS, scenario="every-alias")
def openai_edit_reaches_openai_edits(t: Judgement) -> None:
    """An OpenAI edit alias reaches /v1/images/edits as multipart with the image file."""
    route = t.route("openai", "image.edit")
    image = t.provider_file(EDIT_IMAGE)
    t.job(alias_step(route))
    sent = submits(t.upstream(alias_step(route)))
    good = [r for r in sent if r.provider == "openai" and r.path == "/v1/images/edits"]
    t.expect(good, "An OpenAI edit must reach /v1/images/edits.", "openai POST /v1/images/edits",
             ", ".join(paths(sent)) or "no upstream request")
    body = good[0].body if isinstance(good[0].body, dict) else {}
    files = [v for k, v in body.items() if k.startswith("image") and isinstance(v, dict)]
    t.expect(any(f.get("sha256") == sha256_hex(image) for f in files) and image.startswith(PNG_SIGNATURE),
             "The edit must carry the client's image file unchanged.",
             f"an image part of {len(image)} bytes with sha256 {sha256_hex(image)[:16]}...", short(body))


@check("MAP-011", MUST, needs="any", spec=SPEC_HTTP_PROXY, scenario="every-alias")
def gateway_calls_only_configured_upstreams(t: Judgement) -> None:
    """Every alias is served by its configured upstream; the gateway never calls a public host."""
    if not t.facts.gateway_started:
        raise CheckSkipped("gwconf did not start the gateway, so it could not point it at the egress sink")
    if not t.profile.egress_observable:
        raise CheckSkipped("the profile says the gateway ignores HTTP(S)_PROXY: its egress cannot be seen")
    sent = [route.alias for route in t.profile.models if drivable(route)]
    for route in t.profile.models:
        if drivable(route):
            t.step(alias_step(route))  # a request the harness could not drive leaves the question open
    escaped = t.egress()
    hosts = ", ".join(sorted({a.host for a in escaped}))
    t.expect(not escaped, f"the gateway tried to reach {hosts} instead of the configured upstream",
             f"requests for {len(sent)} aliases reach only the mock upstreams",
             "; ".join(a.summary() for a in escaped))


@check("MAP-012", MUST, needs="any", spec=SPEC_DASHSCOPE_REGIONS, scenario="every-alias")
def region_alias_reaches_its_region(t: Judgement) -> None:
    """A DashScope alias reaches its own region's upstream (Beijing's when it names none), never another."""
    aliases = [r for r in t.profile.models if r.provider == "dashscope" and r.capability != "video.generate"]
    for route in aliases:
        if route.region and route.region not in KNOWN_REGIONS:
            t.note(f"{route.alias}: gwconf mocks no DashScope region {route.region!r} "
                   f"(it serves {sorted(KNOWN_REGIONS)})")
    routes = [r for r in aliases if region_of(r) in KNOWN_REGIONS]
    if not routes:
        raise CheckSkipped("profile routes no DashScope model")
    wrong: list[str] = []
    unreached: list[str] = []
    for route in routes:
        t.step(alias_step(route))
        reached = t.upstream(alias_step(route))
        if not reached and not route.region:
            continue  # nothing to place in a region: MAP-001/004/009 judge that it arrives at all
        if not reached:
            unreached.append(alias_step(route))
        if not reached or any(r.provider != "dashscope" or r.region != region_of(route) for r in reached):
            where = sorted({host_of(r.provider, r.region) for r in reached})
            wrong.append(f"{route.alias} reached {', '.join(where) or 'no upstream'}, "
                         f"not {host_of('dashscope', region_of(route))}")
        # The right region at the wrong endpoint is no better: the capability's own paths only. (An
        # alias bound to no region is MAP-001/004/009's to judge there.)
        endpoints = CAPABILITY_PATHS.get(route.capability, frozenset())
        astray = [r for r in submits(reached) if r.path not in endpoints] if route.region else []
        if astray:
            wrong.append(f"{route.alias} reached {', '.join(paths(astray))}")
    # Reaching no upstream at all is the alias's routing check's defect; any wrong host is this one's.
    t.expect(not wrong, "A DashScope alias must reach its own region's upstream only.",
             "; ".join(f"{r.alias} -> {host_of('dashscope', region_of(r))}" for r in routes), "; ".join(wrong),
             unless=t.routing_of(*unreached) if len(unreached) == len(wrong) else ())


def region_of(route: ModelRoute) -> str:
    return route.region or DEFAULT_DASHSCOPE_REGION


def host_of(provider: str, region: str | None) -> str:
    """`dashscope ap-southeast-1 (dashscope-intl.aliyuncs.com)`: the region and its real host."""
    host = DASHSCOPE_REGION_HOSTS.get(region or "") if provider == "dashscope" else None
    return f"{provider} {region} ({host})" if host else f"{provider} {region or ''}".strip()
