"""`gwconf cassettes validate`: every cassette against the cassette schema, its wire schemas
and its provider's dated model catalogue (no retired model served as live)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path

from harness.config import _schemas as schemas
from harness.config._cassette import (
    Cassette,
    Interaction,
    cassette_files,
    file_stamp,
    load_cassette,
    raw_document,
)
from harness.config._catalogue import Catalogue, catalogue_files, load_catalogue
from harness.config._redact import KEY_PATTERNS, SECRET_HEADERS
from harness.errors import ConfigError


def problems_in(path: Path, catalogues: dict[str, Catalogue] | None = None) -> Iterator[str]:
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
    catalogue = (catalogues or {}).get(cassette.provider)
    if catalogue is not None:
        yield from lifecycle_problems(cassette, catalogue)


def _schema_problems(path: Path) -> list[str]:
    try:
        document = raw_document(path)
    except Exception:  # not even YAML: the loader's own message says where
        return []
    return [f"{path}: {message}" for message in schemas.errors("cassette", document)]


def lifecycle_problems(c: Cassette, catalogue: Catalogue) -> Iterator[str]:
    """A cassette serves only models its provider's catalogue lists, and a retired model only
    with the provider's answer for it, never as live."""
    dated = f"the {c.provider} catalogue of {catalogue.date}"
    for model_id in c.models:
        model = catalogue.model(model_id)
        if model is None:
            yield f"{c.path}: model {model_id!r} is not in {dated}"
        elif model.lifecycle.retired and not c.retired:
            yield (f"{c.path}: serves retired model {model_id!r} as live (retired on "
                   f"{model.lifecycle.date} in {dated}); mark the cassette retired: true with "
                   "the provider's answer, or drop the model")
        elif not model.lifecycle.retired and c.retired:
            yield f"{c.path}: marked retired but lists {model_id!r}, available in {dated}"
    for n, inter in enumerate(c.interactions, start=1):
        yield from _model_rule_problems(c, n, inter, catalogue)
    if c.retired:
        if c.default:
            yield f"{c.path}: a retired cassette cannot be a default answer"
        for n, inter in enumerate(c.interactions, start=1):
            if inter.status < 400:
                yield (f"{c.path}: interaction {n}: a retired cassette answers as gone (4xx), "
                       f"not {inter.status}")


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
        multipart = "multipart/form-data" in str(inter.request_headers.get("content-type", ""))
        if route.request and inter.request_body and not multipart:
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


def _model_rule_problems(c: Cassette, n: int, inter: Interaction, catalogue: Catalogue) -> Iterator[str]:
    """The cassette's own request example follows its model's rules on that route."""
    try:
        body = json.loads(inter.request_body) if inter.request_body else None
    except ValueError:
        return
    model = catalogue.model(body.get("model")) if isinstance(body, dict) else None
    endpoint = model.endpoint(inter.method, inter.path) if model else None
    if endpoint is None or endpoint.request is None:
        return
    for message in schemas.errors(endpoint.request, body):
        yield f"{c.path}: interaction {n}: request breaks {endpoint.request} {message}"


def _is_dashscope_business_error(provider: str, path: str, body: object) -> bool:
    """DashScope native paths may answer HTTP 200 with {code, message, request_id}, no output."""
    return (provider == "dashscope" and not path.startswith("/compatible-mode/")
            and isinstance(body, dict) and "code" in body and "output" not in body)


def validate_tree(root: Path) -> list[str]:
    """Every problem under `root`. Judged once per process while no file changes: `gwconf run`
    checks the cassettes before its heavy imports, and its runner checks them again."""
    files = [*catalogue_files(root), *cassette_files(root)]
    return list(_validate_tree(root, tuple((path, file_stamp(path)) for path in files)))


@functools.lru_cache(maxsize=16)
def _validate_tree(root: Path, stamps: tuple[tuple[Path, tuple[int, int]], ...]) -> tuple[str, ...]:
    found: list[str] = []
    catalogues: dict[str, Catalogue] = {}
    for path in catalogue_files(root):
        try:
            catalogue = load_catalogue(path)
        except ConfigError as exc:
            found.append(str(exc))
            continue
        catalogues[catalogue.provider] = catalogue
    return (*found, *(problem for path in cassette_files(root) for problem in problems_in(path, catalogues)))
