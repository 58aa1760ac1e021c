"""The intercepting proxy of an as-deployed run: real provider hosts, answered by the mocks.

In `mode = "as-deployed"` a gateway keeps the providers' real hosts in its configuration and gets
this proxy as HTTP(S)_PROXY. A `CONNECT host:443` is answered 200 and the tunnel's TLS is
terminated with a certificate for that host, issued by a CA made for this run (trustme) and
trusted through the variables the gateway's runtime reads (`deployed_env`). What travels inside
the tunnel is relayed, byte for byte, to a small ASGI router that reads the request's Host:

- a real provider host (`REAL_HOSTS`) is forwarded to its mock: each DashScope region's host to
  that region's mock. The crossing is logged with the host, method and full path (and the check
  token of a marked prompt), so a report can name the host each alias really went to;
- any other host is refused (403) and recorded as an `EgressAttempt` with its method and full
  path, in the egress sink's log, which is what MAP-011 reads.

Requests in the plain proxy forms (`GET http://host/path`, anything but CONNECT) are relayed to
the egress sink, which records and refuses them as in a normal run. Nothing leaves loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import h11
import httpx
from starlette.types import Receive, Scope, Send

from harness.errors import ConfigError
from harness.upstream._egress import LOOPBACK, EgressAttempt, EgressSink, RunningSink, reply
from harness.upstream._markers import find_marker
from harness.upstream.server import REAL_HOSTS, ThreadedServer, bind_loopback

if TYPE_CHECKING:  # trustme on use: it imports cryptography, which only an as-deployed run needs
    import trustme

log = logging.getLogger("gwconf.intercept")

HEAD_LIMIT = 64 * 1024  # a proxy request head longer than this is refused
HEAD_TIMEOUT = 10.0  # seconds to receive a request head or finish a TLS handshake
FORWARD_TIMEOUT = httpx.Timeout(60.0, connect=5.0)  # a mock that hangs on purpose ends here
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade", "host"})
CA_BUNDLE_NAME = "gwconf-run-ca.pem"


def real_urls() -> dict[str, str]:
    """What a profile's `{dashscope_url}`-style placeholders render to in an as-deployed run."""
    return {name: f"https://{host}" for name, host in REAL_HOSTS.items()}


@dataclass
class Crossing:
    """One request that went through a tunnel to a real provider host and on to its mock."""

    method: str
    host: str
    path: str  # with the query string
    mock: str  # the mock that answered (a REAL_HOSTS key)
    run: str | None = None  # the check token of a marked prompt, when the body carries one
    time: float = 0.0

    def summary(self) -> str:
        return f"{self.method} {self.host}{self.path} -> {self.mock}"


