"""Gateway profiles: what a gateway under test is, how to start it, what it claims to route."""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import _schemas as schemas
from harness.errors import ConfigError

CAPABILITIES = ("image.generate", "image.edit", "chat", "video.generate")
# mocked: provider URLs rewritten to the mocks (the default); as-deployed: real provider hosts,
# reached through gwconf's intercepting proxy; black-box: a proxy gwconf does not host, no mocks.
MODES = ("mocked", "as-deployed", "black-box")
BLACK_BOX = MODES[2]


@dataclass(frozen=True)
class ModelRoute:
    """A client-facing alias and where a correct gateway sends it."""

    alias: str
    provider: str
    upstream_model: str
    capability: str
    region: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    price_usd: float | None = None  # per image (per request for chat): what a live call costs


@dataclass(frozen=True)
class FallbackTarget:
    provider: str
    upstream_model: str


@dataclass(frozen=True)
class Fallback:
    alias: str
    capability: str
    targets: tuple[FallbackTarget, ...]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StateRule:
    """A custom dialect's state rule: when every condition holds, the job is in `state`.

    A condition maps a field (a JSON pointer such as "/done", or a dotted path) to the value it
    must equal, or to {present = true|false}."""

    when: dict[str, Any]
    state: str


@dataclass(frozen=True)
class Dialect:
    """How the gateway surfaces async jobs, mapped onto the canonical job states."""

    name: str
    submit_path: str = "/v1/images/generations"
    submit_query: dict[str, str] = field(default_factory=dict)
    poll_path: str = "/v1/jobs/{id}"
    id_field: str = "id"
    status_field: str = "status"
    result_field: str = "result"
    statuses: dict[str, str] = field(default_factory=dict)  # gateway status -> canonical
    # Video jobs: where a video is submitted, where its bytes are read ({id}: the job id; empty:
    # the dialect has no content route) and how a job is canceled ("" when the dialect has no cancel).
    video_path: str = "/v1/videos"
    content_path: str = "/v1/videos/{id}/content"
    cancel_path: str = ""
    # Custom job APIs: headers that make a submit async (sent on async submits only, like
    # submit_query); where the job id and the poll URL come from ("" = id_field / poll_path; else
    # "/json/pointer" into the submit's body or "header:Location"); rules from fields to states,
    # tried in order before `statuses`.
    submit_headers: dict[str, str] = field(default_factory=dict)
    id_source: str = ""
    poll_url_source: str = ""
    state_rules: tuple[StateRule, ...] = ()

    @property
    def is_async(self) -> bool:
        """Whether image requests are jobs. Video requests always are (see `for_video`)."""
        return self.name not in SYNC_IMAGE_DIALECTS

    def for_video(self) -> Dialect:
        """The dialect video jobs follow: a sync gateway's videos are OpenAI-shaped jobs."""
        return BUILTIN_DIALECTS["openai-videos"] if self.name == "sync" else self


# Named in the design, accepted by the schema, but no client for it yet: refused at load time
# rather than run with a status map that could never match.
NOT_YET = frozenset({"passthrough"})
# openai-videos speaks OpenAI's Videos API for video and plain OpenAI routes for images.
SYNC_IMAGE_DIALECTS = frozenset({"sync", "openai-videos"})
JOBS_STATUSES = {"queued": "queued", "in_progress": "running", "running": "running",
                 "succeeded": "succeeded", "completed": "succeeded", "failed": "failed",
                 "cancelled": "canceled", "canceled": "canceled", "expired": "expired"}
BUILTIN_DIALECTS = {
    "sync": Dialect("sync"),
    "jobs": Dialect("jobs", submit_query={"async": "true"}, statuses=JOBS_STATUSES,
                    cancel_path="/v1/jobs/{id}/cancel"),
    "openai-videos": Dialect("openai-videos", submit_path="/v1/videos", poll_path="/v1/videos/{id}",
                             statuses={"queued": "queued", "in_progress": "running",
                                       "completed": "succeeded", "failed": "failed"}),
    # (OpenAI shut its own Videos API down on 2026-09-24; gateways keep the shape.)
}


@dataclass(frozen=True)
class Timeouts:
    request: float = 15.0  # bound on any one client request
    job: float = 30.0  # bound on an async job reaching a terminal state
    poll_interval: float = 0.2
    startup: float = 30.0


@dataclass(frozen=True)
class StartSpec:
    command: tuple[str, ...]
    config_template: Path | None = None
    config_name: str = "gateway-config"
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    port: int | None = None  # None: a free port
    install: str = ""  # the command that installs the gateway, named when `command` is missing


