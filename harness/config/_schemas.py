"""JSON Schemas of the wire formats, cassettes, profiles and reports (draft 2020-12).

Every schema file under ``schemas/`` is registered under its ``$id`` (the path below
``schemas/`` without ``.schema.json``, e.g. ``openai/images-response``), so schemas refer to
each other by those short names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from harness.paths import SCHEMAS_DIR


@dataclass(frozen=True)
class RouteSchemas:
    """Which schemas describe one provider route's request and successful answer."""

    provider: str
    method: str
    path: re.Pattern[str]
    request: str | None
    response: str | None


# The provider routes the cassettes may use, with the schemas their traffic must follow.
ROUTES: tuple[RouteSchemas, ...] = (
    RouteSchemas("dashscope", "POST", re.compile(r"^/api/v1/services/aigc/multimodal-generation/generation$"),
                 "dashscope/multimodal-generation.request", "dashscope/multimodal-generation.response"),
    RouteSchemas("dashscope", "POST", re.compile(r"^/api/v1/services/aigc/[a-z0-9-]+/(image|video)-synthesis$"),
                 "dashscope/synthesis.request", "dashscope/task-submit.response"),
    RouteSchemas("dashscope", "POST", re.compile(r"^/api/v1/services/aigc/image-generation/generation$"),
                 "dashscope/multimodal-generation.request", "dashscope/task-submit.response"),
    RouteSchemas("dashscope", "GET", re.compile(r"^/api/v1/tasks/[^/]+$"),
                 None, "dashscope/task.response"),
    RouteSchemas("dashscope", "POST", re.compile(r"^/api/v1/services/aigc/text-generation/generation$"),
                 "dashscope/text-generation.request", "dashscope/text-generation.response"),
    RouteSchemas("dashscope", "POST", re.compile(r"^/compatible-mode/v1/chat/completions$"),
                 "dashscope/compatible-chat.request", "openai/chat-completion.response"),
    RouteSchemas("openai", "POST", re.compile(r"^/v1/images/generations$"),
                 "openai/images-generation.request", "openai/images-response"),
    RouteSchemas("openai", "POST", re.compile(r"^/v1/images/edits$"), None, "openai/images-response"),
    RouteSchemas("openai", "POST", re.compile(r"^/v1/chat/completions$"),
                 "openai/chat-completion.request", "openai/chat-completion.response"),
    RouteSchemas("openai", "POST", re.compile(r"^/v1/videos$"), "openai/video.request", "openai/video"),
    RouteSchemas("openai", "GET", re.compile(r"^/v1/videos/[^/]+$"), None, "openai/video"),
    RouteSchemas("replicate", "POST", re.compile(r"^/v1/(models/[^/]+/[^/]+/)?predictions$"),
                 "replicate/prediction.request", "replicate/prediction"),
    RouteSchemas("replicate", "GET", re.compile(r"^/v1/predictions/[^/]+$"), None, "replicate/prediction"),
)

ERROR_SCHEMAS = {
    "dashscope": "dashscope/error",
    "openai": "openai/error-response",
    "replicate": "replicate/error",
}


def route_schemas(provider: str, method: str, path: str) -> RouteSchemas | None:
    return next((r for r in ROUTES if r.provider == provider and r.method == method
                 and r.path.match(path)), None)


def response_schema(provider: str, method: str, path: str, status: int) -> str | None:
    if status >= 400:
        if provider == "dashscope" and path.startswith("/compatible-mode/"):
            return "openai/error-response"
        return ERROR_SCHEMAS[provider]
    route = route_schemas(provider, method, path)
    return route.response if route else None


def schema_id(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix().removesuffix(".schema.json")


@cache
def registry(root: Path = SCHEMAS_DIR) -> Registry:
    resources = []
    for path in sorted(root.rglob("*.schema.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        contents.setdefault("$id", schema_id(path, root))
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


@cache
def validator(name: str, root: Path = SCHEMAS_DIR) -> Draft202012Validator:
    reg = registry(root)
    schema = reg.contents(name)
    return Draft202012Validator(schema, registry=reg,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(name: str, instance: Any) -> list[str]:
    """Every way `instance` breaks schema `name`, as `at /json/pointer: message` lines."""
    found = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"at /{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]
