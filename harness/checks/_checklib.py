"""What check authors share: provider route sets, the spec URLs, small pure predicates."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from harness.config import _schemas as schemas
from harness.config._profile import ModelRoute
from harness.config._redact import bearer_token, redacted
from harness.gateway.client import JobResult
from harness.records._capture import CapturedRequest
from harness.upstream.server import DASHSCOPE_REGIONS, REAL_HOSTS

DEFAULT_DASHSCOPE_REGION = DASHSCOPE_REGIONS["dashscope"]  # an alias bound to no region is Beijing's
DASHSCOPE_REGION_HOSTS = {region: REAL_HOSTS[name] for name, region in DASHSCOPE_REGIONS.items()}

__all__ = ["DASHSCOPE_REGIONS"]  # re-exported through harness.api
# How a secret looks once a recording is scrubbed (harness.config._redact): a fingerprint, never the key.
SCRUBBED_SECRET = "[REDACTED sha256:"

DASHSCOPE_MULTIMODAL = "/api/v1/services/aigc/multimodal-generation/generation"
DASHSCOPE_SYNTHESIS = "/api/v1/services/aigc/text2image/image-synthesis"
# Where the async-only text-to-image models (wan, wanx) are submitted.
DASHSCOPE_TASK_SUBMIT_PATHS = frozenset({DASHSCOPE_SYNTHESIS})
DASHSCOPE_IMAGE_PATHS = frozenset({DASHSCOPE_MULTIMODAL, DASHSCOPE_SYNTHESIS,
                                   "/api/v1/services/aigc/image-generation/generation"})
DASHSCOPE_CHAT_PATHS = frozenset({"/compatible-mode/v1/chat/completions",
                                  "/api/v1/services/aigc/text-generation/generation"})
# DashScope image models that only the async task API serves: the checks' own table (the mocks
# and the reference gateway keep theirs; tests/test_oracles.py compares them).
DASHSCOPE_TASK_MODELS = frozenset({"wan2.5-t2i-preview", "wan2.2-t2i-flash", "wan2.2-t2i-plus",
                                   "wanx2.1-t2i-turbo", "wanx2.1-t2i-plus", "wanx2.0-t2i-turbo", "wanx-v1"})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The fields of an item of ImagesResponse.data[] (OpenAI's `Image` schema; openai_replicate.md A.2).
OPENAI_IMAGE_ITEM_FIELDS = frozenset({"url", "b64_json", "revised_prompt"})

SPEC_QWEN_IMAGE = "https://www.alibabacloud.com/help/en/model-studio/qwen-image-api"
SPEC_QWEN_IMAGE_ASYNC = "https://docs.qwencloud.com/api-reference/image-generation/qwen-text-to-image-async"
SPEC_QWEN_IMAGE_EDIT = "https://www.alibabacloud.com/help/en/model-studio/qwen-image-edit-api"
SPEC_DASHSCOPE_TASKS = "https://www.alibabacloud.com/help/en/model-studio/manage-asynchronous-tasks"
SPEC_DASHSCOPE_ERRORS = "https://www.alibabacloud.com/help/en/model-studio/error-code"
SPEC_QWEN_MT = "https://www.alibabacloud.com/help/en/model-studio/machine-translation"
SPEC_DASHSCOPE_COMPAT = ("https://www.alibabacloud.com/help/en/model-studio/"
                         "compatibility-of-openai-with-dashscope")
SPEC_OPENAI_IMAGES = "https://platform.openai.com/docs/api-reference/images/create"
SPEC_OPENAI_EDITS = "https://platform.openai.com/docs/api-reference/images/createEdit"
SPEC_OPENAI_ERRORS = "https://platform.openai.com/docs/guides/error-codes"
SPEC_OPENAI_CHAT = "https://platform.openai.com/docs/api-reference/chat/create"
SPEC_REPLICATE = "https://replicate.com/docs/reference/http"
SPEC_JOBS = "https://therouter-docs.pages.dev/docs/guides/features/async-media/"
SPEC_RFC9110_RETRY_AFTER = "https://www.rfc-editor.org/rfc/rfc9110#name-retry-after"
SPEC_OWASP_API1 = "https://owasp.org/API-Security/editions/2023/en/0xa1-broken-object-level-authorization/"
SPEC_OWASP_AUTH = "https://owasp.org/API-Security/editions/2023/en/0xa2-broken-authentication/"

# Headers a provider reads its key from (DashScope, OpenAI and Replicate: Authorization).
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-key")
# What a client or gateway sends when the key it meant to send was missing: a template that
# rendered an absent variable, or an empty bearer.
PLACEHOLDER_CREDENTIALS = frozenset({"", "undefined", "null", "none", "nil", "nan", "[object object]",
                                     "bearer", "token", "${api_key}", "{api_key}", "<api_key>"})


def is_dashscope_task_image(route: ModelRoute) -> bool:
    """A DashScope image model only the async task API serves (the wan text-to-image ones)."""
    return route.provider == "dashscope" and route.upstream_model in DASHSCOPE_TASK_MODELS


def is_dashscope_sync_image(route: ModelRoute) -> bool:
    """A DashScope image model the sync multimodal route serves (where `parameters` live)."""
    return route.provider == "dashscope" and route.upstream_model not in DASHSCOPE_TASK_MODELS


def image_paths_of(provider: str, upstream_model: str) -> set[str]:
    """Where a provider takes an image generation for this model."""
    if provider == "dashscope":
        return set(DASHSCOPE_IMAGE_PATHS)
    if provider == "openai":
        return {"/v1/images/generations"}
    return {f"/v1/models/{upstream_model.split(':')[0]}/predictions", "/v1/predictions"}


def alias_step(route: ModelRoute) -> str:
    """The every-alias scenario's step for a route (one alias may serve several capabilities)."""
    return f"{route.capability} {route.alias}"


