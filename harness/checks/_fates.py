"""A parameter's fate: what became of it between the client and the provider (pure functions).

| fate | meaning |
| --- | --- |
| forwarded | arrived unchanged where the provider reads it |
| mapped | arrived converted by a documented mapping (size WxH -> W*H, n -> num_outputs) |
| refused | the client got a 4xx (or a failed job) naming the parameter, and nothing reached the provider |
| dropped | the provider never saw it (and the client was not told) |
| altered | arrived with another value or type, or nested where the provider does not read it |
| failed | nothing reached the provider and the client's error does not name the parameter: its fate cannot be seen |
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from harness.checks._params import Parameter, reading_root, same, wire
from harness.records._capture import CapturedRequest

FATES = ("forwarded", "mapped", "refused", "dropped", "altered", "failed")
ACCEPTED = frozenset({"forwarded", "mapped", "refused"})
# When several requests reached the provider for one parameter, the worst of their fates counts.
SEVERITY = {"forwarded": 0, "mapped": 1, "dropped": 2, "altered": 3}


@dataclass(frozen=True)
class Fate:
    """One row of run.json's `parameter_fates`."""

    provider: str
    endpoint: str
    alias: str
    parameter: str
    value_sent: Any
    fate: str
    arrived_as: str
    check_id: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClientView:
    """What the client was told: success, a refusal (4xx or failed job) and its text, or neither."""

    succeeded: bool
    refused: bool
    summary: str
    text: str


def text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def names(message: str, name: str) -> bool:
    """The message names the parameter as a word (`n` is not named by "no route")."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", message) is not None


def dig(body: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(body, dict) or part not in body:
            return False, None
        body = body[part]
    return True, body


def places(body: Any, key: str, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every place in `body` where `key` occurs, with its value (how a buried field is found)."""
    found: list[tuple[tuple[str, ...], Any]] = []
    if isinstance(body, dict):
        for name, value in body.items():
            if name == key:
                found.append(((*prefix, name), value))
            found += places(value, key, (*prefix, name))
    elif isinstance(body, list):
        for index, value in enumerate(body):
            found += places(value, key, (*prefix, str(index)))
    return found


def arrival(param: Parameter, record: CapturedRequest) -> tuple[str, str]:
    """The fate of `param` in one request that reached the provider, and what arrived."""
    endpoint = param.endpoint
    expected = wire(param.value) if endpoint.multipart_upstream else param.value
    root = reading_root(endpoint, record.path)
    body = record.json_body()
    if root is not None:
        found, value = dig(body, root + param.path)
        where = ".".join(root + param.path)
        if found and same(value, expected):
            return ("mapped" if param.mapping else "forwarded"), f"{where} = {text(value)}"
        if found:
            return "altered", f"{where} = {text(value)} (sent {text(param.client_value)})"
    buried = [(p, v) for p, v in places(body, param.path[-1]) if root is None or p != root + param.path]
    if buried:
        path, value = buried[0]
        where = ("where it does not read it" if root is not None
                 else f"not {endpoint.route}, where it reads {endpoint.name} parameters")
        return "altered", f"{'.'.join(path)} = {text(value)} on {record.method} {record.path}, {where}"
    if root is None:
        return "dropped", f"absent; the request went to {record.method} {record.path}, not {endpoint.route}"
    return "dropped", f"absent from {record.method} {record.path}"


def reached_route(param: Parameter, upstream: list[CapturedRequest]) -> bool:
    """Whether a request reached the provider's route that reads this parameter. When none did, a
    bad fate is the routing's defect first (nothing arrived where the parameter is read)."""
    endpoint = param.endpoint
    return any(r.method == "POST" and r.provider == endpoint.provider and reading_root(endpoint, r.path) is not None
               for r in upstream)


def classify(param: Parameter, alias: str, upstream: list[CapturedRequest], client: ClientView) -> Fate:
    """The parameter's fate from what reached the provider and what the client was told."""
    endpoint = param.endpoint
    sent = [r for r in upstream if r.method == "POST" and r.provider == endpoint.provider]
    if sent:
        fates = [arrival(param, r) for r in sent]
        fate, arrived = max(fates, key=lambda f: SEVERITY[f[0]])
    elif client.refused and (names(client.text, param.path[-1]) or names(client.text, param.client_field)):
        fate, arrived = "refused", f"nothing upstream; the client got {client.summary}"
    elif client.succeeded:
        fate, arrived = "dropped", f"nothing reached {endpoint.provider}, yet the client got {client.summary}"
    else:
        fate, arrived = "failed", f"nothing reached {endpoint.provider}; the client got {client.summary}"
    sent = wire(param.client_value) if endpoint.client == "multipart" else param.client_value
    return Fate(endpoint.provider, endpoint.name, alias, param.name, sent, fate, arrived, endpoint.check_id)
