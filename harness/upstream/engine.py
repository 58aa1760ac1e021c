"""The provider-independent half of a mock upstream: scenario choice, tasks, faults, capture.

A provider module (dashscope.py, openai.py, replicate.py) supplies a `Provider`: its error
envelope, where task ids live in poll paths, how it names models. Everything else, the
replay itself, is the same for all three and lives here.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from harness.config._cassette import FILES_HOST, Cassette, Interaction
from harness.config._redact import Scrubber, bearer_token
from harness.records._capture import CapturedRequest, CaptureLog
from harness.upstream._markers import Marker, find_marker
from harness.upstream.tagging import JOB_QUERY, tag_file_urls, tag_png

if TYPE_CHECKING:
    from jsonschema import ValidationError
from harness.records._outcome import clip

log = logging.getLogger("gwconf.upstream")

HOP_HEADERS = {"content-length", "transfer-encoding", "content-encoding", "connection", "date"}
MAX_HANG_SECONDS = 120.0  # a "hang" fault still ends, so a run can never hang on the mock
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
REPLAY_METHODS = frozenset({*ALL_METHODS, "HEAD"})  # what the replay answers (Starlette adds HEAD to GET)
FILE_TYPES = {".png": "image/png", ".mp4": "video/mp4"}  # what the provider files are served as


@dataclass(slots=True)
class ParsedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names, raw values (never stored)
    raw: bytes
    body: Any
    marker: Marker | None
    notes: list[str] = field(default_factory=list)  # what the mock wants the capture to say
    flag: str | None = None  # set when the mock could not answer faithfully (no cassette)

    def json(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else {}


@dataclass
class Task:
    id: str
    cassette: Cassette
    token: str | None
    served: int = 0  # polls answered so far: the task advances one step per poll, never by time
    canceled: bool = False
    # Each poll answer rendered once: a client polling a finished task gets the same reply.
    rendered: dict[int, Reply] = field(default_factory=dict)

    def next_step(self) -> int:
        """The poll answer due now (its index in the cassette's polls), and one step on."""
        step = min(self.served, len(self.cassette.polls) - 1)
        self.served += 1
        return step

    def final(self) -> Interaction:
        self.served = len(self.cassette.polls)
        return self.cassette.polls[-1]


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"
    # The scrubbed headers and body a capture records, kept for a reply served many times.
    captured: tuple[dict[str, str], str] | None = None


class Provider:
    """What differs between providers. Subclasses override the hooks they need."""

    name = "provider"
    public_hosts: tuple[str, ...] = ()

    def new_id(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def poll_id(self, method: str, path: str) -> str | None:
        return None

    def cancel_id(self, method: str, path: str) -> str | None:
        """The task a request cancels, for providers whose cancel goes through `answer` (and is
        captured like any request)."""
        return None

    def cancel(self, task: Task | None) -> Reply:  # pragma: no cover - overridden with cancel_id
        raise NotImplementedError

    def model_of(self, req: ParsedRequest) -> str | None:
        return req.json().get("model")

    def error(self, status: int, code: str, message: str, path: str = "") -> Reply:
        raise NotImplementedError  # pragma: no cover

    def unknown_route(self, req: ParsedRequest) -> Reply:
        return self.error(404, "NotFound", f"no route {req.method} {req.path}", req.path)

    def unknown_model(self, req: ParsedRequest, model: str | None) -> Reply:
        return self.error(404, "ModelNotFound", f"The model {model} does not exist.", req.path)

    def wrong_endpoint(self, req: ParsedRequest, cassette: Cassette) -> Reply:
        return self.error(400, "InvalidParameter", "url error, please check url!", req.path)

    def unknown_task(self, task_id: str) -> Reply:
        return self.error(404, "NotFound", f"task {task_id} not found")

    def invalid_request(self, req: ParsedRequest, error: ValidationError) -> Reply:
        """The provider's refusal of a body that breaks its request schema."""
        return self.error(400, "InvalidParameter", "Required parameter(s) missing or invalid, "
                          "please check the request parameters.", req.path)

    def no_cassette(self, req: ParsedRequest, model: str | None) -> Reply:
        """No cassette answers this valid request: say so loudly rather than invent a success."""
        return self.error(500, "gwconf_no_cassette",
                          f"gwconf mock: no cassette answers {model} on {req.method} {req.path}",
                          req.path)

    def invalid_key(self, req: ParsedRequest) -> Reply:
        return self.error(401, "InvalidApiKey", "Invalid API-key provided.", req.path)

    def as_canceled(self, reply: Reply) -> Reply:
        """A poll answer for a task the client canceled (providers with a cancel route override)."""
        return reply

    def check_request(self, req: ParsedRequest, cassette: Cassette) -> Reply | None:
        """A provider-side rejection of a request the cassette's route would otherwise answer."""
        return None

    def submit_reply(self, req: ParsedRequest, task: Task) -> Interaction:
        return task.cassette.submit

    def extra_routes(self, mock: MockUpstream) -> list[Route]:
        return []


class MockUpstream:
    """One provider's mock: an ASGI app plus the state it keeps (tasks, captures)."""

    def __init__(
        self,
        provider: Provider,
        cassettes: Iterable[Cassette],
        captures: CaptureLog,
        files_dir: Path,
        region: str | None = None,
        secrets: tuple[str, ...] = (),
        key: str | None = None,
    ) -> None:
        self.provider = provider
        self.cassettes = [c for c in cassettes if c.provider == provider.name]
        self.by_scenario = {c.scenario: c for c in self.cassettes}
        self.catalogue = {m for c in self.cassettes for m in c.models}
        # Imported here: validation builds on this module's types.
        from harness.config._catalogue import catalogue_for
        from harness.upstream.validation import RequestValidator
        self.validator = RequestValidator(provider, catalogue_for(provider.name,
                                                                  [c.path for c in self.cassettes]))
        if self.validator.catalogue is not None:
            self.catalogue = set(self.validator.catalogue.available)
        self.captures = captures
        self.files_dir = files_dir
        self.region = region
        # Keys the run knows (the clients'): scrubbed to fingerprints wherever they show up,
        # whatever their shape, so a check can tell that one travelled.
        self.secrets = secrets
        self.scrubber = Scrubber(secrets)
        # The provider key this mock expects, as the real service does (regions included); None
        # accepts any key (`gwconf upstreams`, the SDK fidelity tests).
        self.key = key
        self.base_url = ""  # set by the server once the port is bound
        self.tasks: dict[str, Task] = {}
        self.tag_results = False  # `gwconf load`: results name their job (upstream/tagging.py)
        self._lock = threading.Lock()
        self.side_routes = [
            Route("/files/{name}", self.serve_file, methods=["GET"]),
            Route("/__gwconf/captures", self.serve_captures, methods=["GET"]),
            Route("/__gwconf/health", self.health, methods=["GET"]),
            *provider.extra_routes(self),
        ]
        self.side_app = Starlette(routes=self.side_routes)
        self._side_paths = [(route.path_regex, route.methods or set()) for route in self.side_routes]
        self.app = self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The mock's ASGI app. Provider traffic goes straight to `replay`, without Starlette's
        routing and request objects: task polls are most of a load run, and this halves their cost."""
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            for pattern, methods in self._side_paths:
                if pattern.match(path) and method in methods:
                    break
            else:
                if method not in REPLAY_METHODS:  # as Starlette's router answered them before
                    await PlainTextResponse("Method Not Allowed", 405, {"allow": ", ".join(sorted(REPLAY_METHODS))})(
                        scope, receive, send)
                    return
                await self.replay(scope, receive, send)
                return
        await self.side_app(scope, receive, send)

    # -- plain routes -------------------------------------------------------------------------

    async def serve_file(self, request: Request) -> Response:
        name = Path(request.path_params["name"]).name
        path = self.files_dir / name
        if not path.is_file():
            return Response(status_code=404)
        media = FILE_TYPES.get(Path(name).suffix, "application/octet-stream")
        data = path.read_bytes()
        job = request.query_params.get(JOB_QUERY)
        if self.tag_results and job:
            data = tag_png(data, job)
        return Response(data, media_type=media)

    async def serve_captures(self, request: Request) -> Response:
        token = request.query_params.get("run")
        records = self.captures.for_token(token) if token else self.captures.all()
        # The mocks share one log; each serves only its own records (a DashScope region's mock,
        # its region's), so a reader that asks every mock gets each record once.
        mine = [r.to_dict() for r in records
                if r.provider == self.provider.name and r.region == self.region]
        return JSONResponse(mine)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"provider": self.provider.name, "region": self.region})

    # -- replay -------------------------------------------------------------------------------

    async def replay(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            req = await parse_request(scope, receive)
        except ClientDisconnect:  # gone before its body arrived: nothing to answer, nothing sent
            return
        except MultiPartException as exc:  # as Starlette's form parser answered it under its router
            await PlainTextResponse(exc.message, 400)(scope, receive, send)
            return
        reply, cassette, token, task_id = self.answer(req)
        scrubber = self.scrubber
        if reply.captured is None:
            reply.captured = (scrubber.headers({"content-type": reply.media_type, **reply.headers}),
                              clip(scrubber.text(reply.body.decode("utf-8", errors="replace"))))
        answer_headers, answer_body = reply.captured
        record = CapturedRequest(
            provider=self.provider.name,
            method=req.method,
            path=req.path,
            query=scrubber.data(req.query),
            headers=scrubber.headers(req.headers),
            body=scrubber.data(req.body),
            token=token,
            scenario=cassette.scenario if cassette else None,
            region=self.region,
            answered=reply.status,
            task=task_id,
            notes=req.notes,
            flag=req.flag,
            answer_headers=answer_headers,
            answer_body=answer_body,
            fault=(cassette.fault if cassette else {}).get("kind"),
        )
        self.captures.append(record)
        fault = record.fault
        if fault == "hang":
            try:
                await asyncio.sleep(min(float(cassette.fault.get("seconds", 60)), MAX_HANG_SECONDS))
            except asyncio.CancelledError:  # the mock is shutting down: end quietly
                await DroppedResponse()(scope, receive, send)
                return
        if fault == "drop":
            await DroppedResponse()(scope, receive, send)
            return
        await send_reply(reply, scope, receive, send)

    def answer(self, req: ParsedRequest
               ) -> tuple[Reply, Cassette | None, str | None, str | None]:
        """The reply, the cassette that gave it, the check token, and the task id involved."""
        token = req.marker.token if req.marker else None
        if self.key is not None and bearer_token(req.headers.get("authorization", "")) != self.key:
            return self.provider.invalid_key(req), None, token, None
        retired = self.validator.retired_route(req)
        if retired is not None:
            return retired, None, token, None
        cancel_id = self.provider.cancel_id(req.method, req.path)
        if cancel_id is not None:
            with self._lock:
                task = self.tasks.get(cancel_id)
                reply = self.provider.cancel(task)
            return reply, task.cassette if task else None, task.token if task else token, cancel_id
        task_id = self.provider.poll_id(req.method, req.path)
        if task_id is not None:
            with self._lock:
                task = self.tasks.get(task_id)
                if task is None:
                    return self.provider.unknown_task(task_id), None, token, None
                step = task.next_step()
                reply = task.rendered.get(step)
            if reply is None:
                reply = self.render(task.cassette.polls[step], task.id, task.cassette, task.token)
                task.rendered[step] = reply
            if task.canceled:
                reply = self.provider.as_canceled(reply)
            return reply, task.cassette, task.token, task.id

        verdict = self.validator.judge(req)
        req.notes.extend(verdict.notes)
        if verdict.refusal is not None:
            return verdict.refusal, None, token, None
        route = (req.method, req.path)
        model = verdict.model
        cassette = None
        scenario = req.marker.scenario_for(self.provider.name) if req.marker else None
        if scenario:
            cassette = self.by_scenario.get(scenario)
            if cassette is None:
                log.warning("%s: unknown scenario %r in marker", self.provider.name, scenario)
                message = f"gwconf: unknown scenario {scenario!r} for {self.provider.name}"
                reply = self.provider.error(400, "InvalidParameter", message, req.path)
                return reply, None, token, None
            if cassette.route != route or model not in cassette.models:
                # The provider would answer this request as it answers any other: the
                # scenario cannot apply, and playing it anyway would invent an answer.
                req.notes.append(f"harness: marker scenario {scenario!r} ignored: its cassette "
                                 f"serves {', '.join(cassette.models)} on {' '.join(cassette.route)}, "
                                 f"not {model} on {req.method} {req.path}")
                cassette = None
        if cassette is None:
            on_route = [c for c in self.cassettes if c.route == route]
            if not on_route and self.validator.catalogue is None:
                return self.provider.unknown_route(req), None, token, None
            fitting = [c for c in on_route if model in c.models and c.default]
            if not fitting:
                if self.validator.catalogue is None and not any(model in c.models for c in on_route):
                    return self.provider.unknown_model(req, model), None, token, None
                req.flag = "no-cassette"
                req.notes.append(f"harness: no default cassette answers {model} on "
                                 f"{req.method} {req.path}")
                log.warning("%s: no cassette for %s on %s %s", self.provider.name, model,
                            req.method, req.path)
                return self.provider.no_cassette(req, model), None, token, None
            cassette = fitting[0]
        rejection = self.provider.check_request(req, cassette)
        if rejection is not None:
            return rejection, None, token, None
        if not cassette.is_task:
            return (self.render(cassette.submit, self.provider.new_id(), cassette, token), cassette,
                    token, None)
        task = Task(self.provider.new_id(), cassette, token)
        with self._lock:
            self.tasks[task.id] = task
            interaction = self.provider.submit_reply(req, task)
        return self.render(interaction, task.id, cassette, token), cassette, token, task.id

    def render(self, interaction: Interaction, fresh_id: str, cassette: Cassette,
               token: str | None = None) -> Reply:
        """The cassette's answer for this request: mock URLs, and the request's own id."""
        text = interaction.response_body.decode("utf-8", errors="replace")
        text = text.replace(FILES_HOST, self.base_url)
        if self.tag_results and token:
            text = tag_file_urls(text, self.base_url, token)
        for host in self.provider.public_hosts:
            text = text.replace(host, self.base_url)
        for literal in cassette.ids.values():
            text = text.replace(literal, fresh_id)
        headers = {
            k: v[0] for k, v in interaction.response_headers.items() if k not in HOP_HEADERS and v
        }
        media = headers.pop("content-type", "application/json")
        return Reply(interaction.status, text.encode(), headers, media)

    def get_task(self, task_id: str) -> Task | None:
        with self._lock:
            return self.tasks.get(task_id)


async def parse_request(scope: Scope, receive: Receive) -> ParsedRequest:
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
    # A request that announces no body has none (RFC 9112 6.3): a poll need not wait on `receive`.
    has_body = "content-length" in headers or "transfer-encoding" in headers
    raw = await read_body(receive) if has_body else b""
    query_text = scope.get("query_string", b"").decode("latin-1")
    body: Any
    if "multipart/form-data" in headers.get("content-type", ""):
        body = await multipart_fields(Request(scope, replay_body(raw)))
        marker_text = json.dumps(body, ensure_ascii=False)
    else:
        text = raw.decode("utf-8", errors="replace")
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = text
        marker_text = text
    return ParsedRequest(
        method=scope["method"],
        # As Starlette's URL spells it: these three, decoded, would read as a query, a fragment, a path.
        path=scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C"),
        query=dict(parse_qsl(query_text, keep_blank_values=True)) if query_text else {},
        headers=headers,
        raw=raw,
        body=body,
        marker=find_marker(f"{marker_text} {query_text}") if marker_text or query_text else None,
    )


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay_body(raw: bytes) -> Receive:
    """A `receive` that hands over a body already read, for Starlette's form parser."""
    async def receive() -> Message:
        return {"type": "http.request", "body": raw, "more_body": False}
    return receive


async def send_reply(reply: Reply, scope: Scope, receive: Receive, send: Send) -> None:
    # Starlette's Response, for its header rules (charset, no length on a 204 or 304); its routing and
    # request objects were the costly part.
    await Response(reply.body, status_code=reply.status, headers=reply.headers, media_type=reply.media_type)(
        scope, receive, send)


async def multipart_fields(request: Request) -> dict[str, Any]:
    """Form fields as text; files as a digest record, so captures stay small and comparable."""
    form = await request.form()
    fields: dict[str, Any] = {}
    for name, value in form.multi_items():
        if hasattr(value, "read"):
            data = await value.read()
            item: Any = {
                "filename": value.filename,
                "content_type": value.content_type,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        else:
            item = value
        if name in fields:
            existing = fields[name]
            fields[name] = [*existing, item] if isinstance(existing, list) else [existing, item]
        else:
            fields[name] = item
    return fields


class DroppedResponse(Response):
    """Announce a body, send part of it, stop: the client sees the connection cut short."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        })
        # h11 refuses to end a message shorter than its Content-Length and uvicorn then closes
        # the connection: that refusal is the point (server.QuietShutdown keeps it out of logs).
        await send({"type": "http.response.body", "body": b'{"output": {', "more_body": False})
