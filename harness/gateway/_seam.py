"""The in-process seam: every HTTP call of a run goes to an ASGI app in this process, no socket.

An in-process run (`run_in_process`, what the mutation tests use) hosts the gateway, the mock
upstreams and the egress sink as ASGI apps on one event loop in a daemon thread. Every HTTP
client of the run is routed to them by origin (`http://dashscope.gwconf.test`, ...):

- the gateway's own `httpx.AsyncClient` gets `Router` as its transport (the reference gateway
  takes a transport in its config for this);
- the checks' sync `httpx.Client`s get `Bridge`, which hands each request to the loop;
- the fuzz campaign's `requests.Session` gets `RequestsAdapter`.

What a socket would have done and the apps cannot, the router does: a read timeout (the request's
own, as httpx would apply it), a body cut short of its Content-Length (the `drop` fault) becomes
`RemoteProtocolError`, and a request for any origin not hosted here goes to the egress sink as a
proxy request, as a gateway pointed at the sink would send it. `gwconf run` and the tests about
sockets keep real servers; nothing here is used unless a seam is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import requests
import requests.adapters
import requests.structures
import requests.utils

ASGIApp = Any
# The key under which an in-process gateway's config carries the transport for its upstream client
# (an object, not JSON: a gateway built in this process reads it; the reference gateway does).
TRANSPORT_KEY = "http_transport"
HARD_BOUND_SECONDS = 120.0  # a request with no timeout of its own still ends
START_BOUND_SECONDS = 5.0


def hosted_origin(name: str) -> str:
    """The origin an in-process app answers on: `.test` is reserved, nothing real lives there."""
    return f"http://{name}.gwconf.test"


class Router(httpx.AsyncBaseTransport):
    """Sends each request to the app that serves its origin (runs on the host's loop)."""

    def __init__(self, apps: Mapping[str, ASGIApp], egress: ASGIApp | None = None) -> None:
        self.apps = dict(apps)
        self.egress = egress

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
        app = self.apps.get(origin)
        if app is None:
            if self.egress is None:
                raise httpx.ConnectError(f"in-process run: nothing serves {origin}", request=request)
            app = as_proxy_request(self.egress)
            if request.url.scheme == "https":
                return await self.tunnel(app, request)
        read = (request.extensions.get("timeout") or {}).get("read")
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        task = asyncio.ensure_future(read_whole(transport, request))
        done, _ = await asyncio.wait({task}, timeout=read if read is not None else HARD_BOUND_SECONDS)
        if not done:
            # Whatever the app does once cancelled (a `hang` fault answers a dropped body), the
            # client has already given up, as it would on a socket.
            task.cancel()
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # seen, not logged
            raise httpx.ReadTimeout(f"{origin}: no answer within {read}s", request=request)
        return task.result()


    async def tunnel(self, proxy: ASGIApp, request: httpx.Request) -> httpx.Response:
        """HTTPS through a proxy starts with CONNECT host:port; a refusal is a ProxyError, as httpx
        reports it when a real proxy refuses the tunnel."""
        connect = httpx.Request("CONNECT", request.url.copy_with(path="/", query=None),
                                headers={"host": request.url.netloc.decode()})
        answer = await read_whole(httpx.ASGITransport(app=proxy, raise_app_exceptions=False), connect)
        raise httpx.ProxyError(f"proxy refused CONNECT {request.url.host}: {answer.status_code}", request=request)


async def read_whole(transport: httpx.ASGITransport, request: httpx.Request) -> httpx.Response:
    response = await transport.handle_async_request(request)
    body = b"".join([part async for part in response.stream])
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) != len(body):
        # What httpx reports when a server closes the connection before the body is complete.
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body "
                                        f"(received {len(body)} bytes, expected {declared})", request=request)
    return httpx.Response(response.status_code, headers=response.headers, content=body, request=request,
                          extensions={"http_version": b"HTTP/1.1", "reason_phrase": b""})


def as_proxy_request(app: ASGIApp) -> ASGIApp:
    """The request as an HTTP proxy receives it: the absolute URI as the target (what uvicorn's
    h11 protocol hands the egress sink for `GET http://host/path`)."""

    async def proxied(scope: dict[str, Any], receive: Any, send: Any) -> None:
        host, port = scope["server"]
        port = port or (443 if scope["scheme"] == "https" else 80)  # httpx leaves a default port out
        if scope["method"] == "CONNECT":  # authority form
            target = f"{host}:{port}"
        else:
            target = f"{scope['scheme']}://{host}:{port}{scope['path']}"
        await app({**scope, "path": target, "raw_path": target.encode()}, receive, send)

    return proxied


