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

from jsonschema import Draft202012Validator, FormatChecker
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
    RouteSchemas("openai", "POST", re.compile(r"^/v1/images/edits$"), "openai/images-edit.request",
                 "openai/images-response"),
    RouteSchemas("openai", "POST", re.compile(r"^/v1/chat/completions$"),
                 "openai/chat-completion.request", "openai/chat-completion.response"),
    RouteSchemas("openai", "POST", re.compile(r"^/v1/videos$"), "openai/video.request", "openai/video"),
    RouteSchemas("openai", "GET", re.compile(r"^/v1/videos/[^/]+$"), None, "openai/video"),
    RouteSchemas("replicate", "POST", re.compile(r"^/v1/predictions$"),
                 "replicate/prediction-version.request", "replicate/prediction"),
    RouteSchemas("replicate", "POST", re.compile(r"^/v1/models/[^/]+/[^/]+/predictions$"),
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


# Size rules that a pattern cannot say: products, ratios and divisibility (schemas name them
# in `format`). Each takes the wire string and answers whether it follows the rule.
DASHSCOPE_SIZE = re.compile(r"^(\d+)\*(\d+)$")
OPENAI_SIZE = re.compile(r"^(\d+)x(\d+)$")


def _sides(pattern: re.Pattern[str], value: object) -> tuple[int, int] | None:
    match = pattern.match(value) if isinstance(value, str) else None
    return (int(match[1]), int(match[2])) if match else None


def dashscope_area_512_2048(value: object) -> bool:
    """qwen-image-2.0: total pixels between 512*512 and 2048*2048 (dashscope.md 2.1)."""
    sides = _sides(DASHSCOPE_SIZE, value)
    return sides is not None and 512 * 512 <= sides[0] * sides[1] <= 2048 * 2048


def dashscope_sides(low: int, high: int) -> Any:
    def rule(value: object) -> bool:
        sides = _sides(DASHSCOPE_SIZE, value)
        return sides is not None and all(low <= side <= high for side in sides)
    return rule


def gpt_image_2_size(value: object) -> bool:
    """gpt-image-2: auto, or WxH with both sides divisible by 16, aspect ratio between 1:3 and
    3:1, at most 3840x2160 (openai_replicate.md A.1)."""
    if value == "auto":
        return True
    sides = _sides(OPENAI_SIZE, value)
    if sides is None:
        return False
    width, height = sides
    return (width > 0 and height > 0 and width % 16 == 0 and height % 16 == 0
            and max(width, height) <= 3 * min(width, height)
            and max(width, height) <= 3840 and width * height <= 3840 * 2160)


FORMATS = FormatChecker()
for _name, _rule in {
    "dashscope-area-512-2048": dashscope_area_512_2048,
    "dashscope-sides-512-1440": dashscope_sides(512, 1440),
    "dashscope-sides-512-2048": dashscope_sides(512, 2048),
    "openai-gpt-image-2-size": gpt_image_2_size,
}.items():
    FORMATS.checks(_name)(_rule)
for _name, _check in Draft202012Validator.FORMAT_CHECKER.checkers.items():
    FORMATS.checkers.setdefault(_name, _check)


@cache
def validator(name: str, root: Path = SCHEMAS_DIR) -> Draft202012Validator:
    reg = registry(root)
    schema = reg.contents(name)
    return Draft202012Validator(schema, registry=reg, format_checker=FORMATS)


def errors(name: str, instance: Any) -> list[str]:
    """Every way `instance` breaks schema `name`, as `at /json/pointer: message` lines."""
    found = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"at /{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]
