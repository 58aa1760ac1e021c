"""COST: the provider's usage reaches the client unfabricated, and a gateway that declares what
a request costs meters images truthfully.

What a provider reports: DashScope's image answers carry `usage.image_count` and the image
`width`/`height` (SPEC_QWEN_IMAGE, "Response parameters"); OpenAI's GPT image answers carry token
`usage` (SPEC_OPENAI_IMAGES, "The image generation response"). DashScope bills image models per
image generated (SPEC_DASHSCOPE_BILLING), and a FAILED task returns no image and no usage
(SPEC_DASHSCOPE_TASKS). How a gateway reports cost is its own declaration (profile `[cost]`:
a header such as LiteLLM's `x-litellm-response-cost`, SPEC_LITELLM_COST, or a body field).
"""

from __future__ import annotations

import json
from typing import Any

from harness.api import (
    MUST,
    SHOULD,
    SPEC_DASHSCOPE_TASKS,
    SPEC_OPENAI_IMAGES,
    SPEC_QWEN_IMAGE,
    Answer,
    CheckSkipped,
    Driver,
    Judgement,
    check,
    dig,
    is_dashscope_sync_image,
    is_dashscope_task_image,
    json_object,
    scenario,
    short,
)

SCENARIO = "image-costs"
SPEC_DASHSCOPE_BILLING = "https://www.alibabacloud.com/help/en/model-studio/model-pricing"
SPEC_LITELLM_COST = "https://docs.litellm.ai/docs/proxy/cost_tracking"
TOLERANCE = 1e-6
# The cassette each sync step plays: what the provider reported for it.
PLAYS = {"dashscope n=1": "image-sync", "dashscope n=2": "image-sync-n2", "openai": "image-b64"}


@scenario(SCENARIO)
def buy_some_images(s: Driver) -> None:
    """One and two DashScope images, one OpenAI image, and a DashScope task that FAILS."""
    dashscope = s.route_where("image.generate", is_dashscope_sync_image)
    if dashscope is not None:
        s.post_image("dashscope n=1", dashscope.alias, play=PLAYS["dashscope n=1"], n=1)
        s.post_image("dashscope n=2", dashscope.alias, play=PLAYS["dashscope n=2"], n=2)
    openai = s.profile.route_for("openai", "image.generate")
    if openai is not None:
        s.post_image("openai", openai.alias, play=PLAYS["openai"])
    task = s.route_where("image.generate", is_dashscope_task_image)
    if task is not None:
        s.generate("failed task", task.alias, play="image-async-failed")


# -- what the provider said and what the client was told ------------------------------------------

def provider_usage(t: Judgement, step: str) -> dict[str, Any]:
    """The `usage` of the provider's successful answer to the step ({} when there was none)."""
    for record in t.upstream(step):
        body = json_object_text(record.answer_body)
        if (record.answered or 0) < 300 and isinstance(body.get("usage"), dict):
            return body["usage"]
    return {}


