"""The cheapest size a black-box run may ask a model for, from the provider catalogue.

A black box calls a real provider, which bills by the image and, for most models, by its size.
Where a scenario picks a size, a black-box run asks for the smallest one the model's request
schema allows instead (cassettes/<provider>/catalogue.yaml names that schema): the smallest of
a documented list, or the lower bound of a documented range. The answer is in the client's
OpenAI form (`WxH`); the gateway converts it as it converts any size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from harness.config import _schemas as schemas
from harness.config._catalogue import load_catalogues

SIDES = re.compile(r"^(\d+)[*x](\d+)$")
# The smallest size each size rule of the schemas (harness/config/_schemas.py FORMATS) allows.
# gpt-image-2's rule sets no lower bound; 1024x1024 is the smallest size OpenAI documents for
# its GPT image models (openai_replicate.md A.1: 1024x1024, 1536x1024, 1024x1536).
SMALLEST_BY_FORMAT = {
    "dashscope-area-512-2048": "512*512",
    "dashscope-sides-512-1440": "512*512",
    "dashscope-sides-512-2048": "512*512",
    "openai-gpt-image-2-size": "1024x1024",
}


def area(size: str) -> int | None:
    match = SIDES.match(size)
    return int(match[1]) * int(match[2]) if match else None


def size_rules(schema: Any, resolver: Any, seen: frozenset[str] = frozenset()) -> Iterator[dict[str, Any]]:
    """Every `size` property of a schema, following its `$ref`s (allOf, nested objects); the
    resolver is referencing's, for the schema's own `$id`."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            resolved = resolver.lookup(ref)
            yield from size_rules(resolved.contents, resolved.resolver, seen | {ref})
        size = schema.get("properties", {}).get("size") if isinstance(schema.get("properties"), dict) else None
        if isinstance(size, dict):
            yield size
            yield from size_rules(size, resolver, seen)
        for key, value in schema.items():
            if key not in ("size", "$ref"):
                yield from size_rules(value, resolver, seen)
    elif isinstance(schema, list):
        for item in schema:
            yield from size_rules(item, resolver, seen)


def smallest(request_schema: str) -> str | None:
    """The smallest size a request schema allows, or None when it bounds none."""
    registry = schemas.registry()
    resolver = registry.resolver(base_uri=request_schema)
    candidates: list[str] = []
    for rule in size_rules(registry.contents(request_schema), resolver):
        candidates += [v for v in rule.get("enum", []) if isinstance(v, str) and area(v)]
        if rule.get("format") in SMALLEST_BY_FORMAT:
            candidates.append(SMALLEST_BY_FORMAT[rule["format"]])
    return min(candidates, key=lambda s: area(s) or 0, default=None)


@cache
def cheapest_size(cassettes_dir: Path, provider: str, upstream_model: str, capability: str) -> str | None:
    """The cheapest size to ask this model for, as `WxH`; None when the catalogue bounds none."""
    catalogue = load_catalogues(cassettes_dir).get(provider)
    model = catalogue.model(upstream_model) if catalogue is not None else None
    if model is None:
        return None
    sizes = [smallest(e.request) for e in model.endpoints if e.capability == capability and e.request]
    found = [s for s in sizes if s]
    return min(found, key=lambda s: area(s) or 0).replace("*", "x") if found else None
