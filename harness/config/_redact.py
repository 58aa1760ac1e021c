"""Scrubbing of secrets: nothing that authenticates ever reaches a capture, cassette or report.

A redacted value keeps a short SHA-256 fingerprint so that a check can still tell *which* key
travelled (the client's or the gateway's) without the key itself being stored.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

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


def redacted(secret: str) -> str:
    if secret.startswith("[REDACTED "):  # already scrubbed: keep the original fingerprint
        return secret
    return f"[REDACTED {fingerprint(secret)}]"


def bearer_token(value: str) -> str:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() in {"bearer", "token", "basic"} and token else value


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]],
                   secrets: Iterable[str] = ()) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    secrets = tuple(secrets)
    clean: dict[str, str] = {}
    for name, value in items:
        lower = name.lower()
        clean[lower] = redacted(bearer_token(value)) if lower in SECRET_HEADERS else scrub(value, secrets)
    return clean


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret and every key-shaped token in `text`."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, redacted(secret))
    for pattern in KEY_PATTERNS:
        text = pattern.sub(lambda m: redacted(m.group(0)), text)
    return text


def scrub_data(value: object, secrets: Iterable[str] = ()) -> object:
    """`scrub` applied to every string inside a JSON-like structure."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, dict):
        return {
            k: (redacted(bearer_token(v)) if isinstance(v, str) and k.lower() in SECRET_HEADERS
                else scrub_data(v, secrets))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub_data(v, secrets) for v in value]
    return value
