"""Fuzzing the gateway with schemathesis: invalid input from `schemas/gateway-openapi.yaml`.

One *campaign* per gateway: for every operation the profile claims, schemathesis generates a
fixed set of negative cases (derandomized, no example database, nothing written to the cwd), each is sent
once with the client key and the profile's headers, and every answer is kept. The FUZZ checks
judge the same campaign, so the gateway sees the traffic once per process, not once per check.

Bounded: per operation at most `GWCONF_FUZZ_EXAMPLES` (default 10) cases from schemathesis'
coverage phase plus as many from its hypothesis-driven negative generation; each request bounded
by the profile's request timeout; an operation stops at its first answer slower than that bound;
the whole campaign stops at a wall-clock budget. In a black-box run every case is charged to the
live budget before it is sent (the campaign stops at the cap) and taped with its answer.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import requests
import requests.auth
import yaml

from harness.config._profile import GatewayProfile
from harness.config._redact import redact_headers, scrub
from harness.errors import ConfigError
from harness.gateway import _seam as seam
from harness.gateway._budget import BudgetExhausted, LiveRun
from harness.gateway._env import RunEnv
from harness.gateway._livetape import LiveTape
from harness.paths import SCHEMAS_DIR
from harness.records._outcome import Exchange, clip
from harness.records._plain import plain
from harness.upstream._markers import new_token

SPEC_PATH = SCHEMAS_DIR / "gateway-openapi.yaml"
EXAMPLES_ENV = "GWCONF_FUZZ_EXAMPLES"
DEFAULT_EXAMPLES = 10
MAX_EXAMPLES = 200
BUDGET_SECONDS = 60.0  # the whole campaign, however slow the gateway
CONNECT_TIMEOUT = 5.0
KEY_PLACEHOLDER = "Bearer $GWCONF_API_KEY"


def examples_per_operation(environ: Mapping[str, str] = os.environ) -> int:
    raw = environ.get(EXAMPLES_ENV, "").strip()
    if not raw:
        return DEFAULT_EXAMPLES
    try:
        count = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{EXAMPLES_ENV}={raw!r}: expected a whole number") from exc
    if not 1 <= count <= MAX_EXAMPLES:
        raise ConfigError(f"{EXAMPLES_ENV}={count}: expected 1..{MAX_EXAMPLES}")
    return count


# -- the spec --------------------------------------------------------------------------------

@cache
def _raw_spec() -> str:
    return SPEC_PATH.read_text(encoding="utf-8")


def gateway_spec(profile: GatewayProfile) -> dict[str, Any]:
    """The OpenAPI document for this gateway: the operations it claims, its aliases as `model` enums.

    An operation needs the capability it names (`x-gwconf-capability`) or the dialect it names
    (`x-gwconf-dialect`); with a known alias in `model`, an invalid field is what the gateway
    sees, not an unknown model.
    """
    spec = yaml.load(_raw_spec(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: once per run
    schemas = spec["components"]["schemas"]
    for path, item in list(spec["paths"].items()):
        for method, operation in list(item.items()):
            capability = operation.get("x-gwconf-capability")
            dialect = operation.get("x-gwconf-dialect")
            aliases = aliases_for(profile, capability) if capability else []
            if (capability and not aliases) or (dialect and not _speaks(profile, dialect, path)):
                del item[method]
                continue
            for content in operation.get("requestBody", {}).get("content", {}).values():
                name = content["schema"]["$ref"].rsplit("/", 1)[-1]
                schema = schemas[name]
                properties = schema["properties"]
                model = {**properties["model"], "enum": aliases}
                schemas[name] = {**schema, "properties": {**properties, "model": model}}
        if not item:
            del spec["paths"][path]
    return spec


def aliases_for(profile: GatewayProfile, capability: str) -> list[str]:
    aliases = [r.alias for r in profile.routes_for(capability)]
    aliases += [f.alias for f in profile.fallbacks if f.capability == capability]
    return sorted(set(aliases))


def _speaks(profile: GatewayProfile, dialect: str, path: str) -> bool:
    return profile.dialect.name == dialect and profile.dialect.poll_path == path


def load_schema(profile: GatewayProfile) -> Any:
    """The spec as a schemathesis schema (nothing discovered from the cwd, nothing sanitized)."""
    import schemathesis
    from schemathesis.config import OutputConfig, SanitizationConfig, SchemathesisConfig

    config = SchemathesisConfig(output=OutputConfig(sanitization=SanitizationConfig(enabled=False)))
    return schemathesis.openapi.from_dict(gateway_spec(profile), config=config)


def operations(schema: Any) -> list[Any]:
    found = [result.ok() for result in schema.get_all_operations()]
    return sorted(found, key=lambda op: op.label)


def _keep_hypothesis_out_of_cwd() -> None:
    """Hypothesis caches charmaps under ./.hypothesis unless told otherwise."""
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "gwconf-hypothesis")


@contextmanager
def _no_local_constants() -> Iterator[None]:
    """Hypothesis mixes in string and number constants from every local module it finds in
    sys.modules, so the cases would change with whatever else the process imported (or anyone
    edited). Generation here sees the schema's constants only."""
    from hypothesis.internal.conjecture import providers
    from hypothesis.internal.constants_ast import Constants

    original = providers._get_local_constants
    providers._get_local_constants = Constants  # an empty set of constants
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = original
        providers.CONSTANTS_CACHE.cache.clear()


