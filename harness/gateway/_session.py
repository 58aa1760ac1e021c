"""One run's environment: mocks up, gateway up, keys made; and everything torn down after."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config._cassette import load_cassettes
from harness.config._profile import GatewayProfile, load_profile
from harness.errors import ConfigError
from harness.gateway._env import RunEnv
from harness.gateway.driver import (
    StartedGateway,
    render,
    render_template,
    start_gateway,
    wait_healthy,
)
from harness.upstream import UpstreamSet, start_upstreams
from harness.upstream._egress import RunningSink, proxy_env, start_sink
from harness.upstream.server import ThreadedServer, bind_loopback, free_port

AppFactory = Callable[[dict[str, Any]], Any]  # rendered gateway config -> ASGI app


@dataclass
class Session:
    profile: GatewayProfile
    upstreams: UpstreamSet
    env: RunEnv
    gateway: StartedGateway | None = None
    in_process: ThreadedServer | None = None
    egress: RunningSink | None = None


def client_key(profile: GatewayProfile, var: str | None, environ: Mapping[str, str],
               can_generate: bool) -> str | None:
    if var is None:
        return None
    value = environ.get(var)
    if value:
        return value
    if can_generate and profile.generate_keys:
        return "gwk-" + secrets.token_urlsafe(18)
    raise ConfigError(f"{profile.path}: environment variable {var} (the gateway's client key) "
                      "is not set")


@contextmanager
def open_session(profile_path: Path, cassettes_dir: Path, workdir: Path,
                 environ: Mapping[str, str] | None = None,
                 app_factory: AppFactory | None = None,
                 template_vars: dict[str, object] | None = None,
                 upstream_ports: dict[str, int] | None = None) -> Iterator[Session]:
    environ = os.environ if environ is None else environ
    profile = load_profile(profile_path)
    cassettes = load_cassettes(cassettes_dir)
    starts = profile.start is not None or app_factory is not None
    key_a = client_key(profile, profile.api_key_env, environ, starts)
    key_b = client_key(profile, profile.api_key_b_env, environ, starts)
    # One key per upstream; DashScope's regions have keys of their own, as the real service does.
    provider_keys = {p: f"sk-gwconf-{p}-{secrets.token_hex(12)}"
                     for p in ("dashscope", "dashscope-intl", "dashscope-us", "openai", "replicate")}
    workdir.mkdir(parents=True, exist_ok=True)
    client_keys = tuple(k for k in (key_a, key_b) if k)
    # Mocks for a gateway gwconf starts know its provider keys and refuse others, as the real
    # services do; a gateway configured by hand has keys of its own, so its mocks accept any.
    mock_keys = provider_keys if starts else None
    with start_upstreams(cassettes, cassettes_dir / "files", upstream_ports, client_keys,
                         mock_keys) as upstreams:
        sink = start_sink()
        port = (profile.start.port if profile.start and profile.start.port else free_port())
        values = {
            "port": str(port),
            "api_key": key_a or "",
            "api_key_b": key_b or "",
            "egress_url": sink.url,
            **{f"{placeholder(name)}_url": url for name, url in upstreams.urls.items()},
            **{f"{placeholder(name)}_key": key for name, key in provider_keys.items()},
        }
        session = Session(profile, upstreams, RunEnv(
            profile_path=str(profile_path.resolve()),
            gateway_url=render(profile.base_url, values),
            api_key=key_a or "",
            api_key_b=key_b,
            upstream_urls=upstreams.urls,
            provider_keys=provider_keys,
            egress_url=sink.url,
            gateway_started=starts,
            files_dir=str((cassettes_dir / "files").resolve()),
            headers={k: render(v, values) for k, v in profile.headers.items()},
            route_headers={r.alias: {k: render(v, values) for k, v in r.headers.items()}
                           for r in profile.models if r.headers}
            | {f.alias: {k: render(v, values) for k, v in f.headers.items()}
               for f in profile.fallbacks if f.headers},
        ), egress=sink)
        try:
            if app_factory is not None:
                config = gateway_config(profile, {**values, **(template_vars or {})}, workdir)
                server = ThreadedServer(app_factory(config), bind_loopback(port))
                server.start()
                session.in_process = server
            elif profile.start is not None:
                session.gateway = start_gateway(profile, values, workdir, proxy_env(sink.url))
            else:
                wait_healthy(session.env.gateway_url + profile.health_path,
                             profile.timeouts.startup)
            yield session
        finally:
            if session.in_process:
                session.in_process.stop()
            if session.gateway:
                session.gateway.stop()
            sink.stop()


def placeholder(upstream: str) -> str:
    """`dashscope-intl` -> `dashscope_intl`: the name of its `{..._url}`/`{..._key}` placeholders."""
    return upstream.replace("-", "_")


def gateway_config(profile: GatewayProfile, values: dict[str, object], workdir: Path
                   ) -> dict[str, Any]:
    """The profile's rendered config template, parsed: how an in-process gateway is configured."""
    if profile.start is None or profile.start.config_template is None:
        raise ConfigError(f"{profile.path}: an in-process gateway needs start.config_template")
    text = render_template(profile.start.config_template,
                           {**values, "profile": profile, "workdir": str(workdir)})
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{profile.start.config_template}: rendered config is not JSON "
                          f"({exc})") from exc
