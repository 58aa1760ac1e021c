"""Egress capture: the HTTP(S) proxy every gateway gwconf starts is pointed at, a tripwire.

A gateway that ignores its configured upstream and calls a provider's public host would otherwise
fail only with a vague 5xx. gwconf starts each gateway with HTTP_PROXY/HTTPS_PROXY set to this
sink (and NO_PROXY for loopback, so the mocks are reached directly): whatever tries to leave
loopback lands here, is recorded (method, host, port, and the path when the request is plain
HTTP; a CONNECT hides it inside TLS) and is answered 403. Nothing is ever tunnelled or forwarded.

uvicorn's h11 protocol accepts both proxy request forms, so the sink is an ordinary ASGI app:
`CONNECT host:443` arrives with the authority as `path`, `GET http://host/p` with the absolute
URI as `path`. The log is served at `GET /__gwconf/egress[?since=EPOCH]` to direct (origin-form)
requests, and in-process as `EgressSink.log`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

import httpx
from starlette.types import Receive, Scope, Send

from harness.errors import UpstreamUnavailable
from harness.upstream._loopback import loopback_client
from harness.upstream.server import ThreadedServer, bind_loopback

LOG_PATH = "/__gwconf/egress"
MAX_ATTEMPTS = 1000  # the log keeps the newest; a runaway gateway cannot grow it without bound
LOOPBACK = ("127.0.0.1", "localhost", "::1")
REFUSAL = b"gwconf egress capture: this gateway must call only its configured upstreams\n"


@dataclass
class EgressAttempt:
    """One attempt by the gateway to reach a host other than the mock upstreams."""

    method: str
    host: str
    port: int
    path: str | None = None  # None for CONNECT: the path travels inside the TLS tunnel
    time: float = 0.0  # epoch seconds, comparable across processes (xdist workers)

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def summary(self) -> str:
        where = f"{self.target}{self.path}" if self.path else self.target
        return f"{self.method} {where}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> EgressAttempt:
        return cls(**data)  # type: ignore[arg-type]


@dataclass
class EgressLog:
    """Thread-safe, bounded log of egress attempts."""

    attempts: deque[EgressAttempt] = field(default_factory=lambda: deque(maxlen=MAX_ATTEMPTS))
    dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def append(self, attempt: EgressAttempt) -> None:
        with self._lock:
            if len(self.attempts) == self.attempts.maxlen:
                self.dropped += 1
            self.attempts.append(attempt)

    def since(self, started: float = 0.0) -> list[EgressAttempt]:
        with self._lock:
            return [a for a in self.attempts if a.time >= started]


def parse_target(method: str, target: str, host_header: str) -> EgressAttempt:
    """Host, port and (when visible) path of a proxy request's target."""
    if method == "CONNECT":  # authority form: host:port, [v6]:port
        host, _, port = target.rpartition(":")
        return EgressAttempt(method, host.strip("[]") or target, int(port) if port.isdigit() else 443)
    parts = urlsplit(target if "://" in target else f"http://{host_header}{target}")
    default = 443 if parts.scheme == "https" else 80
    try:
        port = parts.port or default
    except ValueError:
        port = default
    return EgressAttempt(method, parts.hostname or host_header, port, parts.path or "/")


class EgressSink:
    """The ASGI app: record every proxied request, answer 403; serve the log to direct calls."""

    def __init__(self) -> None:
        self.log = EgressLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, target = scope["method"], scope["path"]
        if method == "GET" and target == LOG_PATH:  # origin form: the harness asking
            query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
            attempts = self.log.since(float(query.get("since", 0) or 0))
            await reply(send, 200, json.dumps([a.to_dict() for a in attempts]).encode(), b"application/json",
                        keep_alive=True)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        attempt = parse_target(method, target, headers.get("host", ""))
        attempt.time = time.time()
        self.log.append(attempt)
        await reply(send, 403, REFUSAL, b"text/plain")


async def reply(send: Send, status: int, body: bytes, media: bytes, keep_alive: bool = False) -> None:
    headers = [(b"content-type", media), (b"content-length", str(len(body)).encode())]
    if not keep_alive:  # a refused proxy request: nothing more is welcome on that connection
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class RunningSink:
    sink: EgressSink
    server: ThreadedServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def log(self) -> EgressLog:
        return self.sink.log

    def stop(self) -> None:
        self.server.stop()


def start_sink() -> RunningSink:
    sink = EgressSink()
    server = ThreadedServer(sink, bind_loopback(), http="h11")  # h11 parses both proxy forms
    server.start()
    return RunningSink(sink, server)


def proxy_env(sink_url: str) -> dict[str, str]:
    """The environment that sends a gateway's non-loopback traffic to the sink."""
    no_proxy = ",".join(LOOPBACK)
    return {"HTTP_PROXY": sink_url, "HTTPS_PROXY": sink_url, "http_proxy": sink_url,
            "https_proxy": sink_url, "NO_PROXY": no_proxy, "no_proxy": no_proxy}


def fetch_attempts(sink_url: str, since: float = 0.0) -> list[EgressAttempt]:
    """The sink's log over HTTP: how xdist workers (and in-process checks) read it."""
    try:
        response = loopback_client().get(sink_url + LOG_PATH, params={"since": repr(since)})
        return [EgressAttempt.from_dict(a) for a in response.json()]
    except (httpx.HTTPError, ValueError) as exc:
        raise UpstreamUnavailable(f"{sink_url}: egress log unreachable ({exc})") from exc
