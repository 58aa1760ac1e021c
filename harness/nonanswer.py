"""A non-answer is never a pass.

The gateway under test speaks an HTTP+JSON API. A 2xx answer whose body is not JSON (an HTML
login page, a catch-all proxy's "OK", an empty 200) says nothing the check could judge: it is a
non-answer. A check that saw one fails (warns, for SHOULD) unless it already failed for a
reason of its own, and a check that broke on reading it reports that, not a harness error.
Media bodies (image/*, video/*) are answers: they are what a download should return.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.errors import CheckFailed, CheckSkipped, UpstreamUnavailable

REQUIREMENT = "The gateway must answer in JSON: a 2xx answer that is not JSON is no answer a client can use."


def is_non_answer(status: int, content_type: str, text: str) -> bool:
    if not 200 <= status < 300 or content_type.startswith(("image/", "video/")):
        return False
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


@contextmanager
def judged(t: Any) -> Iterator[None]:
    """Around a check body (`t` its CheckContext): the non-answers its client saw decide it."""
    try:
        yield
    except (CheckFailed, CheckSkipped, UpstreamUnavailable):
        raise
    except Exception as exc:  # e.g. a JSONDecodeError on the non-answer: the gateway's failure
        if t.client.non_answers:
            fail(t, exc)
        raise
    if t.client.non_answers:
        fail(t, None)


def fail(t: Any, cause: Exception | None) -> None:
    first = t.client.non_answers[0]
    more = f" (and {len(t.client.non_answers) - 1} more)" if len(t.client.non_answers) > 1 else ""
    try:
        t.fail(REQUIREMENT, "a JSON body on every 2xx answer", first + more)
    except CheckFailed as failed:
        if cause is not None:
            raise failed from cause
        raise
