"""Serving the mock upstreams on loopback: one uvicorn server per provider, in threads.

uvicorn's fast stack serves them where it is installed (it is a dependency: `uvicorn[standard]`):
httptools parses HTTP and uvloop runs each server's event loop; `"auto"` falls back to h11 and
asyncio otherwise. Each server gets its own loop from uvicorn's loop factory, so nothing here
changes the process-wide asyncio policy. The egress sink asks for h11 (see egress.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
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
# The providers' real hosts (providers/dashscope.md 1.1; the OpenAI and Replicate API bases),
# by the name of the mock that answers for them (an as-deployed run routes each to its mock).
REAL_HOSTS = {
    "dashscope": "dashscope.aliyuncs.com",  # China (Beijing), the SDK's default
    "dashscope-intl": "dashscope-intl.aliyuncs.com",  # Singapore
    "dashscope-us": "dashscope-us.aliyuncs.com",  # US (Virginia)
    "openai": "api.openai.com",
    "replicate": "api.replicate.com",
}
STARTUP_BOUND_SECONDS = 10.0
STOP_BOUND_SECONDS = 5.0
LISTEN_BACKLOG = 2048
# What h11 and httptools say when a `drop` fault ends a body short of its Content-Length.
SHORT_BODY_ERRORS = ("Too little data for declared Content-Length",
                     "Response content shorter than Content-Length")


class QuietShutdown(logging.Filter):
    """Faults the mocks cause on purpose are not worth a log line: a `hang` cut short by
    shutdown, and the short body of a `drop` that h11 and httptools refuse to finish."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "graceful shutdown exceeded" in record.getMessage():
            return False
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, asyncio.CancelledError):  # a request still running at shutdown
            return False
        return not any(text in str(error) for text in SHORT_BODY_ERRORS)


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
    # A deep backlog: `gwconf load` opens a thousand connections at once, and a full queue drops
    # SYNs that the client then resends only after a second.
    sock.listen(LISTEN_BACKLOG)
    return sock


# Where a gateway gwconf starts listens: below Linux's ephemeral range (32768-60999), which every bind
# to port 0 (the mocks, the sink) and every outgoing connection of the run takes its ports from.
GATEWAY_PORTS = range(20000, 32768)


def free_port() -> int:
    """A port for a server gwconf cannot hand a bound socket to (a gateway it starts as a process).
    Between this check and the gateway's own bind, nothing else of the run can take it: a port the
    kernel handed out for port 0 would be free again here, and as likely to go to the next
    connection the run opens as to the gateway."""
    for port in random.sample(GATEWAY_PORTS, 50):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # that whole range busy: the kernel's choice, as before
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PromptServer(uvicorn.Server):
    """uvicorn's server, woken by a stop request: uvicorn itself notices one on its next 0.1 s tick,
    which every run (and every one of the project's tests that starts servers) would wait out."""

    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)  # uvicorn's tick, cut short by a stop
            should_exit = await self.on_tick(counter)

    def request_stop(self) -> None:
        """From any thread."""
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # its loop already closed: it has stopped
                self._loop.call_soon_threadsafe(self._wake.set)


class ThreadedServer:
    """A uvicorn server on an already-bound socket, in a daemon thread, stoppable."""

    def __init__(self, app: object, sock: socket.socket, http: str = "auto", loop: str = "auto") -> None:
        self.sock = sock
        # A long keep-alive: a gateway that reuses a connection just as the mock closes it (uvicorn's
        # default is 5 s idle) would see a dropped connection that no provider caused.
        # No proxy headers: the mocks never read the client's address, and the middleware costs
        # every request.
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1, http=http, loop=loop, timeout_keep_alive=75,
                                proxy_headers=False)
        self.server = PromptServer(config)
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
        stop_servers([self])


def ask_to_stop(servers: Iterable[ThreadedServer]) -> None:
    """Tell them to stop, without waiting: they wind down while the caller does something else."""
    for server in servers:
        server.server.request_stop()


def stop_servers(servers: Iterable[ThreadedServer]) -> None:
    """Stop them together: each takes a tick of uvicorn's main loop (0.1 s) and its graceful
    shutdown to notice, so one after another would add those up."""
    servers = list(servers)
    ask_to_stop(servers)
    deadline = time.monotonic() + STOP_BOUND_SECONDS
    for server in servers:
        server.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        server.sock.close()


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
        stop_servers(self.servers)

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
