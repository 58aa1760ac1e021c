"""The marker a check puts in its prompt, so upstreams can pick a scenario and tag captures.

Gateways forward prompts untouched, which makes the prompt the one channel from a scenario
step, through any gateway, to the mock upstream:  ``gwconf:task-fails:8f2c91ab scenario=image-async-failed``
(``scenario=`` names the cassette the mock plays; the token identifies the step).
A scenario may name one provider (``scenario=error-429@openai``): the others answer as usual,
which is how a fallback chain is driven.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

MARKER_RE = re.compile(
    r"gwconf:(?P<check>[A-Z]+-\d{3}|[a-z][a-z0-9\-]*):(?P<token>[0-9a-f]{8,32})"
    r"(?: scenario=(?P<scenario>[a-z0-9][a-z0-9.\-]*)(?:@(?P<provider>[a-z][a-z0-9\-]*))?)?"
)


@dataclass(frozen=True)
class Marker:
    check_id: str  # the check or the scenario that sent it
    token: str
    scenario: str | None = None
    provider: str | None = None  # the scenario applies at this provider only (fallback chains)

    def __str__(self) -> str:
        text = f"gwconf:{self.check_id}:{self.token}"
        if not self.scenario:
            return text
        return f"{text} scenario={self.scenario}" + (f"@{self.provider}" if self.provider else "")

    def scenario_for(self, provider: str) -> str | None:
        """The scenario this provider must play; None means its default answer."""
        return self.scenario if self.provider in (None, provider) else None


def new_token() -> str:
    return secrets.token_hex(6)


def find_marker(text: str) -> Marker | None:
    match = MARKER_RE.search(text)
    if match is None:
        return None
    return Marker(match["check"], match["token"], match["scenario"], match["provider"])
