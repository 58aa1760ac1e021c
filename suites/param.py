"""PARAM: every documented parameter is forwarded, mapped or refused by name; never dropped or altered.

The parameters are generated from the request schemas the strict mocks validate with (see
harness/checks/_params.py): one check per provider endpoint, one scenario per endpoint sending one
request per parameter through each alias of that endpoint, one assertion per parameter. Each
parameter's fate, with its evidence, goes to run.json `parameter_fates`. EXTRA keeps the fields
that are not documented parameters (an unknown vendor field: forwarded or refused, never dropped).
"""

from __future__ import annotations

from harness.api import (
    MUST,
    PARAM_ACCEPTED,
    PARAM_ENDPOINTS,
    SPEC_OPENAI_EDITS,
    SPEC_OPENAI_IMAGES,
    SPEC_QWEN_IMAGE,
    SPEC_QWEN_IMAGE_ASYNC,
    SPEC_QWEN_IMAGE_EDIT,
    SPEC_QWEN_MT,
    SPEC_REPLICATE,
    CheckSkipped,
    ClientView,
    Driver,
    Judgement,
    ModelRoute,
    Parameter,
    UpstreamUnavailable,
    check,
    classify_fate,
    describe,
    param_plan,
    param_routes,
    reached_route,
    scenario,
    short,
    wire,
)

EDIT_INPUT = "input-1.png"
MT_TEXT = "生物传感器和石墨烯"


def step_name(route: ModelRoute, param: Parameter) -> str:
    return f"{route.alias} {param.name}"


def send(s: Driver, route: ModelRoute, param: Parameter) -> None:
    """One request carrying the parameter (and the companions a documented constraint asks for)."""
    fields = {param.client_field: param.client_value, **param.companions}
    name, client = step_name(route, param), param.endpoint.client
    if client == "chat":
        s.chat(name, route.alias, MT_TEXT, marked=False, **fields)
    elif client == "multipart":
        s.edit(name, route.alias, "make it snowy", EDIT_INPUT, **{k: wire(v) for k, v in fields.items()})
    else:
        s.generate(name, route.alias, **fields)


def scenario_name(check_id: str) -> str:
    return f"param-{check_id.lower()}"


def drive(check_id: str) -> None:
    endpoint = next(e for e in PARAM_ENDPOINTS if e.check_id == check_id)

    def run(s: Driver) -> None:
        for route in param_routes(endpoint, s.profile.models):
            for param in param_plan(endpoint, route).parameters:
                send(s, route, param)

    run.__name__ = f"send_each_{endpoint.provider}_{endpoint.capability.replace('.', '_')}_parameter"
    run.__doc__ = f"One request per documented parameter of {endpoint.name}, through each alias."
    scenario(scenario_name(check_id))(run)


def client_view(t: Judgement, name: str, chat: bool) -> ClientView:
    """What the client was told for one step. A request left unanswered while the gateway still
    answers is neither success nor refusal; a step that sent nothing (run budget spent) or met a
    gateway that stopped answering makes the whole check an error, by the run's timeout rule."""
    try:
        if chat:
            answer = t.answer(name)
            code = answer.status_code
            return ClientView(200 <= code < 300, 400 <= code < 500, f"{code} {short(answer.text, 160)}",
                              answer.text)
        result = t.job(name)
    except UpstreamUnavailable as exc:
        step = t.recording.step(name)
        if step is None or step.stopped or not step.exchanges:
            raise
        return ClientView(False, False, f"no answer ({exc})", "")
    submit = result.submit.status_code if result.submit is not None else 0
    body = " ".join([short(result.body, 2000), result.submit.text if result.submit else ""])
    return ClientView(result.status == "succeeded",
                      400 <= submit < 500 or (result.status == "failed" and submit < 500),
                      short(describe(result), 200), body)


# Fields an EXTRA check already judges on the same request shape: when such a parameter's fate is
# bad and that check fails too, it is one defect, reported by the check that owns the field.
OWNED_BY_EXTRA = {
    ("PARAM-003", "prompt_extend"): "EXTRA-002",
    ("PARAM-003", "watermark"): "EXTRA-003",
    ("PARAM-003", "negative_prompt"): "EXTRA-004",
    ("PARAM-003", "seed"): "EXTRA-005",
    ("PARAM-006", "translation_options"): "EXTRA-001",
}


def explained_by(t: Judgement, check_id: str, param: Parameter, step: str) -> set[str]:
    """The checks whose failure explains a bad fate of `param`: the alias's routing checks when
    nothing reached the route that reads it, the EXTRA check that owns the field."""
    owner = OWNED_BY_EXTRA.get((check_id, param.name.split(".")[0]))
    routing = set() if reached_route(param, t.upstream(step)) else t.routing_of(step)
    return routing | ({owner} if owner else set())


