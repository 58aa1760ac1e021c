"""Scrubbing of secrets: nothing that authenticates ever reaches a capture, cassette or report.

A redacted value keeps a short SHA-256 fingerprint so that a check can still tell *which* key
travelled (the client's or the gateway's) without the key itself being stored.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "openai-api-key",
        "x-portkey-api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
    }
)

# Shapes of provider keys, so a key the harness was never told about is still caught.
KEY_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"),
    re.compile(r"\br8_[A-Za-z0-9]{12,}"),
    re.compile(r"\bgwk-[A-Za-z0-9_\-]{8,}"),
)


def fingerprint(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


@lru_cache(maxsize=4096)  # a run sends the same few keys thousands of times
def redacted(secret: str) -> str:
    if secret.startswith("[REDACTED "):  # already scrubbed: keep the original fingerprint
        return secret
    return f"[REDACTED {fingerprint(secret)}]"


def bearer_token(value: str) -> str:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() in {"bearer", "token", "basic"} and token else value


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]],
                   secrets: Iterable[str] = ()) -> dict[str, str]:
    return Scrubber(secrets).headers(headers)


def longest_first(secrets: Iterable[str]) -> tuple[str, ...]:
    """Longest first, so a secret that contains another is replaced whole."""
    return tuple(sorted({s for s in secrets if s}, key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret and every key-shaped token in `text`."""
    return _scrub(text, longest_first(secrets))


def _scrub(text: str, ordered: tuple[str, ...]) -> str:
    # Recordings hold thousands of strings: test before replacing, and skip the key patterns
    # where no key prefix occurs (most strings), so scrubbing a run stays cheap.
    for secret in ordered:
        if secret in text:
            text = text.replace(secret, redacted(secret))
    # Every key shape (KEY_PATTERNS) starts with one of these prefixes: a string holding none of them
    # needs no regex pass. Spelled out, not a loop: this runs for every string a mock captures.
    if "sk-" in text or "r8_" in text or "gwk-" in text:
        for pattern in KEY_PATTERNS:
            text = pattern.sub(lambda m: redacted(m.group(0)), text)
    return text


def scrub_data(value: object, secrets: Iterable[str] = ()) -> object:
    """`scrub` applied to every string inside a JSON-like structure."""
    return _scrub_data(value, longest_first(secrets))


def _scrub_data(value: object, ordered: tuple[str, ...]) -> object:
    if isinstance(value, str):
        return _scrub(value, ordered)
    if isinstance(value, dict):
        return {
            k: (redacted(bearer_token(v)) if isinstance(v, str) and k.lower() in SECRET_HEADERS
                else _scrub_data(v, ordered))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub_data(v, ordered) for v in value]
    return value


class Scrubber:
    """`scrub`, `scrub_data` and `redact_headers` for one set of secrets, ordered once: a mock
    scrubs every request it captures with the same secrets."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.ordered = longest_first(secrets)

    def text(self, text: str) -> str:
        return _scrub(text, self.ordered)

    def data(self, value: object) -> object:
        return _scrub_data(value, self.ordered)

    def headers(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
        items = headers.items() if isinstance(headers, Mapping) else headers
        clean: dict[str, str] = {}
        for name, value in items:
            lower = name.lower()
            clean[lower] = redacted(bearer_token(value)) if lower in SECRET_HEADERS else _scrub(value, self.ordered)
        return clean