@dataclass
class RunCA:
    """The per-run certificate authority and a cache of the leaf contexts it issued."""

    bundle: Path  # the CA certificate (PEM) the gateway is told to trust
    ca: trustme.CA = field(repr=False)
    contexts: dict[str, ssl.SSLContext] = field(default_factory=dict, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def create(cls, directory: Path) -> RunCA:
        import trustme

        ca = trustme.CA(organization_name="gwconf run CA")
        bundle = directory / CA_BUNDLE_NAME
        ca.cert_pem.write_to_path(str(bundle))
        return cls(bundle, ca)

    def server_context(self, host: str) -> ssl.SSLContext:
        with self.lock:
            if host not in self.contexts:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                self.ca.issue_cert(host).configure_cert(context)
                self.contexts[host] = context
            return self.contexts[host]


def split_host(value: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` -> (host, port)."""
    parts = urlsplit(f"//{value}")
    try:
        port = parts.port or default_port
    except ValueError:
        port = default_port
    return (parts.hostname or value), port


class Router:
    """ASGI app behind the TLS tunnels: real hosts go to their mocks, others are refused."""

    def __init__(self, routes: Mapping[str, str], sink: EgressSink) -> None:
        self.routes = {REAL_HOSTS[name]: (name, url) for name, url in routes.items() if name in REAL_HOSTS}
        self.sink = sink
        self.crossings: list[Crossing] = []
        self.http = httpx.AsyncClient(timeout=FORWARD_TIMEOUT, trust_env=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        host, port = split_host(dict(headers).get("host", ""), 443)
        method = scope["method"]
        path = scope["raw_path"].decode("latin-1") or "/"
        if scope["query_string"]:
            path += "?" + scope["query_string"].decode("latin-1")
        route = self.routes.get(host) if port == 443 else None
        if route is None:
            self.sink.log.append(EgressAttempt(method, host, port, path, time.time()))
            await reply(send, 403, b"gwconf intercept: not a provider host this run serves\n", b"text/plain")
            return
        body = await read_body(receive)
        name, base = route
        marker = find_marker(body.decode("utf-8", "replace"))
        self.crossings.append(Crossing(method, host, path, name, marker.token if marker else None, time.time()))
        await self.forward(send, method, base + path, headers, body)

    async def forward(self, send: Send, method: str, url: str, headers: list[tuple[str, str]],
                      body: bytes) -> None:
        request = self.http.build_request(
            method, url, content=body, headers=[(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP])
        try:
            response = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            await reply(send, 502, f"gwconf intercept: mock unreachable ({exc})\n".encode(), b"text/plain")
            return
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k, v) for k, v in response.headers.raw
                                    if k.decode("latin-1").lower() not in HOP_BY_HOP]})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


class TunnelServer:
    """The proxy port: CONNECT is terminated and relayed to the router, the rest to the sink."""

    def __init__(self, ca: RunCA, router_addr: tuple[str, int], sink_addr: tuple[str, int],
                 sink: EgressSink) -> None:
        self.ca = ca
        self.router_addr = router_addr
        self.sink_addr = sink_addr
        self.sink = sink
        self.loop = asyncio.new_event_loop()
        self.sock = bind_loopback()
        self.server: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self.loop)
        future.result(timeout=10)

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(self._track, sock=self.sock)

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await self.handle(reader, writer)
        except (ConnectionError, ssl.SSLError, TimeoutError, h11.ProtocolError, OSError) as exc:
            log.debug("intercept connection ended: %s", exc)
        finally:
            self.tasks.discard(task)
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, request = await read_head(reader)
        if request is None:
            return
        if request.method != b"CONNECT":  # plain proxy forms: the sink records and refuses
            await relay(reader, writer, self.sink_addr, head)
            return
        host, port = split_host(request.target.decode("latin-1"), 443)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await writer.start_tls(self.ca.server_context(host), ssl_handshake_timeout=HEAD_TIMEOUT)
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            # The client did not trust the run CA (its runtime ignored the CA variables) or left:
            # what it meant to send is unknown, so the attempt is recorded as a bare CONNECT.
            self.sink.log.append(EgressAttempt("CONNECT", host, port, None, time.time()))
            log.warning("TLS to %s:%s failed (does the gateway trust the run CA?): %s", host, port, exc)
            return
        await relay(reader, writer, self.router_addr)

    def stop(self) -> None:
        async def close() -> None:
            if self.server is not None:
                self.server.close()
            for task in list(self.tasks):
                task.cancel()
            await asyncio.sleep(0)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.sock.close()


async def read_head(reader: asyncio.StreamReader) -> tuple[bytes, h11.Request | None]:
    """The bytes of the first request head and its parse (h11), bounded in size and time."""
    parser = h11.Connection(h11.SERVER)
    head = b""
    while len(head) < HEAD_LIMIT:
        data = await asyncio.wait_for(reader.read(65536), HEAD_TIMEOUT)
        if not data:
            return head, None
        head += data
        parser.receive_data(data)
        event = parser.next_event()
        if isinstance(event, h11.Request):
            return head, event
    return head, None


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: tuple[str, int],
                first: bytes = b"") -> None:
    """Pipe the connection to a loopback server both ways until either side closes."""
    up_reader, up_writer = await asyncio.open_connection(*target)
    up_writer.write(first)

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()

    try:
        _, pending = await asyncio.wait([asyncio.ensure_future(pipe(reader, up_writer)),
                                            asyncio.ensure_future(pipe(up_reader, writer))],
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    finally:
        up_writer.close()


@dataclass
class RunningIntercept:
    """The intercepting proxy of one run: its URL, the CA bundle, and what crossed it."""

    tunnels: TunnelServer
    router: Router
    router_server: ThreadedServer
    ca: RunCA

    @property
    def url(self) -> str:
        return self.tunnels.url

    @property
    def crossings(self) -> list[Crossing]:
        return list(self.router.crossings)

    def stop(self) -> None:
        self.tunnels.stop()
        self.router_server.stop()


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ConfigError(f"{url}: not a loopback server address")
    return parts.hostname, parts.port


def start_intercept(sink: RunningSink, mocks: Mapping[str, str], workdir: Path) -> RunningIntercept:
    """Start the proxy for an as-deployed run: `mocks` maps REAL_HOSTS names to mock base URLs."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca = RunCA.create(workdir)
    router = Router(mocks, sink.sink)
    router_server = ThreadedServer(router, bind_loopback(), http="h11")
    router_server.start()
    tunnels = TunnelServer(ca, address(router_server.url), address(sink.url), sink.sink)
    try:
        tunnels.start()
    except BaseException:
        router_server.stop()
        raise
    return RunningIntercept(tunnels, router, router_server, ca)


def deployed_env(proxy_url: str, ca_bundle: Path) -> dict[str, str]:
    """The proxy and the run CA, through every variable the gateways' runtimes read:
    HTTP(S)_PROXY for httpx, aiohttp (trust_env) and requests; SSL_CERT_FILE for Python's ssl
    defaults, httpx (trust_env) and LiteLLM's own SSL context (`get_ssl_configuration`);
    REQUESTS_CA_BUNDLE for requests; CURL_CA_BUNDLE for curl and libcurl bindings;
    NODE_EXTRA_CA_CERTS for Node (which does not read the proxy variables itself)."""
    no_proxy = ",".join(LOOPBACK)
    ca = str(ca_bundle)
    return {"HTTP_PROXY": proxy_url, "HTTPS_PROXY": proxy_url, "http_proxy": proxy_url,
            "https_proxy": proxy_url, "NO_PROXY": no_proxy, "no_proxy": no_proxy,
            "SSL_CERT_FILE": ca, "REQUESTS_CA_BUNDLE": ca, "CURL_CA_BUNDLE": ca,
            "NODE_EXTRA_CA_CERTS": ca}