def schema_errors(name: str, document: Any) -> list[str]:
    """Problems of `document` against one of gwconf's JSON Schemas (none when it conforms)."""
    return schemas.errors(name, document)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def placeholder_marks() -> dict[str, str]:
    """How each placeholder looks once a capture is scrubbed: a credential header is stored as the
    fingerprint of its token (`Bearer undefined` -> fingerprint of `undefined`), a scheme with no
    token as the fingerprint of the whole value."""
    tokens = {v for p in PLACEHOLDER_CREDENTIALS for v in (p, p.title(), p.upper())}
    schemes = {f"{s}{gap}" for s in ("Bearer", "bearer", "Token", "Basic") for gap in ("", " ")}
    return {redacted(v): v for v in tokens | schemes}


PLACEHOLDER_MARKS = placeholder_marks()


def placeholder_credential(record: CapturedRequest) -> str | None:
    """The credential header of an upstream request that carries no real key, as `name: value`,
    or None."""
    for name in CREDENTIAL_HEADERS:
        value = record.header(name)
        if value is not None and (value.strip() in PLACEHOLDER_MARKS or not bearer_token(value).strip()
                                  or bearer_token(value).strip().lower() in PLACEHOLDER_CREDENTIALS):
            return f"{name}: {PLACEHOLDER_MARKS.get(value.strip(), value)!r}"
    return None


def carries_mark(record: CapturedRequest, marks: list[str]) -> bool:
    """A client key's fingerprint anywhere in what reached the provider (headers, body, query)."""
    seen = str(record.headers) + str(record.body) + str(record.query)
    return any(m in seen for m in marks)


def submits(records: list[CapturedRequest]) -> list[CapturedRequest]:
    return [r for r in records if r.method == "POST"]


def unmarked_during(t: Any, step: str) -> list[CapturedRequest]:
    """Upstream requests without any marker that arrived while `step` ran: after the last request
    of the steps before it and before the first of the steps after it (capture order is arrival
    order). Checks still filter them by route: under xdist another scenario's can fall in the window."""
    steps = t.recording.steps
    index = next(i for i, s in enumerate(steps) if s.name == step)
    before = max((r.seq for s in steps[:index] for r in s.upstream), default=-1)
    after = min((r.seq for s in steps[index + 1:] for r in s.upstream), default=float("inf"))
    return [r for r in t.recording.stray if r.token is None and before < r.seq < after]


def paths(records: list[CapturedRequest]) -> list[str]:
    return [f"{r.provider} {r.method} {r.path}" for r in records]


def dashscope_parameters(record: CapturedRequest) -> dict[str, Any]:
    params = record.json_body().get("parameters")
    return params if isinstance(params, dict) else {}


def dashscope_content(record: CapturedRequest) -> list[dict[str, Any]]:
    messages = record.json_body().get("input", {}).get("messages", [])
    if not messages or not isinstance(messages[0], dict):
        return []
    content = messages[0].get("content", [])
    return [c for c in content if isinstance(c, dict)] if isinstance(content, list) else []


def decode_b64(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return None


def exactly_equal(got: Any, want: Any) -> bool:
    """`==` that also compares types, all the way down: `watermark: 1` is not `true`, and 1.0 is
    not 1 (JSON keeps the difference, and DashScope's parameters are typed)."""
    if type(got) is not type(want):
        return False
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(exactly_equal(got[k], want[k]) for k in want)
    if isinstance(want, (list, tuple)):
        return len(got) == len(want) and all(exactly_equal(a, b) for a, b in zip(got, want, strict=True))
    return bool(got == want)


def failure_text(result: JobResult) -> str:
    """Everything the client was told about a failure, for looking up the provider's reason."""
    parts = [json.dumps(result.body, ensure_ascii=False)]
    if result.submit is not None:
        parts.append(result.submit.text)
    return " ".join(parts)


# Error types and codes that tell a client "the server failed" (OpenAI's server_error, the usual
# gateway words for it): a content-policy refusal dressed in one of them reads as a retryable fault.
SERVER_FAULT_WORDS = frozenset({"server_error", "api_error", "upstream_error", "internal_error",
                                "internal_server_error", "service_unavailable"})


def reads_as_server_fault(result: JobResult) -> bool:
    """The client was told the failure was the server's: a 5xx, or an error whose type, code or
    status says so."""
    if result.submit is not None and result.submit.status_code >= 500:
        return True
    error = result.body.get("error") if isinstance(result.body, dict) else None
    if not isinstance(error, dict):
        return False
    words = {str(error.get(k, "")).lower() for k in ("type", "code")}
    numbers = [error.get(k) for k in ("code", "status", "status_code")]
    return bool(words & SERVER_FAULT_WORDS) or any(
        str(n).isdigit() and int(str(n)) >= 500 for n in numbers if n is not None)


def is_error_envelope(body: Any) -> bool:
    err = body.get("error") if isinstance(body, dict) else None
    return isinstance(err, dict) and isinstance(err.get("message"), str) and bool(err["message"])


def short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "..."


def describe(result: JobResult) -> str:
    code = result.submit.status_code if result.submit is not None else "-"
    return f"HTTP {code}, job status {result.status}, body {short(result.body)}"


def expect_only_on(t: Any, sent: list[CapturedRequest], good: Any, requirement: str, expected: str) -> None:
    """At least one upstream request, and every one of them satisfying `good`."""
    matching = [r for r in sent if good(r)]
    t.expect(matching and len(matching) == len(sent), requirement, expected,
             ", ".join(paths(sent)) or "no upstream request")


def json_object(response: Any) -> dict[str, Any]:
    """The answer's JSON object, or {} when the gateway sent anything else (or nothing)."""
    if response is None:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
