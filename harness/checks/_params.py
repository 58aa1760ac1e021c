"""The documented parameters of each provider endpoint, generated from the request schemas.

The strict mocks judge every request against the model's request schema named in the provider's
catalogue (cassettes/<provider>/catalogue.yaml, schemas/). PARAM reads the same schemas, so the
mocks and PARAM agree on what a documented parameter is: every property where the provider reads
parameters (top level for OpenAI, `parameters` for DashScope images, `input` for Replicate,
`translation_options` and its members for Qwen-MT) is one parameter, unless it is structural or
listed in the endpoint's `skip` with the reason.

The value sent is taken from the schema: an `examples` entry, an enum member, a value in range or
the other boolean, never the documented `default`, and it must pass the model's schema (with the
companions a documented constraint asks for, such as output_format beside output_compression),
so the mock accepts it and a conversion would show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from referencing._core import Resolver

from harness.checks._checklib import DASHSCOPE_MULTIMODAL, DASHSCOPE_SYNTHESIS
from harness.config import _schemas as schemas
from harness.config._catalogue import load_catalogues
from harness.config._profile import ModelRoute
from harness.paths import CASSETTES_DIR
from harness.upstream.dashscope import ASYNC_ONLY_IMAGE_MODELS

DASHSCOPE_COMPAT_CHAT = "/compatible-mode/v1/chat/completions"
DASHSCOPE_TEXT_GENERATION = "/api/v1/services/aigc/text-generation/generation"
STREAMING = "changes the answer into an event stream, which these scenarios do not read"


@dataclass(frozen=True)
class Mapping:
    """A documented conversion between the client's OpenAI field and the provider's parameter."""

    client_field: str
    to_client: Callable[[Any], Any]
    source: str


# The documented mappings; every other parameter travels under its own name and value.
MAPPINGS: dict[tuple[str, str], Mapping] = {
    ("dashscope", "size"): Mapping("size", lambda v: str(v).replace("*", "x"),
                                   "OpenAI WxH becomes DashScope W*H (dashscope.md 2.1)"),
    ("replicate", "num_outputs"): Mapping("n", lambda v: v, "OpenAI n becomes Replicate input.num_outputs"),
}
# Documented constraints between parameters: a parameter is sent with these companions.
COMPANIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("openai", "output_compression"): {"output_format": "webp"},  # jpeg or webp only (openai_replicate.md A.1)
}


@dataclass(frozen=True)
class Endpoint:
    """One provider endpoint whose documented parameters one PARAM check judges."""

    check_id: str
    name: str
    provider: str
    capability: str
    route: str  # "METHOD /path" in the provider's catalogue: its request schema documents the parameters
    roots: dict[str, tuple[str, ...]]  # upstream path -> where the provider reads the parameters there
    client: str  # how the client sends them: "json" (images), "multipart" (edits), "chat"
    serves: Callable[[ModelRoute], bool]
    skip: dict[str, str] = field(default_factory=dict)  # parameter -> why PARAM does not send it
    only: tuple[str, ...] = ()  # judge just these parameters (and their members)
    structural: frozenset[str] = frozenset()  # what every request carries anyway (prompt, image)

    @property
    def multipart_upstream(self) -> bool:
        return self.provider == "openai" and self.client == "multipart"


@dataclass(frozen=True)
class Parameter:
    """One documented parameter with the value PARAM sends and where it must arrive."""

    endpoint: Endpoint
    name: str  # dotted below the reading root: "size", "translation_options.terms"
    value: Any  # what the provider must read there
    client_field: str  # the client's top-level field that carries it
    client_value: Any  # what the client puts in that field
    companions: dict[str, Any] = field(default_factory=dict)
    mapping: str = ""  # the documented mapping, when the client's form differs

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))


def _is_openai_gen(r: ModelRoute) -> bool:
    return r.provider == "openai" and r.capability == "image.generate"


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("PARAM-001", "OpenAI image generation", "openai", "image.generate",
             "POST /v1/images/generations", {"/v1/images/generations": ()}, "json",
             lambda r: r.provider == "openai",
             skip={"stream": STREAMING, "partial_images": STREAMING},
             structural=frozenset({"model", "prompt"})),
    Endpoint("PARAM-002", "OpenAI image edits", "openai", "image.edit",
             "POST /v1/images/edits", {"/v1/images/edits": ()}, "multipart",
             lambda r: r.provider == "openai",
             skip={"stream": STREAMING, "partial_images": STREAMING},
             structural=frozenset({"model", "prompt", "image", "image[]", "images", "mask"})),
    Endpoint("PARAM-003", "DashScope sync image generation", "dashscope", "image.generate",
             f"POST {DASHSCOPE_MULTIMODAL}", {DASHSCOPE_MULTIMODAL: ("parameters",)}, "json",
             lambda r: r.provider == "dashscope" and r.upstream_model not in ASYNC_ONLY_IMAGE_MODELS),
    Endpoint("PARAM-004", "DashScope async image generation (task API)", "dashscope", "image.generate",
             f"POST {DASHSCOPE_SYNTHESIS}", {DASHSCOPE_SYNTHESIS: ("parameters",)}, "json",
             lambda r: r.provider == "dashscope" and r.upstream_model in ASYNC_ONLY_IMAGE_MODELS,
             skip={"duration": "a video-synthesis parameter, not a text-to-image one (dashscope.md 2.4, 7)"}),
    Endpoint("PARAM-005", "DashScope image edit", "dashscope", "image.edit",
             f"POST {DASHSCOPE_MULTIMODAL}", {DASHSCOPE_MULTIMODAL: ("parameters",)}, "multipart",
             lambda r: r.provider == "dashscope"),
    Endpoint("PARAM-006", "Qwen-MT translation", "dashscope", "chat",
             f"POST {DASHSCOPE_COMPAT_CHAT}",
             {DASHSCOPE_COMPAT_CHAT: (), DASHSCOPE_TEXT_GENERATION: ("parameters",)}, "chat",
             lambda r: r.provider == "dashscope" and r.upstream_model.startswith("qwen-mt"),
             only=("translation_options",)),
    Endpoint("PARAM-007", "Replicate prediction input", "replicate", "image.generate",
             "POST /v1/models/{model}/predictions", {"/v1/models/{model}/predictions": ("input",),
                                                     "/v1/predictions": ("input",)}, "json",
             lambda r: r.provider == "replicate", structural=frozenset({"prompt"})),
)
ENDPOINT_BY_CHECK = {e.check_id: e for e in ENDPOINTS}


def routes_of(endpoint: Endpoint, routes: list[ModelRoute]) -> list[ModelRoute]:
    """Every alias of the profile that serves this endpoint (the parameter goes through each)."""
    return [r for r in routes if r.capability == endpoint.capability and endpoint.serves(r)]


def reading_root(endpoint: Endpoint, upstream_path: str) -> tuple[str, ...] | None:
    """Where the provider reads the parameters on the path a request reached, or None."""
    for path, root in endpoint.roots.items():
        if "{model}" in path:
            prefix, suffix = path.split("{model}")
            if upstream_path.startswith(prefix) and upstream_path.endswith(suffix):
                return root
        elif upstream_path == path:
            return root
    return None


# -- the schemas ------------------------------------------------------------------------------


@cache
def _catalogues() -> dict[str, Any]:
    return load_catalogues(CASSETTES_DIR)


def request_schema(endpoint: Endpoint, upstream_model: str) -> str | None:
    """The request schema the provider's catalogue names for this model on this endpoint."""
    catalogue = _catalogues().get(endpoint.provider)
    model = catalogue.model(upstream_model.split(":")[0]) if catalogue else None
    if model is None:
        return None
    method, path = endpoint.route.split(" ", 1)
    path = path.replace("{model}", model.id)
    found = model.endpoint(method, path)
    return found.request if found is not None else None


