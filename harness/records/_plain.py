"""Records as plain data, for JSON and for scrubbing."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any


@functools.cache
def _names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(kind))


def plain(value: Any) -> Any:
    """`dataclasses.asdict` without its deep copy of every leaf: records hold only JSON values
    (strings, numbers, lists, dicts), which need no copy, and a run turns thousands of them into
    dicts to scrub and store them."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: plain(getattr(value, name)) for name in _names(type(value))}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
