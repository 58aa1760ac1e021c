"""NORM: the client gets OpenAI's shapes, whatever the provider answered."""

from __future__ import annotations

from harness.api import (
    CLIENT,
    MUST,
    OPENAI_IMAGE_ITEM_FIELDS,
    PNG_SIGNATURE,
    SHOULD,
    SPEC_OPENAI_CHAT,
    SPEC_OPENAI_IMAGES,
    SPEC_QWEN_IMAGE,
    Driver,
    JobResult,
    Judgement,
    alias_step,
    check,
    dashscope_parameters,
    decode_b64,
    describe,
    is_dashscope_sync_image,
    scenario,
    schema_errors,
    short,
    submits,
)

PROVIDER_FIELDS = ("output", "request_id", "task_id", "task_status", "urls", "input")
# What the parameter scenario sends through the sync DashScope alias: step -> (params, play).
DASHSCOPE_PARAMETERS: dict[str, tuple[dict[str, object], str | None]] = {
    "size": ({"size": "1024x1024"}, None),
    "b64_json": ({"response_format": "b64_json"}, None),
    "n": ({"n": 2}, "image-sync-n2"),
    "prompt_extend": ({"prompt_extend": False}, None),
    "watermark": ({"watermark": True}, None),
    "negative_prompt": ({"negative_prompt": "blurry, low quality"}, None),
    "seed": ({"seed": 424242}, None),
    "gwconf_probe_field": ({"gwconf_probe_field": "probe-value"}, None),
    "parameters": ({"parameters": {"watermark": True}}, None),
}


@scenario("dashscope-image-parameters")
def generate_with_each_parameter(s: Driver) -> None:
    """One generation per OpenAI or vendor parameter through the sync DashScope image alias."""
    route = s.route_where("image.generate", is_dashscope_sync_image)
    if route is None:
        return
    for name, (params, play) in DASHSCOPE_PARAMETERS.items():
        s.generate(name, route.alias, play=play, **params)


def image_results(t: Judgement) -> list[tuple[str, JobResult]]:
    """The generation through the first image alias of every provider (scenario every-alias)."""
    providers = ("dashscope", "openai", "replicate")
    # A profile fact, not the gateway's behaviour: without such a model the check is skipped.
    t.route_where("image.generate", lambda r: r.provider in providers, "from DashScope, OpenAI or Replicate")
    results = []
    for provider in providers:
        route = t.profile.route_for(provider, "image.generate")
        if route is not None:
            results.append((route.alias, t.job(alias_step(route))))
            t.expect_served(alias_step(route))
    return results


def sync_dashscope_alias(t: Judgement) -> str:
    return t.route_where("image.generate", is_dashscope_sync_image, "a DashScope multimodal image model").alias


@check("NORM-001", MUST, needs="image.generate", spec=SPEC_OPENAI_IMAGES, scenario="every-alias", observes=CLIENT)
def image_response_is_openai_images_response(t: Judgement) -> None:
    """Every image response validates against OpenAI's ImagesResponse, with data[]."""
    for alias, result in image_results(t):
        problems = schema_errors("openai/images-response", result.images_response)
        t.expect(not problems and result.data,
                 f"The answer for {alias} must be an OpenAI ImagesResponse with data[].",
                 "ImagesResponse {created, data[]}",
                 "; ".join(problems[:3]) or short(result.images_response))


@check("NORM-002", MUST, needs="image.generate", spec=SPEC_OPENAI_IMAGES, scenario="dashscope-image-parameters")
def b64_json_is_honoured(t: Judgement) -> None:
    """`response_format=b64_json` yields decodable base64 of a PNG image."""
    sync_dashscope_alias(t)
    result = t.job("b64_json")
    t.expect(result.data, "The request must succeed with data[].", "data[]", short(result.body),
             unless=t.unless_served("b64_json"))
    item = result.data[0]
    raw = decode_b64(item.get("b64_json"))
    t.expect(raw is not None and raw.startswith(PNG_SIGNATURE),
             "data[0].b64_json must hold the image as base64.",
             "base64 of a PNG", short(item))
    t.expect(raw == t.provider_file("dashscope-1.png"),
             "The base64 must decode to the provider's image.", "the bytes of dashscope-1.png",
             f"{len(raw or b'')} other bytes")