def _subschemas(schema: Any, resolver: Resolver, path: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Every subschema that applies at `path` (through $ref and allOf), outermost first."""
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        resolved = resolver.lookup(schema["$ref"])
        yield from _subschemas(resolved.contents, resolved.resolver, path)
    for part in schema.get("allOf", []):
        yield from _subschemas(part, resolver, path)
    if not path:
        yield schema
        for part in schema.get("anyOf", []):
            yield from _subschemas(part, resolver, path)
        return
    child = schema.get("properties", {}).get(path[0])
    if child is not None:
        yield from _subschemas(child, resolver, path[1:])


def subschemas(schema_id: str, path: tuple[str, ...]) -> list[dict[str, Any]]:
    registry = schemas.registry()
    return list(_subschemas(registry.contents(schema_id), registry.resolver(base_uri=schema_id), path))


def property_names(schema_id: str, path: tuple[str, ...]) -> list[str]:
    names: dict[str, None] = {}
    for sub in subschemas(schema_id, path):
        names.update(dict.fromkeys(sub.get("properties", {})))
    return list(names)


def candidates(parts: list[dict[str, Any]]) -> list[Any]:
    """Values the schema offers, in order: examples, enum members, numbers in range, booleans;
    never a documented default."""
    defaults = [p["default"] for p in parts if "default" in p]
    found: list[Any] = [e for p in parts for e in p.get("examples", [])]
    found += [p["const"] for p in parts if "const" in p]
    found += [v for p in parts for v in p.get("enum", []) if v is not None]
    types = {t for p in parts for t in ([p["type"]] if isinstance(p.get("type"), str) else p.get("type", []))}
    if "integer" in types:
        low = max((p["minimum"] for p in parts if "minimum" in p), default=0)
        high = min((p["maximum"] for p in parts if "maximum" in p), default=low + 2)
        found += [(low + high) // 2, low + 1, high]
    if "boolean" in types:
        found += [True, False]
    return [v for v in found if not any(same(v, d) for d in defaults)]


def same(a: Any, b: Any) -> bool:
    """Equal in value and JSON type (True is not 1, 1 is not "1")."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def wire(value: Any) -> Any:
    """A value as a multipart form field carries it (booleans as the OpenAI SDK writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def base_body(endpoint: Endpoint, model: str) -> dict[str, Any]:
    """The smallest valid provider request for the model: where a parameter is tried."""
    if endpoint.provider == "openai":
        body: dict[str, Any] = {"model": model, "prompt": "p"}
        if endpoint.client == "multipart":
            body["image"] = {"filename": "input-1.png", "content_type": "image/png"}
        return body
    if endpoint.provider == "replicate":
        return {"input": {"prompt": "p"}}
    if endpoint.capability == "chat":
        return {"model": model, "messages": [{"role": "user", "content": "p"}]}
    if endpoint.route.endswith(DASHSCOPE_SYNTHESIS):
        return {"model": model, "input": {"prompt": "p"}, "parameters": {}}
    content: list[dict[str, str]] = [{"text": "p"}]
    if endpoint.capability == "image.edit":
        content.insert(0, {"image": "data:image/png;base64,iVBORw0KGgo="})
    return {"model": model, "input": {"messages": [{"role": "user", "content": content}]}, "parameters": {}}


def with_value(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = dict(body)
    if len(path) == 1:
        out[path[0]] = value
    else:
        inner = out.get(path[0])
        out[path[0]] = with_value(inner if isinstance(inner, dict) else {}, path[1:], value)
    return out


def valid(endpoint: Endpoint, schema_id: str, model: str, root: tuple[str, ...],
          values: dict[str, Any]) -> bool:
    body = base_body(endpoint, model)
    for name, value in values.items():
        body = with_value(body, root + tuple(name.split(".")),
                          wire(value) if endpoint.multipart_upstream else value)
    return not list(schemas.validator(schema_id).iter_errors(body))


def pick(endpoint: Endpoint, schema_id: str, model: str, root: tuple[str, ...], name: str,
         others: dict[str, Any]) -> Any | None:
    """The first value the schema offers for `name` that the model's schema accepts with `others`."""
    for value in candidates(subschemas(schema_id, root + tuple(name.split(".")))):
        if valid(endpoint, schema_id, model, root, {**others, name: value}):
            return value
    return None


@dataclass(frozen=True)
class Plan:
    """What PARAM sends for one alias: the parameters, and those it cannot send (with why)."""

    parameters: tuple[Parameter, ...]
    unsent: dict[str, str]


def plan(endpoint: Endpoint, route: ModelRoute) -> Plan:
    """The parameters of `endpoint` for this alias's upstream model, values chosen."""
    model = route.upstream_model.split(":")[0]
    schema_id = request_schema(endpoint, model)
    if schema_id is None:
        return Plan((), {"*": f"the {endpoint.provider} catalogue names no request schema for {model} "
                              f"on {endpoint.route}"})
    root = next(iter(endpoint.roots.values()))
    found: list[Parameter] = []
    unsent: dict[str, str] = {}
    for name in property_names(schema_id, root):
        if name in endpoint.structural or (endpoint.only and name not in endpoint.only):
            continue
        if name in endpoint.skip:
            unsent[name] = endpoint.skip[name]
            continue
        if any(p.get("not") == {} for p in subschemas(schema_id, (*root, name))):
            unsent[name] = "the model's schema forbids it (not a parameter of this model)"
            continue
        members = property_names(schema_id, (*root, name))
        if members:
            found += object_parameters(endpoint, schema_id, model, root, name, members, unsent)
            continue
        companions = COMPANIONS.get((endpoint.provider, name), {})
        value = pick(endpoint, schema_id, model, root, name, companions)
        if value is None:
            unsent[name] = "the schema offers no valid value but the documented default"
            continue
        found.append(parameter(endpoint, name, value, companions))
    return Plan(tuple(found), unsent)


def object_parameters(endpoint: Endpoint, schema_id: str, model: str, root: tuple[str, ...], name: str,
                      members: list[str], unsent: dict[str, str]) -> list[Parameter]:
    """An object parameter (translation_options): the whole object, then each member alone, each
    sent with the members the schema requires."""
    required = [r for p in subschemas(schema_id, (*root, name)) for r in p.get("required", [])]
    first = {m: next(iter(candidates(subschemas(schema_id, (*root, name, m)))), None) for m in required}
    chosen: dict[str, Any] = {}
    for member in required + [m for m in members if m not in required]:
        value = pick(endpoint, schema_id, model, root, f"{name}.{member}",
                     {f"{name}.{k}": v for k, v in first.items() if k != member})
        if value is None:
            unsent[f"{name}.{member}"] = "the schema offers no valid non-default value"
        else:
            chosen[member] = value
    whole = dict(chosen)
    found = [Parameter(endpoint, name, whole, name, whole)]
    for member, value in chosen.items():
        sent = {**{k: v for k, v in chosen.items() if k in required}, member: value}
        found.append(Parameter(endpoint, f"{name}.{member}", value, name, sent))
    return found


def parameter(endpoint: Endpoint, name: str, value: Any, companions: dict[str, Any]) -> Parameter:
    mapping = MAPPINGS.get((endpoint.provider, name))
    if mapping is not None:
        return Parameter(endpoint, name, value, mapping.client_field, mapping.to_client(value), companions,
                         mapping.source)
    return Parameter(endpoint, name, value, name, value, companions)
