"""EXTRA: vendor fields outside the OpenAI schema reach the provider, or are refused loudly.

EXTRA is for what is not a documented parameter: an unknown vendor field must be forwarded or
refused, never dropped (EXTRA-006), and the nested `parameters` object (EXTRA-008). The documented
parameters of every provider endpoint (OpenAI image options, DashScope `parameters.*`, Qwen-MT
`translation_options` and each member, Replicate input) are judged one by one, through every
alias, by PARAM (suites/param.py), which also records each one's fate in run.json; EXTRA-001 to
EXTRA-005 and EXTRA-007 stay as quick probes of the same fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.api import (
    DASHSCOPE_CHAT_PATHS,
    MUST,
    SHOULD,
    SPEC_DASHSCOPE_COMPAT,
    SPEC_QWEN_IMAGE,
    SPEC_QWEN_MT,
    Driver,
    JobResult,
    Judgement,
    ModelRoute,
    check,
    dashscope_parameters,
    describe,
    exactly_equal,
    failure_text,
    is_dashscope_sync_image,
    scenario,
    short,
    submits,
)

TRANSLATION_OPTIONS = {
    "source_lang": "Chinese",
    "target_lang": "English",
    "terms": [{"source": "生物传感器", "target": "biological sensor"},
              {"source": "石墨烯", "target": "graphene"}],
}
PARAMETERS_SCENARIO = "dashscope-image-parameters"  # registered in norm.py


def chat_model(prefix: str, exclude: str | None = None) -> Callable[[ModelRoute], bool]:
    return lambda r: (r.provider == "dashscope" and r.upstream_model.startswith(prefix)
                      and not (exclude and r.upstream_model.startswith(exclude)))


QWEN_MT = chat_model("qwen-mt")
QWEN_CHAT = chat_model("qwen", exclude="qwen-mt")


@scenario("dashscope-chat-vendor-fields")
def chat_with_vendor_fields(s: Driver) -> None:
    """A Qwen-MT translation with translation_options, and a Qwen chat with enable_thinking/enable_search."""
    mt = s.route_where("chat", QWEN_MT)
    if mt is not None:
        s.chat("translation", mt.alias, "生物传感器和石墨烯", marked=False, translation_options=TRANSLATION_OPTIONS)
    qwen = s.route_where("chat", QWEN_CHAT)
    if qwen is not None:
        s.chat("thinking-search", qwen.alias, "What is graphene?", enable_thinking=False, enable_search=True)


def chat_route(t: Judgement, predicate: Callable[[ModelRoute], bool], prefix: str) -> ModelRoute:
    return t.route_where("chat", predicate, f"a DashScope chat model starting with {prefix!r}")


def upstream_chat_field(t: Judgement, step: str, name: str) -> tuple[bool, Any]:
    """Where DashScope reads a chat vendor field: top level (compatible) or parameters (native)."""
    for record in submits(t.upstream(step, "dashscope")):
        if record.path not in DASHSCOPE_CHAT_PATHS:
            continue
        body = record.json_body()
        if name in body:
            return True, body[name]
        params = body.get("parameters")
        if isinstance(params, dict) and name in params:
            return True, params[name]
    return False, None


def arrives_where_read(body: dict[str, Any], name: str) -> bool:
    """DashScope reads vendor fields at the top level, in `input` or in `parameters`; a field
    buried deeper (say under `parameters.extra_body`) is as good as dropped."""
    places = [body, body.get("input"), body.get("parameters")]
    return any(isinstance(place, dict) and name in place for place in places)


def refused(result: JobResult, name: str) -> bool:
    """The gateway said no and named the field: a 4xx or a failed job whose error names it."""
    status = result.submit.status_code if result.submit is not None else 0
    return (400 <= status < 500 or result.status == "failed") and name in failure_text(result)


# The vendor image fields in catalogue order, each with its check.
VENDOR_FIELDS = {"prompt_extend": "EXTRA-002", "watermark": "EXTRA-003", "negative_prompt": "EXTRA-004",
                 "seed": "EXTRA-005"}


def dropped(t: Judgement, name: str) -> bool:
    """The field's request reached DashScope without it."""
    sent = submits(t.upstream(name, "dashscope"))
    return bool(sent) and all(name not in dashscope_parameters(r) for r in sent)


def dropped_before(t: Judgement, name: str) -> set[str]:
    """The checks of the earlier vendor fields the gateway dropped the same way as this one: one
    behaviour (vendor fields do not reach `parameters`), reported by the first field it drops."""
    if not dropped(t, name):
        return set()
    earlier = list(VENDOR_FIELDS)[:list(VENDOR_FIELDS).index(name)]
    return {VENDOR_FIELDS[field] for field in earlier if dropped(t, field)}


def vendor_parameter_arrives(t: Judgement, name: str, value: Any) -> None:
    t.route_where("image.generate", is_dashscope_sync_image, "a DashScope multimodal image model")
    result = t.job(name)
    sent = submits(t.upstream(name, "dashscope"))
    if not sent and refused(result, name):
        t.note(f"the gateway refused `{name}` loudly")
        return
    got = [dashscope_parameters(r).get(name, "<absent>") for r in sent]
    t.expect(got and all(exactly_equal(g, value) for g in got),
             f"`{name}` must reach DashScope as parameters.{name}, or be refused with a 4xx.",
             f"parameters.{name} = {value!r}", f"parameters.{name} = {short(got)}",
             unless=t.unless_reached(name, provider="dashscope") | dropped_before(t, name))


