"""Serving the mock upstreams on loopback: one uvicorn server per provider, in threads."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from harness.config._cassette import Cassette
from harness.errors import ConfigError
from harness.records._capture import CaptureLog
from harness.upstream.dashscope import DashScope
from harness.upstream.engine import MockUpstream, Provider
from harness.upstream.openai import OpenAI
from harness.upstream.replicate import Replicate

PROVIDERS: dict[str, type[Provider]] = {"dashscope": DashScope, "openai": OpenAI,
                                        "replicate": Replicate}
# DashScope serves each region from its own host with its own keys (providers/dashscope.md 1.1):
# one mock per region, all with provider "dashscope"; captures carry the region.
DASHSCOPE_REGIONS = {"dashscope": "cn-beijing", "dashscope-intl": "ap-southeast-1",
                     "dashscope-us": "us-east-1"}
STARTUP_BOUND_SECONDS = 10.0


class QuietShutdown(logging.Filter):
    """Faults the mocks cause on purpose are not worth a log line: a `hang` cut short by
    shutdown, and the short body of a `drop` that h11 refuses to finish."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "graceful shutdown exceeded" in record.getMessage():
            return False
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, asyncio.CancelledError):  # a request still running at shutdown
            return False
        return "Too little data for declared Content-Length" not in str(error)


logging.getLogger("uvicorn.error").addFilter(QuietShutdown())


def bind_loopback(port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections; with proto 0
    # it does not, and every keep-alive answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"http://{host}:{port}: cannot listen ({exc.strerror})") from exc
    sock.listen(128)
    return sock


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThreadedServer:
    """A uvicorn server on an already-bound socket, in a daemon thread, stoppable."""

    def __init__(self, app: object, sock: socket.socket, http: str = "auto") -> None:
        self.sock = sock
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1, http=http)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       daemon=True)

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_BOUND_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"{self.url}: server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.sock.close()


@dataclass
class UpstreamSet:
    """The running mocks of one run, and the capture log they share."""

    mocks: dict[str, MockUpstream]
    captures: CaptureLog
    servers: list[ThreadedServer] = field(default_factory=list)

    @property
    def urls(self) -> dict[str, str]:
        return {name: mock.base_url for name, mock in self.mocks.items()}

    def env(self) -> dict[str, str]:
        return {f"GWCONF_{name.upper().replace('-', '_')}_URL": url
                for name, url in self.urls.items()}

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> UpstreamSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build_mocks(cassettes: Iterable[Cassette], files_dir: Path, captures: CaptureLog,
                secrets: tuple[str, ...] = (), keys: dict[str, str] | None = None) -> dict[str, MockUpstream]:
    cassettes = list(cassettes)
    keys = keys or {}
    mocks = {name: MockUpstream(cls(), cassettes, captures, files_dir, secrets=secrets, key=keys.get(name))
             for name, cls in PROVIDERS.items()}
    for name, region in DASHSCOPE_REGIONS.items():
        mocks[name] = MockUpstream(DashScope(), cassettes, captures, files_dir, region=region, secrets=secrets,
                                   key=keys.get(name))
    return mocks


MOCK_NAMES = ("dashscope", "openai", "replicate", "dashscope-intl", "dashscope-us")


def consecutive_ports(first: int) -> dict[str, int]:
    """`--port P`: the mocks on P, P+1, ... in MOCK_NAMES order, so an operator can plan them."""
    return {name: first + offset for offset, name in enumerate(MOCK_NAMES)}


def start_upstreams(cassettes: Iterable[Cassette], files_dir: Path,
                    ports: dict[str, int] | None = None, secrets: tuple[str, ...] = (),
                    keys: dict[str, str] | None = None) -> UpstreamSet:
    """Start every mock. With `keys` (mock name -> provider key) each mock answers its provider's
    401 to any other key; `secrets` are scrubbed to fingerprints in what they capture."""
    captures = CaptureLog()
    mocks = build_mocks(cassettes, files_dir, captures, secrets, keys)
    upstreams = UpstreamSet(mocks, captures)
    try:
        for name, mock in mocks.items():
            server = ThreadedServer(mock.app, bind_loopback((ports or {}).get(name, 0)))
            mock.base_url = server.url
            server.start()
            upstreams.servers.append(server)
    except BaseException:
        upstreams.stop()
        raise
    logging.getLogger("gwconf.upstream").debug("upstreams: %s", upstreams.urls)
    return upstreams