_GENERATED: dict[tuple[str, str, int], list[Any]] = {}


def generate_cases(operation: Any, examples: int) -> list[Any]:
    """Up to 2 x `examples` negative cases for one operation, the same ones on every run.

    First schemathesis' coverage phase (one case per kind of violation: a missing required
    field, a wrong type, a value past a bound, a bad enum, a malformed body), then its
    hypothesis-driven negative generation for the shapes nobody thought of. Generation is
    derandomized, so a process keeps what it generated (the mutation tests fuzz 45 gateways).
    """
    key = (json.dumps(operation.schema.raw_schema, sort_keys=True), operation.label, examples)
    if key not in _GENERATED:
        _GENERATED[key] = _generate(operation, examples)
    return _GENERATED[key]


def _generate(operation: Any, examples: int) -> list[Any]:
    _keep_hypothesis_out_of_cwd()
    with _no_local_constants():
        return coverage_cases(operation, examples) + fuzzed_cases(operation, examples)


SKIPPED_COVERAGE = ("Missing `Authorization`",)  # the harness always sends the client key


def coverage_cases(operation: Any, examples: int) -> list[Any]:
    from schemathesis import GenerationMode

    schema = operation.schema
    found: dict[str, Any] = {}
    for case in schema.iter_coverage_cases(operation, generation_modes=[GenerationMode.NEGATIVE],
                                           generation_config=schema.config.generation_for(operation=operation)):
        description = describe_case(case)
        # Another method on the route is a routing question (405), not invalid input.
        if case.method.upper() != operation.method.upper() or description.startswith(SKIPPED_COVERAGE):
            continue
        found.setdefault(description, case)
        if len(found) >= examples:
            break
    return list(found.values())


def fuzzed_cases(operation: Any, examples: int) -> list[Any]:
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode

    cases: list[Any] = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE).filter(invalid_beyond_headers))
    def collect(case: Any) -> None:
        cases.append(case)

    collect()
    return cases[:examples]


def invalid_beyond_headers(case: Any) -> bool:
    """Whether the path, query or body is invalid: a case that negates only headers would, once
    the harness puts the client key back, be a valid request and make the gateway do real work."""
    from schemathesis import GenerationMode
    from schemathesis.core.parameters import ParameterLocation

    components = case.meta.components if case.meta is not None else {}
    return any(info.mode == GenerationMode.NEGATIVE for location, info in components.items()
               if location != ParameterLocation.HEADER)


def describe_case(case: Any) -> str:
    """What schemathesis says the case violates ("prompt: Incorrect type"), or "fuzzed"."""
    data = getattr(getattr(case.meta, "phase", None), "data", None)
    return str(getattr(data, "description", None) or "fuzzed")


# -- the campaign ----------------------------------------------------------------------------