def judge_parameters(t: Judgement, check_id: str) -> None:
    """Every parameter of the endpoint, through each alias: record its fate, then judge each."""
    endpoint = next(e for e in PARAM_ENDPOINTS if e.check_id == check_id)
    routes = param_routes(endpoint, t.profile.models)
    if not routes:
        raise CheckSkipped(f"profile claims no {endpoint.provider} {endpoint.capability} alias for {endpoint.name}")
    fates = []
    for route in routes:
        plan = param_plan(endpoint, route)
        for name, why in plan.unsent.items():
            t.note(f"{route.alias}: `{name}` not sent: {why}")
        for param in plan.parameters:
            step = step_name(route, param)
            view = client_view(t, step, endpoint.client == "chat")
            fate = classify_fate(param, route.alias, t.upstream(step), view)
            t.record_fate(fate.to_dict())
            fates.append((fate, explained_by(t, check_id, param, step)))
    if not fates:
        raise CheckSkipped(f"no documented parameter of {endpoint.name} could be planned: "
                           + "; ".join(f"{k}: {v}" for r in routes for k, v in param_plan(endpoint, r).unsent.items()))
    t.note("fates: " + ", ".join(f"{f.alias} {f.parameter}={f.fate}" for f, _ in fates))
    # Parameters with no other check to explain them first, so an explained one never hides a
    # parameter's own defect.
    for fate, unless in sorted(fates, key=lambda pair: bool(pair[1])):
        t.expect(fate.fate in PARAM_ACCEPTED,
                 f"Every documented parameter of {endpoint.name} must reach {endpoint.provider} where it "
                 "reads it (unchanged, or converted by a documented mapping), or be refused with a 4xx "
                 "naming it; never dropped or altered.",
                 f"{fate.alias}: `{fate.parameter}` = {short(fate.value_sent, 120)} forwarded, mapped or refused",
                 f"{fate.alias}: `{fate.parameter}` {fate.fate}: {fate.arrived_as}", unless=unless)


for _endpoint in PARAM_ENDPOINTS:
    drive(_endpoint.check_id)


@check("PARAM-001", MUST, needs="image.generate", spec=SPEC_OPENAI_IMAGES, scenario=scenario_name("PARAM-001"))
def openai_generation_parameters(t: Judgement) -> None:
    """Every documented gpt-image option of OpenAI image generation is forwarded, or refused by name."""
    judge_parameters(t, "PARAM-001")


@check("PARAM-002", MUST, needs="image.edit", spec=SPEC_OPENAI_EDITS, scenario=scenario_name("PARAM-002"))
def openai_edit_parameters(t: Judgement) -> None:
    """Every documented option of OpenAI image edits (input_fidelity, ...) is forwarded, or refused by name."""
    judge_parameters(t, "PARAM-002")


@check("PARAM-003", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE, scenario=scenario_name("PARAM-003"))
def dashscope_sync_image_parameters(t: Judgement) -> None:
    """Every documented DashScope sync image parameter reaches `parameters` (size mapped), or is refused by name."""
    judge_parameters(t, "PARAM-003")


@check("PARAM-004", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE_ASYNC, scenario=scenario_name("PARAM-004"))
def dashscope_task_image_parameters(t: Judgement) -> None:
    """Every documented parameter of the DashScope task-API image model reaches `parameters`, or is refused by name."""
    judge_parameters(t, "PARAM-004")


@check("PARAM-005", MUST, needs="image.edit", spec=SPEC_QWEN_IMAGE_EDIT, scenario=scenario_name("PARAM-005"))
def dashscope_edit_parameters(t: Judgement) -> None:
    """Every documented DashScope image-edit parameter reaches `parameters` with its type, or is refused by name."""
    judge_parameters(t, "PARAM-005")


@check("PARAM-006", MUST, needs="chat", spec=SPEC_QWEN_MT, scenario=scenario_name("PARAM-006"))
def qwen_mt_translation_options(t: Judgement) -> None:
    """Qwen-MT `translation_options` and each of its members reach DashScope unchanged, or are refused by name."""
    judge_parameters(t, "PARAM-006")


@check("PARAM-007", MUST, needs="image.generate", spec=SPEC_REPLICATE, scenario=scenario_name("PARAM-007"))
def replicate_input_parameters(t: Judgement) -> None:
    """Every documented Replicate flux input reaches `input` (n as num_outputs), or is refused by name."""
    judge_parameters(t, "PARAM-007")
