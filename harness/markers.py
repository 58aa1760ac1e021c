"""The marker a check puts in its prompt, so upstreams can pick a scenario and tag captures.

Gateways forward prompts untouched, which makes the prompt the one channel from a check,
through any gateway, to the mock upstream:  ``gwconf:ASYNC-003:8f2c91ab scenario=task-failed``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

MARKER_RE = re.compile(
    r"gwconf:(?P<check>[A-Z]+-\d{3}):(?P<token>[0-9a-f]{8,32})(?: scenario=(?P<scenario>[a-z0-9][a-z0-9.\-]*))?"
)


@dataclass(frozen=True)
class Marker:
    check_id: str
    token: str
    scenario: str | None = None

    def __str__(self) -> str:
        text = f"gwconf:{self.check_id}:{self.token}"
        return f"{text} scenario={self.scenario}" if self.scenario else text


def new_token() -> str:
    return secrets.token_hex(6)


def find_marker(text: str) -> Marker | None:
    match = MARKER_RE.search(text)
    if match is None:
        return None
    return Marker(match["check"], match["token"], match["scenario"])