def json_object_text(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def reported_cost(t: Judgement, headers: dict[str, str], body: dict[str, Any]) -> float | None:
    """The cost the gateway declares for an answer, through the profile's header or body field."""
    surface = t.profile.cost
    value: Any = headers.get(surface.header.lower()) if surface.header else dig(body, surface.body_field or "")
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def answer_cost(t: Judgement, step: str) -> tuple[float | None, Answer]:
    answer = t.answer(step, bounded=True)
    t.expect_played(step, PLAYS[step], f"{answer.status_code} {short(answer.text)}")
    return reported_cost(t, answer.headers, json_object(answer)), answer


def needs_cost_surface(t: Judgement) -> None:
    if not t.profile.cost.declared:
        raise CheckSkipped("the profile declares no cost surface ([cost] header or body_field)")


def zeros(value: Any) -> list[str]:
    """The dotted names of the numbers that are zero in a usage object."""
    if isinstance(value, dict):
        return [f"{k}.{z}".rstrip(".") for k, v in value.items() for z in zeros(v)]
    return [""] if isinstance(value, int | float) and not isinstance(value, bool) and value == 0 else []


# -- checks ----------------------------------------------------------------------------------------

@check("COST-001", MUST, needs="image.generate", spec=SPEC_OPENAI_IMAGES, scenario=SCENARIO)
def usage_is_not_zeroed(t: Judgement) -> None:
    """The client never sees zero usage for an image the provider reported usage for.

    A zero where the provider counted images or tokens is a fabricated number: budgets and
    invoices built on it are wrong (OpenAI images: `usage` is the request's token usage)."""
    t.route_where("image.generate", is_dashscope_sync_image, "a DashScope sync image model")
    fabricated = []
    for step in ("dashscope n=1", "openai"):
        if step == "openai" and t.profile.route_for("openai", "image.generate") is None:
            continue
        answer = t.answer(step, bounded=True)
        if answer.status_code >= 300 or not provider_usage(t, step):
            continue
        body = json_object(answer)
        shown = {"usage": body.get("usage")}
        if t.profile.cost.image_count_field:
            shown["declared"] = dig(body, t.profile.cost.image_count_field)
        fabricated += [f"{step}: {name}" for name in zeros(shown)]
    t.expect(not fabricated, "The provider's usage must not reach the client as zeros.",
             "the provider's numbers, or none", ", ".join(fabricated))


@check("COST-002", SHOULD, needs="image.generate", spec=SPEC_QWEN_IMAGE, scenario=SCENARIO)
def dashscope_usage_reaches_client(t: Judgement) -> None:
    """DashScope's `usage.image_count` and image size reach the client as the gateway's declared usage."""
    t.route_where("image.generate", is_dashscope_sync_image, "a DashScope sync image model")
    field = t.profile.cost.image_count_field
    if not field:
        raise CheckSkipped("the profile declares no field for the provider's image count (cost.image_count_field)")
    answer = t.answer("dashscope n=2", bounded=True)
    t.expect_played("dashscope n=2", PLAYS["dashscope n=2"], f"{answer.status_code} {short(answer.text)}")
    usage, body = provider_usage(t, "dashscope n=2"), json_object(answer)
    t.expect(dig(body, field) == usage.get("image_count"), "The provider's image count must reach the client.",
             f"{field} = {usage.get('image_count')}", short(body))
    size = f"{usage.get('width')}x{usage.get('height')}"
    # Next to the declared image count, or in the ImagesResponse's own `size` (OpenAI's shape has room).
    beside = dig(body, field.rsplit(".", 1)[0] + ".size") if "." in field else None
    t.expect(size in (beside, body.get("size")), "The provider's image size must reach the client.",
             size, short(body))


@check("COST-003", SHOULD, needs="image.generate", spec=SPEC_OPENAI_IMAGES, scenario=SCENARIO)
def openai_usage_reaches_client(t: Judgement) -> None:
    """OpenAI's token `usage` of an image answer reaches the client unchanged (the shape has room for it)."""
    t.route("openai", "image.generate")
    answer = t.answer("openai", bounded=True)
    t.expect_played("openai", PLAYS["openai"], f"{answer.status_code} {short(answer.text)}")
    usage = provider_usage(t, "openai")
    shown = json_object(answer).get("usage")
    t.expect(isinstance(shown, dict) and shown.get("total_tokens") == usage.get("total_tokens"),
             "The provider's token usage must reach the client.",
             f"usage.total_tokens = {usage.get('total_tokens')}", short(shown))


@check("COST-004", SHOULD, needs="image.generate", spec=SPEC_DASHSCOPE_BILLING, scenario=SCENARIO)
def image_cost_matches_price_table(t: Judgement) -> None:
    """One DashScope image costs what the profile's per-image price says."""
    route = t.route_where("image.generate", is_dashscope_sync_image, "a DashScope sync image model")
    needs_cost_surface(t)
    price = t.profile.cost.per_image.get(route.alias)
    if price is None:
        raise CheckSkipped(f"the profile's cost.per_image names no price for {route.alias}")
    cost, answer = answer_cost(t, "dashscope n=1")
    t.expect(cost is not None, "The gateway must report what the image cost, where the profile says.",
             t.profile.cost.header or t.profile.cost.body_field or "", f"nothing in {short(answer.text)}")
    t.expect(abs(cost - price) <= TOLERANCE, "One image must cost the price in the table.",
             f"{price:g}", f"{cost:g}")


@check("COST-005", SHOULD, needs="image.generate", spec=SPEC_DASHSCOPE_BILLING, scenario=SCENARIO)
def two_images_cost_twice_one(t: Judgement) -> None:
    """n=2 costs twice n=1: DashScope bills per image generated, not per request."""
    t.route_where("image.generate", is_dashscope_sync_image, "a DashScope sync image model")
    needs_cost_surface(t)
    one, _ = answer_cost(t, "dashscope n=1")
    two, _ = answer_cost(t, "dashscope n=2")
    t.expect(one is not None and two is not None and abs(two - 2 * one) <= TOLERANCE,
             "Two images must cost twice one.", f"2 x {one}", str(two))


@check("COST-006", SHOULD, needs="image.generate", spec=SPEC_DASHSCOPE_TASKS, scenario=SCENARIO)
def failed_task_costs_nothing(t: Judgement) -> None:
    """A DashScope task that ends FAILED (no image, no usage) costs the client nothing, job or sync answer alike."""
    t.route_where("image.generate", is_dashscope_task_image, "a DashScope async-task model")
    needs_cost_surface(t)
    result = t.job("failed task", bounded=True)
    t.expect_played("failed task", "image-async-failed", result.status)
    headers = result.submit.headers if result.submit is not None else {}
    cost = reported_cost(t, headers, result.images_response)
    t.expect(not cost, "A failed task must cost nothing.", "no cost, or 0", f"{cost} ({short(result.body)})")


@check("COST-007", MUST, needs="image.generate", spec=SPEC_LITELLM_COST, scenario=SCENARIO)
def images_are_metered(t: Judgement) -> None:
    """Every image the provider delivered is metered above zero, so spend budgets cannot be bypassed.

    A MUST only where the profile declares budgets (cost.budgets): a gateway that enforces spend
    limits on a meter that reads zero lets any key spend without limit."""
    t.route_where("image.generate", is_dashscope_sync_image, "a DashScope sync image model")
    if not t.profile.cost.budgets:
        raise CheckSkipped("the profile declares no spend budgets (cost.budgets)")
    needs_cost_surface(t)
    steps = ["dashscope n=1", "dashscope n=2"]
    if t.profile.route_for("openai", "image.generate") is not None:
        steps.append("openai")
    unmetered = []
    for step in steps:
        cost, answer = answer_cost(t, step)
        if answer.status_code < 300 and not cost:
            unmetered.append(f"{step}: {cost}")
    t.expect(not unmetered, "Every delivered image must be metered above zero.", "cost > 0",
             ", ".join(unmetered))