@check("EXTRA-001", MUST, needs="chat", spec=SPEC_QWEN_MT, scenario="dashscope-chat-vendor-fields")
def translation_options_arrive_unchanged(t: Judgement) -> None:
    """Qwen-MT `translation_options` (extra_body) reach DashScope unchanged."""
    chat_route(t, QWEN_MT, "qwen-mt")
    t.answer("translation")
    found, value = upstream_chat_field(t, "translation", "translation_options")
    t.expect(found and exactly_equal(value, TRANSLATION_OPTIONS),
             "translation_options must arrive at DashScope exactly as the client sent them.",
             short(TRANSLATION_OPTIONS), short(value) if found else "absent")


@check("EXTRA-002", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE, scenario=PARAMETERS_SCENARIO)
def prompt_extend_reaches_parameters(t: Judgement) -> None:
    """`prompt_extend` reaches DashScope's parameters unchanged, type included (or is refused loudly).

    Rests on the Qwen-Image API reference (spec), "Parameters":
    `prompt_extend` (parameters, bool, default true: "rewrites the positive prompt"). A documented parameter
    the gateway drops or alters silently gives the user an image other than the one asked for."""
    vendor_parameter_arrives(t, "prompt_extend", False)


@check("EXTRA-003", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE, scenario=PARAMETERS_SCENARIO)
def watermark_reaches_parameters(t: Judgement) -> None:
    """`watermark` reaches DashScope's parameters unchanged, type included (or is refused loudly).

    Rests on the Qwen-Image API reference (spec), "Parameters":
    `watermark` (parameters, bool, default false: the "Qwen-Image" mark). A documented parameter
    the gateway drops or alters silently gives the user an image other than the one asked for."""
    vendor_parameter_arrives(t, "watermark", True)


@check("EXTRA-004", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE, scenario=PARAMETERS_SCENARIO)
def negative_prompt_reaches_parameters(t: Judgement) -> None:
    """`negative_prompt` reaches DashScope's parameters unchanged, type included (or is refused loudly).

    Rests on the Qwen-Image API reference (spec), "Parameters":
    `negative_prompt` (parameters, string of at most 500 characters). A documented parameter
    the gateway drops or alters silently gives the user an image other than the one asked for."""
    vendor_parameter_arrives(t, "negative_prompt", "blurry, low quality")


@check("EXTRA-005", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE, scenario=PARAMETERS_SCENARIO)
def seed_reaches_parameters(t: Judgement) -> None:
    """`seed` reaches DashScope's parameters unchanged, type included (or is refused loudly).

    Rests on the Qwen-Image API reference (spec), "Parameters":
    `seed` (parameters, int 0..2147483647). A documented parameter
    the gateway drops or alters silently gives the user an image other than the one asked for."""
    vendor_parameter_arrives(t, "seed", 424242)


@check("EXTRA-006", SHOULD, needs="image.generate", spec=SPEC_QWEN_IMAGE, scenario=PARAMETERS_SCENARIO)
def unknown_vendor_field_is_not_silently_dropped(t: Judgement) -> None:
    """A vendor field the gateway does not forward is refused, not silently accepted."""
    t.route_where("image.generate", is_dashscope_sync_image, "a DashScope multimodal image model")
    result = t.job("gwconf_probe_field")
    sent = submits(t.upstream("gwconf_probe_field", "dashscope"))
    forwarded = any(arrives_where_read(r.json_body(), "gwconf_probe_field") for r in sent)
    t.expect(forwarded or refused(result, "gwconf_probe_field"),
             "An unknown field must be forwarded or refused loudly, never dropped silently.",
             "the field upstream, or a 4xx / failed job naming it",
             f"{describe(result)}; field {'forwarded' if forwarded else 'dropped'}",
             unless=t.unless_reached("gwconf_probe_field", provider="dashscope"))


@check("EXTRA-007", MUST, needs="chat", spec=SPEC_DASHSCOPE_COMPAT, scenario="dashscope-chat-vendor-fields")
def chat_vendor_fields_arrive(t: Judgement) -> None:
    """DashScope chat fields (`enable_thinking`, `enable_search`) reach the upstream unchanged.

    Rests on DashScope's OpenAI compatibility page (spec): "This parameter is not a standard
    OpenAI parameter ... with the Node.js SDK or HTTP, pass it as a top-level parameter" (both
    fields are documented there, bool). Dropping one silently changes what the model does."""
    chat_route(t, QWEN_CHAT, "qwen")
    t.answer("thinking-search")
    got = {name: upstream_chat_field(t, "thinking-search", name) for name in ("enable_thinking", "enable_search")}
    t.expect(exactly_equal(got["enable_thinking"], (True, False)) and exactly_equal(got["enable_search"], (True, True)),
             "enable_thinking and enable_search must reach DashScope unchanged.",
             "enable_thinking=false, enable_search=true",
             ", ".join(f"{k}={v[1] if v[0] else 'absent'}" for k, v in got.items()))


@check("EXTRA-008", SHOULD, needs="image.generate", spec=SPEC_QWEN_IMAGE, scenario=PARAMETERS_SCENARIO)
def nested_parameters_reach_dashscope(t: Judgement) -> None:
    """A nested `parameters` object (`{"parameters": {"watermark": true}}`) reaches DashScope."""
    t.route_where("image.generate", is_dashscope_sync_image, "a DashScope multimodal image model")
    result = t.job("parameters")
    sent = submits(t.upstream("parameters", "dashscope"))
    if not sent and refused(result, "parameters"):
        t.note("the gateway refused the nested parameters loudly")
        return
    got = [dashscope_parameters(r).get("watermark", "<absent>") for r in sent]
    t.expect(got and all(g is True for g in got),
             "parameters.watermark must arrive at DashScope.", "parameters.watermark = true",
             f"parameters.watermark = {short(got)}", unless=t.unless_reached("parameters", provider="dashscope"))
