"""`gwconf cassettes validate`: every cassette against the cassette schema and its wire schemas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from harness import schemas
from harness.cassette import Cassette, cassette_files, load_cassette, raw_document
from harness.errors import ConfigError
from harness.redact import KEY_PATTERNS, SECRET_HEADERS


def problems_in(path: Path) -> Iterator[str]:
    """`file: interaction N: message` for every problem in one cassette."""
    try:
        cassette = load_cassette(path)
    except ConfigError as exc:
        # The loader knows only that it failed; the cassette schema names the field that is wrong.
        yield from _schema_problems(path) or [str(exc)]
        return
    for message in schemas.errors("cassette", raw_document(path)):
        yield f"{path}: {message}"
    yield from _wire_problems(cassette)


def _schema_problems(path: Path) -> list[str]:
    try:
        document = raw_document(path)
    except Exception:  # not even YAML: the loader's own message says where
        return []
    return [f"{path}: {message}" for message in schemas.errors("cassette", document)]


def _wire_problems(c: Cassette) -> Iterator[str]:
    malformed = c.fault.get("kind") == "malformed"
    for n, inter in enumerate(c.interactions, start=1):
        where = f"{c.path}: interaction {n}"
        for header in inter.request_headers:
            if header in SECRET_HEADERS:
                yield f"{where}: request header {header!r} must be scrubbed from cassettes"
        for blob in (inter.request_body, inter.response_body):
            text = blob.decode("utf-8", errors="replace")
            if any(p.search(text) for p in KEY_PATTERNS):
                yield f"{where}: body contains something shaped like a provider key"
        route = schemas.route_schemas(c.provider, inter.method, inter.path)
        if route is None:
            yield f"{where}: {inter.method} {inter.path} is not a known {c.provider} route"
            continue
        if route.request and inter.request_body:
            try:
                body = json.loads(inter.request_body)
            except ValueError:
                yield f"{where}: request body is not JSON"
            else:
                for message in schemas.errors(route.request, body):
                    yield f"{where}: request {message}"
        if malformed and n == len(c.interactions):
            continue
        name = schemas.response_schema(c.provider, inter.method, inter.path, inter.status)
        if name is None:
            continue
        try:
            body = json.loads(inter.response_body)
        except ValueError:
            yield f"{where}: response body is not JSON (mark the cassette fault.kind: malformed)"
            continue
        if _is_dashscope_business_error(c.provider, inter.path, body):
            name = schemas.ERROR_SCHEMAS["dashscope"]
        for message in schemas.errors(name, body):
            yield f"{where}: response {message}"


def _is_dashscope_business_error(provider: str, path: str, body: object) -> bool:
    """DashScope native paths may answer HTTP 200 with {code, message, request_id}, no output."""
    return (provider == "dashscope" and not path.startswith("/compatible-mode/")
            and isinstance(body, dict) and "code" in body and "output" not in body)


def validate_tree(root: Path) -> list[str]:
    return [problem for path in cassette_files(root) for problem in problems_in(path)]
