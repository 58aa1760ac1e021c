"""One run's environment: mocks up, gateway up, keys made; and everything torn down after."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.config._cassette import Cassette, load_cassettes
from harness.config._profile import GatewayProfile, load_profile
from harness.errors import ConfigError
from harness.gateway._env import RunEnv
from harness.gateway._seam import TRANSPORT_KEY, Seam, hosted_origin, open_seam
from harness.gateway.driver import (
    StartedGateway,
    render,
    render_template,
    start_gateway,
    wait_healthy,
)
from harness.records._capture import CaptureLog
from harness.upstream import UpstreamSet, start_upstreams
from harness.upstream._egress import EgressSink, RunningSink, proxy_env, start_sink
from harness.upstream._intercept import RunningIntercept, deployed_env, real_urls, start_intercept
from harness.upstream.server import (
    ThreadedServer,
    ask_to_stop,
    bind_loopback,
    build_mocks,
    free_port,
    stop_servers,
)

AppFactory = Callable[[dict[str, Any]], Any]  # rendered gateway config -> ASGI app
# An in-process gateway's port: only its URL is rendered with it, nothing listens or is opened.
IN_PROCESS_PORT = 9


@dataclass
class Session:
    profile: GatewayProfile
    upstreams: UpstreamSet
    env: RunEnv
    gateway: StartedGateway | None = None
    in_process: ThreadedServer | None = None
    egress: RunningSink | None = None
    intercept: RunningIntercept | None = None  # as-deployed runs: the TLS-intercepting proxy


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
                 upstream_ports: dict[str, int] | None = None,
                 sockets: bool = True) -> Iterator[Session]:
    """Mocks, egress sink and gateway up for one run. `sockets=False` (with an `app_factory`)
    hosts all of them in this process behind the seam (harness/gateway/_seam.py): no server, no port."""
    environ = os.environ if environ is None else environ
    if not sockets and app_factory is None:
        raise ConfigError(f"{profile_path}: an in-process session needs the gateway as an ASGI app")
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
    check_mode(profile, starts)
    files_dir = cassettes_dir / "files"
    with ExitStack() as stack:
        seam: Seam | None = None
        sink: RunningSink | None = None
        intercept: RunningIntercept | None = None
        if sockets:
            # Black box: live providers behind the gateway, so no mocks (and no URL to substitute).
            upstreams = stack.enter_context(
                start_upstreams(cassettes, files_dir, upstream_ports, client_keys, mock_keys)
                if profile.mode != "black-box" else UpstreamSet({}, CaptureLog()))
            sink = start_sink()
            stack.callback(sink.stop)
            # As deployed, the gateway keeps the real provider hosts and reaches the mocks through
            # the intercepting proxy; otherwise its URLs are the mocks' and the sink is a tripwire.
            if profile.mode == "as-deployed":
                intercept = start_intercept(sink, upstreams.urls, workdir)
                stack.callback(intercept.stop)
            egress_url = sink.url  # where the egress log is read, as deployed too
            port = profile.start.port if profile.start and profile.start.port else free_port()
        else:
            upstreams = hosted_upstreams(cassettes, files_dir, client_keys, mock_keys)
            egress = EgressSink()
            egress_url = hosted_origin("egress")
            apps = {hosted_origin(name): mock.app for name, mock in upstreams.mocks.items()}
            seam = stack.enter_context(open_seam({**apps, egress_url: egress}, egress=egress))
            port = IN_PROCESS_PORT
        gateway_urls = real_urls() if intercept else upstreams.urls
        network = deployed_env(intercept.url, intercept.ca.bundle) if intercept else proxy_env(egress_url)
        values = {
            "port": str(port),
            "api_key": key_a or "",
            "api_key_b": key_b or "",
            "egress_url": intercept.url if intercept else egress_url,
            **{f"{placeholder(name)}_url": url for name, url in gateway_urls.items()},
            **{f"{placeholder(name)}_key": key for name, key in provider_keys.items()},
        }
        session = Session(profile, upstreams, RunEnv(
            profile_path=str(profile_path.resolve()),
            gateway_url=render(profile.base_url, values),
            api_key=key_a or "",
            api_key_b=key_b,
            upstream_urls=upstreams.urls,
            provider_keys=provider_keys,
            egress_url=egress_url,
            gateway_started=starts,
            files_dir=str(files_dir.resolve()),
            headers={k: render(v, values) for k, v in profile.headers.items()},
            route_headers={r.alias: {k: render(v, values) for k, v in r.headers.items()}
                           for r in profile.models if r.headers}
            | {f.alias: {k: render(v, values) for k, v in f.headers.items()}
               for f in profile.fallbacks if f.headers},
        ), egress=sink, intercept=intercept)
        try:
            if seam is not None:
                assert app_factory is not None
                config = gateway_config(profile, {**values, **(template_vars or {})}, workdir)
                config[TRANSPORT_KEY] = seam.router  # the gateway's own client goes through the seam too
                seam.add(origin_of(session.env.gateway_url), app_factory(config))
            elif app_factory is not None:
                config = gateway_config(profile, {**values, **(template_vars or {})}, workdir)
                server = ThreadedServer(app_factory(config), bind_loopback(port))
                server.start()
                session.in_process = server
            elif profile.start is not None:
                extra = {k: str(v) for k, v in (template_vars or {}).items()}
                session.gateway = start_gateway(profile, {**values, **extra}, workdir, network)
            else:
                wait_healthy(session.env.gateway_url + profile.health_path,
                             profile.timeouts.startup)
            yield session
        finally:
            # Every server of the run stops at once (see stop_servers), while the gateway process exits.
            servers = [*([session.in_process] if session.in_process else []), *([sink.server] if sink else []),
                       *upstreams.servers]
            ask_to_stop(servers)
            if session.gateway:
                session.gateway.stop()
            stop_servers(servers)


def hosted_upstreams(cassettes: list[Cassette], files_dir: Path, client_keys: tuple[str, ...],
                     keys: dict[str, str] | None) -> UpstreamSet:
    """The mocks as ASGI apps on their in-process origins (no servers)."""
    mocks = build_mocks(cassettes, files_dir, CaptureLog(), client_keys, keys)
    captures = next(iter(mocks.values())).captures
    for name, mock in mocks.items():
        mock.base_url = hosted_origin(name)
    return UpstreamSet(mocks, captures)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_mode(profile: GatewayProfile, starts: bool) -> None:
    if profile.mode == "black-box" and starts:
        raise ConfigError(f"{profile.path}: a black-box profile describes a gateway gwconf does not host; "
                          "remove [start]")
    if profile.mode == "as-deployed" and profile.start is None:
        raise ConfigError(f"{profile.path}: an as-deployed profile needs [start]: gwconf gives the gateway "
                          "its proxy and CA through the environment of the process it starts")


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