class Host:
    """One event loop in a daemon thread, on which the apps of a run (and their tasks) live."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="gwconf-seam", daemon=True)
        self.started = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self.started.set)
        self.loop.run_forever()

    def start(self) -> None:
        self.thread.start()
        if not self.started.wait(START_BOUND_SECONDS):
            raise RuntimeError("in-process seam: event loop did not start")

    def run(self, coro: Any, bound: float) -> Any:
        """Run a coroutine on the loop from another thread, waiting at most `bound` seconds."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout=bound)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=1.0) if tasks else None

        with contextlib.suppress(Exception):
            self.run(cancel_all(), 2.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=2.0)
        if not self.thread.is_alive():
            self.loop.close()


class Bridge(httpx.BaseTransport):
    """A sync httpx transport that sends through the router on the host's loop."""

    def __init__(self, host: Host, router: Router) -> None:
        self.host = host
        self.router = router

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()
        copy = httpx.Request(request.method, request.url, headers=request.headers, content=content,
                             extensions=request.extensions)
        read = (request.extensions.get("timeout") or {}).get("read")
        bound = (read if read is not None else HARD_BOUND_SECONDS) + 5.0
        try:
            answer = self.host.run(self.router.handle_async_request(copy), bound)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"{request.url}: no answer within {bound:g}s", request=request) from exc
        # A stream, not `content=`: httpx then reads and closes it as it would a socket's, which
        # is when it sets `elapsed`.
        return httpx.Response(answer.status_code, headers=answer.headers, stream=httpx.ByteStream(answer.content),
                              request=request, extensions=answer.extensions)


class RequestsAdapter(requests.adapters.BaseAdapter):
    """The same bridge for a `requests.Session` (schemathesis sends the fuzz cases with one)."""

    def __init__(self, bridge: Bridge) -> None:
        super().__init__()
        self.bridge = bridge

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        read = timeout[1] if isinstance(timeout, tuple) else timeout
        body = request.body or b""
        outgoing = httpx.Request(request.method or "GET", request.url or "", headers=dict(request.headers),
                                 content=body.encode() if isinstance(body, str) else body,
                                 extensions={"timeout": {"connect": read, "read": read, "write": read, "pool": read}})
        try:
            answer = self.bridge.handle_request(outgoing)
            answer.read()
        except httpx.TimeoutException as exc:
            raise requests.ReadTimeout(str(exc), request=request) from exc
        except httpx.HTTPError as exc:
            raise requests.ConnectionError(str(exc), request=request) from exc
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = requests.structures.CaseInsensitiveDict(answer.headers.multi_items())
        response._content = answer.content
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.reason = answer.reason_phrase
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


class Seam:
    """The open seam of one in-process run: its host loop, router and client-side transports."""

    def __init__(self, apps: Mapping[str, ASGIApp], egress: ASGIApp | None = None) -> None:
        self.host = Host()
        self.router = Router(apps, egress)
        self.bridge = Bridge(self.host, self.router)
        self.client = httpx.Client(transport=self.bridge, trust_env=False, timeout=5.0)

    def add(self, origin: str, app: ASGIApp) -> None:
        self.router.apps[origin] = app

    def call(self, coro: Any, bound: float = 10.0) -> Any:
        """Run a coroutine on the seam's loop: how an app is built where its clients will live."""
        return self.host.run(coro, bound)


_active: Seam | None = None
_lock = threading.Lock()


@contextlib.contextmanager
def open_seam(apps: Mapping[str, ASGIApp], egress: ASGIApp | None = None) -> Iterator[Seam]:
    """Host the apps and route this process's harness clients to them until the block ends."""
    global _active
    seam = Seam(apps, egress)
    with _lock:
        if _active is not None:
            raise RuntimeError("an in-process seam is already open in this process")
        _active = seam
    seam.host.start()
    try:
        yield seam
    finally:
        with _lock:
            _active = None
        seam.client.close()
        seam.host.stop()


def active() -> Seam | None:
    return _active


def client_options() -> dict[str, Any]:
    """Options for a harness `httpx.Client`: the seam's transport while one is open, else none."""
    seam = _active
    return {"transport": seam.bridge, "trust_env": False} if seam is not None else {}


def mount(session: requests.Session) -> None:
    """Route a `requests.Session` through the seam while one is open (else leave it alone)."""
    seam = _active
    if seam is not None:
        adapter = RequestsAdapter(seam.bridge)
        session.trust_env = False  # no proxy applies to an app in this process: skip the scan
        session.mount("http://", adapter)
        session.mount("https://", adapter)