@dataclass(frozen=True)
class CostSurface:
    """How the gateway tells a client what a request cost (AUTH/COST checks read it)."""

    header: str | None = None  # a response header carrying the request's cost, e.g. x-litellm-response-cost
    body_field: str | None = None  # or a dotted path into the JSON answer, e.g. cost.usd
    image_count_field: str | None = None  # where the gateway declares the provider's image count
    per_image: dict[str, float] = field(default_factory=dict)  # alias -> price of one image
    budgets: bool = False  # the gateway enforces spend budgets: metering at zero bypasses them

    @property
    def declared(self) -> bool:
        return bool(self.header or self.body_field)


@dataclass(frozen=True)
class GatewayProfile:
    name: str
    path: Path
    base_url: str
    api_key_env: str
    api_key_b_env: str | None
    generate_keys: bool
    health_path: str
    dialect: Dialect
    timeouts: Timeouts
    models: tuple[ModelRoute, ...]
    fallbacks: tuple[Fallback, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    start: StartSpec | None = None
    description: str = ""
    key_model: str = ""  # how the gateway authenticates clients, in its own words
    egress_observable: bool = True  # the gateway sends outbound calls through HTTP(S)_PROXY
    client_auth: str = "keys"  # "none": the gateway authenticates no client (AUTH refusals skip)
    cost: CostSurface = field(default_factory=CostSurface)
    # The header with which a client makes a repeated submission return the first one's job
    # (declared idempotency keys); None: every submission is a job of its own.
    idempotency_header: str | None = None
    mode: str = "mocked"  # one of MODES
    digest: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def route_for(self, provider: str, capability: str, **match: str) -> ModelRoute | None:
        for route in self.models:
            if route.provider == provider and route.capability == capability and all(
                getattr(route, k) == v for k, v in match.items()
            ):
                return route
        return None

    def routes_for(self, capability: str) -> list[ModelRoute]:
        return [r for r in self.models if r.capability == capability]

    def claims(self, capability: str) -> bool:
        return any(r.capability == capability for r in self.models)


def _pointer(error_path: list[Any]) -> str:
    return ".".join(str(p) for p in error_path) or "(top level)"


def load_profile(path: Path) -> GatewayProfile:
    """Read and validate a profile; every mistake is one ConfigError naming file and field."""
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read profile ({exc.strerror})") from exc
    try:
        data = tomllib.loads(raw_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
    found = sorted(schemas.validator("gateway-profile").iter_errors(data),
                   key=lambda e: list(e.absolute_path))
    if found:
        first = found[0]
        raise ConfigError(f"{path}: field {_pointer(list(first.absolute_path))}: {first.message}")
    try:
        profile = _build(path, data, hashlib.sha256(raw_bytes).hexdigest())
        check_consistency(profile)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return profile


# What `{name}` placeholders can stand for (harness/session.py and harness/gateway/driver.py fill them).
UPSTREAM_PLACEHOLDERS = ("dashscope", "dashscope_intl", "dashscope_us", "openai", "replicate")
PLACEHOLDERS = frozenset({"port", "python", "config", "profile_dir", "workdir", "egress_url", "api_key",
                          "api_key_b", *(f"{u}_url" for u in UPSTREAM_PLACEHOLDERS),
                          *(f"{u}_key" for u in UPSTREAM_PLACEHOLDERS)})
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def check_consistency(profile: GatewayProfile) -> None:
    """What the schema cannot say: aliases are unique, placeholders are known, fallback targets
    are models the profile routes. Each problem is one ConfigError naming the field."""
    # One alias may serve several capabilities (LiteLLM's model group answers generations and
    # edits) but always means the same model; a second meaning would make verdicts arbitrary.
    seen: dict[str, tuple[str, ModelRoute]] = {}
    for i, route in enumerate(profile.models):
        first = seen.get(route.alias)
        if first is not None and (first[1].capability == route.capability
                                  or _target(first[1]) != _target(route)):
            raise ConfigError(f"field models.{i}.alias: alias {route.alias!r} is defined twice "
                              f"(first in {first[0]}: {_describe(first[1])}; here: {_describe(route)})")
        seen.setdefault(route.alias, (f"models.{i}", route))
    for i, fallback in enumerate(profile.fallbacks):
        if fallback.alias in seen:
            raise ConfigError(f"field fallbacks.{i}.alias: alias {fallback.alias!r} is already a model "
                              f"route ({seen[fallback.alias][0]})")
        seen[fallback.alias] = (f"fallbacks.{i}", ModelRoute(fallback.alias, "", "", fallback.capability))
    for where, text in placeholder_fields(profile):
        for name in PLACEHOLDER.findall(text):
            if name not in PLACEHOLDERS:
                raise ConfigError(f"field {where}: unknown placeholder {{{name}}} "
                                  f"(known: {', '.join(sorted(PLACEHOLDERS))})")
    routed = {(r.provider, r.upstream_model) for r in profile.models}
    for i, fallback in enumerate(profile.fallbacks):
        for j, target in enumerate(fallback.targets):
            if (target.provider, target.upstream_model) not in routed:
                raise ConfigError(f"field fallbacks.{i}.targets.{j}: no [[models]] route sends "
                                  f"{target.upstream_model!r} to {target.provider}, so the checks "
                                  "cannot tell where the fallback must land")


def _target(route: ModelRoute) -> tuple[str, str]:
    return route.provider, route.upstream_model


def _describe(route: ModelRoute) -> str:
    return f"{route.provider} {route.upstream_model!r} {route.capability}"


def placeholder_fields(profile: GatewayProfile) -> list[tuple[str, str]]:
    fields = [("base_url", profile.base_url)]
    fields += [(f"headers.{k}", v) for k, v in profile.headers.items()]
    if profile.start is not None:
        fields += [(f"start.command.{i}", part) for i, part in enumerate(profile.start.command)]
        fields += [(f"start.env.{k}", v) for k, v in profile.start.env.items()]
    for i, route in enumerate(profile.models):
        fields += [(f"models.{i}.headers.{k}", v) for k, v in route.headers.items()]
    for i, fallback in enumerate(profile.fallbacks):
        fields += [(f"fallbacks.{i}.headers.{k}", v) for k, v in fallback.headers.items()]
    return fields


def _dialect(data: dict[str, Any]) -> Dialect:
    spec = data.get("async", {})
    name = spec.get("dialect", "sync")
    if name in NOT_YET:
        raise ConfigError(f"dialect {name!r} is not implemented yet; describe the gateway's job API with "
                          "dialect = \"custom\" (submit_path, poll_path, statuses)")
    if name != "custom":
        return BUILTIN_DIALECTS[name]
    fields = {k: v for k, v in spec.items() if k != "dialect"}
    fields["state_rules"] = tuple(StateRule(dict(r["when"]), r["state"]) for r in fields.get("state_rules", []))
    return Dialect("custom", **fields)


def _build(path: Path, data: dict[str, Any], digest: str) -> GatewayProfile:
    base = path.parent
    start = None
    if "start" in data:
        s = data["start"]
        template = s.get("config_template")
        start = StartSpec(
            command=tuple(s["command"]),
            config_template=(base / template) if template else None,
            config_name=s.get("config_name", Path(template).name.removesuffix(".j2")
                              if template else "gateway-config"),
            env=dict(s.get("env", {})),
            cwd=(base / s["cwd"]) if "cwd" in s else None,
            port=s.get("port"),
            install=s.get("install", ""),
        )
    t = data.get("timeouts", {})
    timeouts = Timeouts(**{k: float(v) for k, v in t.items()})
    fallbacks = tuple(
        Fallback(f["alias"], f["capability"],
                 tuple(FallbackTarget(x["provider"], x["upstream_model"]) for x in f["targets"]),
                 dict(f.get("headers", {})))
        for f in data.get("fallbacks", [])
    )
    return GatewayProfile(
        name=data["name"],
        path=path,
        base_url=data["base_url"],
        api_key_env=data["api_key_env"],
        api_key_b_env=data.get("api_key_b_env"),
        generate_keys=bool(data.get("generate_keys", False)),
        health_path=data.get("health_path", "/health"),
        dialect=_dialect(data),
        timeouts=timeouts,
        models=tuple(ModelRoute(**m) for m in data["models"]),
        fallbacks=fallbacks,
        headers=dict(data.get("headers", {})),
        start=start,
        description=data.get("description", ""),
        key_model=data.get("key_model", ""),
        egress_observable=bool(data.get("egress_observable", True)),
        client_auth=data.get("client_auth", "keys"),
        cost=CostSurface(**data.get("cost", {})),
        idempotency_header=data.get("idempotency_header"),
        mode=data.get("mode", "mocked"),
        digest=digest,
        raw=data,
    )
