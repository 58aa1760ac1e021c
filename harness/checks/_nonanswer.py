"""A non-answer is never a pass.

The gateway under test speaks an HTTP+JSON API. A 2xx answer whose body is not JSON (an HTML
login page, a catch-all proxy's "OK", an empty 200) says nothing a check could judge: it is a
non-answer. A check that read one fails (warns, for SHOULD) unless it already failed for a
reason of its own, and a check that broke on reading it reports that, not a harness error.
Media bodies (image/*, video/*) are answers: they are what a download should return.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from harness.records._outcome import Exchange, clip

REQUIREMENT = "The gateway must answer in JSON: a 2xx answer that is not JSON is no answer a client can use."
EXPECTED = "a JSON body on every 2xx answer"
CLIPPED = re.compile(r"\.\.\. \[\d+ more chars\]\Z")  # what records._outcome.clip appends


def is_non_answer(status: int | None, content_type: str, text: str) -> bool:
    if status is None or not 200 <= status < 300 or content_type.startswith(("image/", "video/")):
        return False
    if CLIPPED.search(text):  # evidence keeps a long body's head only: judge by how it starts
        return not text.lstrip().startswith(("{", "["))
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


def non_answers(exchanges: Iterable[Exchange]) -> list[str]:
    """One line per non-answer among the exchanges (as the evidence names them)."""
    found = []
    for x in exchanges:
        content_type = x.response_headers.get("content-type", "")
        if is_non_answer(x.status, content_type, x.response_body):
            found.append(f"{x.method} {x.url} -> {x.status} {content_type or 'no content-type'}: "
                         f"{clip(' '.join(x.response_body.split()), 120)}")
    return found


def describe(found: list[str]) -> str:
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return found[0] + more