@check("NORM-003", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE, scenario="dashscope-image-parameters")
def size_is_mapped_to_dashscope_form(t: Judgement) -> None:
    """`size` 1024x1024 reaches DashScope as parameters.size 1024*1024."""
    sync_dashscope_alias(t)
    t.job("size")
    sizes = [dashscope_parameters(r).get("size") for r in submits(t.upstream("size", "dashscope"))]
    t.expect(sizes and all(s == "1024*1024" for s in sizes),
             "OpenAI's WxH size must be converted to DashScope's W*H.",
             "parameters.size = '1024*1024'", f"parameters.size = {sizes}",
             unless=t.unless_reached("size", provider="dashscope"))


@check("NORM-004", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE, scenario="dashscope-image-parameters")
def n_is_honoured(t: Judgement) -> None:
    """`n=2` reaches DashScope as parameters.n and the client gets both images.

    Rests on the Qwen-Image API reference (spec), "Parameters": `n` (parameters, int, "1-6 for
    the 2.0 series"), and OpenAI's CreateImageRequest: "n: The number of images to generate". A
    gateway that ignores `n` silently gives the user fewer images than asked for."""
    sync_dashscope_alias(t)
    result = t.job("n")
    ns = [dashscope_parameters(r).get("n") for r in submits(t.upstream("n", "dashscope"))]
    t.expect(ns and all(n == 2 for n in ns), "`n` must reach DashScope as parameters.n.",
             "parameters.n = 2", f"parameters.n = {ns}", unless=t.unless_reached("n", provider="dashscope"))
    t.expect(len(result.data) == 2, "The client must get every image the provider made.",
             "2 items in data[]", f"{len(result.data)} items", unless=t.unless_served("n"))


@check("NORM-005", MUST, needs="image.generate", spec=SPEC_OPENAI_IMAGES, scenario="every-alias", observes=CLIENT)
def created_is_an_integer_timestamp(t: Judgement) -> None:
    """Every image response carries `created` as an integer Unix timestamp."""
    for alias, result in image_results(t):
        created = result.images_response.get("created")
        t.expect(isinstance(created, int) and not isinstance(created, bool) and created > 1e9,
                 f"The answer for {alias} must carry `created` (Unix seconds).",
                 "created: integer", f"created: {created!r}")


@check("NORM-006", MUST, needs="chat", spec=SPEC_OPENAI_CHAT, scenario="every-alias", observes=CLIENT)
def chat_response_is_chat_completion(t: Judgement) -> None:
    """A DashScope chat answer reaches the client as an OpenAI chat.completion."""
    route = t.route("dashscope", "chat")
    response = t.answer(alias_step(route))
    body = response.json() if response.status_code == 200 else {}
    problems = schema_errors("openai/chat-completion.response", body)
    t.expect(response.status_code == 200 and not problems,
             "The answer must be an OpenAI chat.completion.", "chat.completion with choices[]",
             "; ".join(problems[:3]) or f"{response.status_code} {short(response.text)}")


@check("NORM-007", SHOULD, needs="image.generate", spec=SPEC_OPENAI_IMAGES, scenario="every-alias", observes=CLIENT)
def no_provider_fields_leak_into_response(t: Judgement) -> None:
    """Image responses carry no provider-internal fields (output, request_id, task_id, urls), at
    the top level or inside the data[] items.

    Rests on OpenAI's ImagesResponse (spec): "data[]: items are Image = {b64_json, url,
    revised_prompt}" (openai_replicate.md A.2)."""
    judged = 0
    for alias, result in image_results(t):
        if result.status != "succeeded":
            t.note(f"{alias}: no successful answer to judge ({describe(result)})")
            continue
        judged += 1
        leaked = [f for f in PROVIDER_FIELDS if f in result.images_response]
        t.expect(not leaked, f"The answer for {alias} must not carry the provider's raw shape.",
                 "only ImagesResponse fields", f"provider fields {leaked}")
        in_items = sorted({k for item in result.data if isinstance(item, dict) for k in item}
                          - OPENAI_IMAGE_ITEM_FIELDS)
        t.expect(not in_items, f"The data[] items for {alias} must carry only OpenAI's Image fields.",
                 f"item fields among {sorted(OPENAI_IMAGE_ITEM_FIELDS)}", f"item fields {in_items}")
    t.expect(judged, "At least one image answer must succeed for its shape to be judged.",
             "a successful image answer", "none succeeded")