@dataclass
class FuzzCall:
    """One generated case, sent once, and what came back."""

    operation: str
    description: str
    curl: str
    exchange: Exchange
    status: int | None = None
    body: Any = None
    elapsed: float = 0.0
    error: str | None = None  # no answer: timeout, reset
    timed_out: bool = False

    def summary(self) -> str:
        answer = self.error or f"HTTP {self.status}"
        return f"{self.operation} ({self.description}) -> {answer} in {self.elapsed:.2f}s"

    def to_dict(self) -> dict[str, Any]:
        return plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FuzzCall:
        return cls(**{**data, "exchange": Exchange(**data["exchange"])})


@dataclass
class Campaign:
    bound: float
    examples: int
    calls: list[FuzzCall] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def server_errors(self) -> list[FuzzCall]:
        """5xx answers, and connections the gateway dropped instead of answering."""
        return [c for c in self.calls if (c.status is not None and c.status >= 500)
                or (c.status is None and not c.timed_out)]

    def client_errors(self) -> list[FuzzCall]:
        return [c for c in self.calls if c.status is not None and 400 <= c.status < 500]

    def slow(self) -> list[FuzzCall]:
        return [c for c in self.calls if c.timed_out or c.elapsed > self.bound]

    def to_dict(self) -> dict[str, Any]:
        return {"bound": self.bound, "examples": self.examples, "calls": [c.to_dict() for c in self.calls],
                "notes": list(self.notes), "elapsed": self.elapsed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Campaign:
        return cls(data["bound"], data["examples"], [FuzzCall.from_dict(c) for c in data["calls"]],
                   list(data["notes"]), data["elapsed"])

    def answered(self) -> list[FuzzCall]:
        return [c for c in self.calls if c.status is not None]

    def describe(self) -> str:
        statuses: dict[str, int] = {}
        for c in self.calls:
            label = str(c.status) if c.status is not None else "no answer"
            statuses[label] = statuses.get(label, 0) + 1
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
        return (f"{len(self.calls)} fuzz requests (up to {self.examples} coverage and {self.examples} fuzzed cases "
                f"per operation) in {self.elapsed:.1f}s; "
                f"statuses {counts or 'none'}")


_CAMPAIGNS: dict[tuple[str, ...], Campaign] = {}
KEPT_CAMPAIGNS = 4


def campaign(env: RunEnv, profile: GatewayProfile, examples: int | None = None) -> Campaign:
    """The campaign against this gateway, run once per process and shared by the FUZZ checks."""
    count = examples if examples is not None else examples_per_operation()
    key = (env.to_json(), profile.digest, str(profile.timeouts.request), str(count))
    if key not in _CAMPAIGNS:
        while len(_CAMPAIGNS) >= KEPT_CAMPAIGNS:
            del _CAMPAIGNS[next(iter(_CAMPAIGNS))]
        _CAMPAIGNS[key] = run_campaign(env, profile, count)
    return _CAMPAIGNS[key]


def run_campaign(env: RunEnv, profile: GatewayProfile, examples: int,
                 budget: float = BUDGET_SECONDS) -> Campaign:
    bound = float(profile.timeouts.request)
    result = Campaign(bound=bound, examples=examples)
    started = time.monotonic()
    deadline = started + budget
    auth = ClientAuth({**env.headers, "Authorization": f"Bearer {env.api_key}"})
    shown = {**env.headers, "Authorization": KEY_PLACEHOLDER}
    live = LiveRun.from_environ()  # a black-box run: paid for before it is sent, and taped
    tape = LiveTape(Path(live.tapes), env.secrets, env.gateway_url, name=f"fuzz-campaign-{new_token()}") \
        if live is not None else None
    try:
        with requests.Session() as session:
            seam.mount(session)  # an in-process run has no sockets
            for operation in operations(load_schema(profile)):
                for case in generate_cases(operation, examples):
                    if time.monotonic() >= deadline:
                        result.notes.append(f"campaign budget of {budget:g}s spent: {operation.label} and the "
                                            "operations after it were cut short")
                        result.elapsed = time.monotonic() - started
                        return result
                    if live is not None and not paid_for(live, case, profile, result):
                        result.elapsed = time.monotonic() - started
                        return result
                    call = send(case, session, env.gateway_url, auth, shown, bound, env.secrets, tape)
                    result.calls.append(call)
                    if call.timed_out or call.elapsed > bound:
                        # Its other cases would most likely be as slow: move on rather than wait them out.
                        result.notes.append(f"{operation.label}: stopped after an answer slower than {bound:g}s")
                        break
    finally:
        if tape is not None:
            tape.write()
    result.elapsed = time.monotonic() - started
    return result


def paid_for(live: LiveRun, case: Any, profile: GatewayProfile, result: Campaign) -> bool:
    """Charge a case to the live budget: False once the cap refuses it (the campaign stops there,
    with what it sent judged). Refused before anything was sent, the step skips: BudgetExhausted."""
    body = case.body if isinstance(case.body, Mapping) else None
    try:
        live.charge(case.method, case.formatted_path, body, profile.dialect.submit_path)
    except BudgetExhausted as exc:
        if not result.calls:
            raise
        result.notes.append(f"{exc}: {case.operation.label} and the cases after it were not sent")
        return False
    return True


class ClientAuth(requests.auth.AuthBase):
    """The client key and the profile's headers on every request, even one whose generated
    headers schemathesis negated (it drops a negated Authorization after merging ours)."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self.headers)
        return request


def send(case: Any, session: requests.Session, base_url: str, auth: ClientAuth,
         shown: dict[str, str], bound: float, secrets: tuple[str, ...], tape: LiveTape | None = None) -> FuzzCall:
    base_url = base_url.rstrip("/")
    # The reproduction names no port: the gateway's address is a shell variable.
    curl = scrub(case.as_curl_command(headers=shown, base_url=base_url), secrets).replace(
        base_url, "${GWCONF_GATEWAY_URL}")
    label = case.operation.label
    description = describe_case(case)
    started = time.monotonic()
    try:
        response = case.call(base_url=base_url, session=session, auth=auth, timeout=(CONNECT_TIMEOUT, bound))
    except requests.RequestException as exc:
        elapsed = time.monotonic() - started
        timed_out = isinstance(exc, requests.Timeout)
        error = f"timeout after {elapsed:.1f}s" if timed_out else f"{type(exc).__name__}: {exc}"
        exchange = _exchange(getattr(exc, "request", None), case, base_url, secrets)
        exchange.elapsed, exchange.error = elapsed, error
        return FuzzCall(label, description, curl, exchange, None, None, elapsed, error, timed_out)
    elapsed = response.elapsed or (time.monotonic() - started)
    if tape is not None:
        tape.add(*as_httpx(response))
    exchange = _exchange(response.request, case, base_url, secrets)
    text = response.content.decode(response.encoding or "utf-8", errors="replace")
    exchange.status = response.status_code
    exchange.elapsed = elapsed
    exchange.response_headers = redact_headers((k, ", ".join(v)) for k, v in response.headers.items())
    exchange.response_body = clip(scrub(text, secrets), 4000)
    return FuzzCall(label, description, curl, exchange, response.status_code, _json(text), elapsed)


def as_httpx(response: Any) -> tuple[httpx.Request, httpx.Response]:
    """Schemathesis' exchange as the httpx pair a LiveTape keeps (the body already decoded, so no
    content-encoding or length header of the wire goes with it)."""
    prepared = response.request
    body = prepared.body or b""
    request = httpx.Request(prepared.method or "GET", prepared.url or "", headers=list(prepared.headers.items()),
                            content=body.encode("utf-8") if isinstance(body, str) else body)
    headers = [(k, ", ".join(v)) for k, v in response.headers.items()
               if k.lower() not in ("content-encoding", "content-length")]
    return request, httpx.Response(response.status_code, headers=headers, content=response.content, request=request)


def _exchange(request: Any, case: Any, base_url: str, secrets: tuple[str, ...]) -> Exchange:
    if request is None:
        return Exchange(case.method.upper(), base_url + case.formatted_path, {}, "")
    body = request.body or b""
    content_type = request.headers.get("content-type", "")
    if "multipart" in content_type:
        text = f"<multipart body, {len(body)} bytes>"
    else:
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else str(body)
    url = request.url or ""
    return Exchange(request.method or case.method.upper(), url, redact_headers(request.headers.items(), secrets),
                    clip(scrub(text, secrets), 4000), path=url[len(base_url):] if url.startswith(base_url) else "")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
