"""The harness as a client of the gateway under test, speaking the profile's async dialect.

Every request is recorded as an Exchange (for evidence) and is bounded by the profile's
timeouts; every poll loop is bounded by the job timeout. Nothing here can hang a run.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from jsonpointer import resolve_pointer

from harness.config._profile import Dialect, GatewayProfile, StateRule
from harness.config._redact import redact_headers, scrub
from harness.errors import UpstreamUnavailable
from harness.gateway import _run_budget as run_budget
from harness.gateway import _seam as seam
from harness.gateway._budget import LiveRun
from harness.gateway._livetape import LiveTape
from harness.records._outcome import Exchange, clip
from harness.records._plain import plain
from harness.records._recording import Answer

# Built once: an SSL context per client costs tens of milliseconds, and every check has a client.
TLS_CONTEXT = ssl.create_default_context()
TERMINAL = frozenset({"succeeded", "failed", "canceled", "expired"})


class GatewayTimeout(UpstreamUnavailable):
    """The gateway did not answer within the bound. Some checks count this as the failure."""


@dataclass
class JobResult:
    """A request for an image (or video), followed through the dialect to its end."""

    submit: Answer | None  # the submit's answer, as data
    submit_elapsed: float
    job_id: str | None = None
    status: str = "unknown"  # canonical: queued|running|succeeded|failed|canceled|expired
    body: dict[str, Any] = field(default_factory=dict)  # the final answer (job or sync body)
    polls: list[dict[str, Any]] = field(default_factory=list)
    poll_ids: list[str | None] = field(default_factory=list)
    timed_out: bool = False
    elapsed: float = 0.0
    result_field: str = "result"  # where the dialect puts a finished job's ImagesResponse
    poll_url: str = ""  # where the submit said to poll, when the dialect takes it from the answer

    @property
    def data(self) -> list[dict[str, Any]]:
        """The OpenAI `data[]` of the result, wherever the dialect put it."""
        found = self.images_response.get("data")
        return found if isinstance(found, list) else []

    @property
    def images_response(self) -> dict[str, Any]:
        result = dig(self.body, self.result_field)
        return result if isinstance(result, dict) else self.body

    def to_dict(self) -> dict[str, Any]:
        return plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobResult:
        submit = data.get("submit")
        return cls(**{**data, "submit": Answer.from_dict(submit) if submit else None})


def answer_of(response: httpx.Response, elapsed: float) -> Answer:
    return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                  media_text(response), round(elapsed, 4))


def media_text(response: httpx.Response) -> str:
    """An answer's text for the record: an image or a video is named by type and size only."""
    content_type = response.headers.get("content-type", "")
    if content_type.startswith(("image/", "video/")):
        return f"<{content_type}, {len(response.content)} bytes>"
    return response.text


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def dig(data: Any, dotted: str) -> Any:
    """The field at a dotted path ("result.data"), or at a JSON pointer ("/response/data")."""
    if dotted.startswith("/"):
        return resolve_pointer(data, dotted, None)
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def located(source: str, body: dict[str, Any], response: httpx.Response) -> Any:
    """A dialect source: "header:Name" is a response header, anything else a field of the body."""
    if source.startswith("header:"):
        return response.headers.get(source.removeprefix("header:"))
    return dig(body, source)


def holds(body: dict[str, Any], rule: StateRule) -> bool:
    """Whether every condition of a state rule holds for the body (true is not 1)."""
    for where, wanted in rule.when.items():
        present = has(body, where)
        if isinstance(wanted, dict):
            if present != wanted["present"]:
                return False
            continue
        found = dig(body, where)
        if not present or found != wanted or type(found) is not type(wanted):
            return False
    return True


def has(body: dict[str, Any], where: str) -> bool:
    """Whether the field exists at all (a JSON null counts as present)."""
    parent, _, last = where.rpartition("/") if where.startswith("/") else where.rpartition(".")
    container = dig(body, parent) if parent else body
    return isinstance(container, dict) and last in container


class GatewayClient:
    def __init__(
        self,
        profile: GatewayProfile,
        base_url: str,
        api_key: str,
        record: Callable[[Exchange], None],
        headers: dict[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        route_headers: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.profile = profile
        self.dialect: Dialect = profile.dialect
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.record = record
        self.headers = dict(headers or {})
        self.secrets = secrets
        self.alias_headers = route_headers or {}
        # Set when an async submit was accepted but gave nothing to follow: the gateway may
        # still be talking to the upstream in the background.
        self.unfollowed_work = False
        self.last_answer: Answer | None = None
        self.timeouts = profile.timeouts
        self.http = httpx.Client(timeout=httpx.Timeout(self.timeouts.request, connect=5.0), verify=TLS_CONTEXT,
                                 **seam.client_options())
        # A black-box run: paid requests are charged to the live budget, exchanges taped.
        self.live = LiveRun.from_environ()
        self.tape = LiveTape(Path(self.live.tapes), secrets, self.base_url) if self.live else None

    def close(self) -> None:
        self.http.close()
        if self.tape is not None:
            self.tape.write()

    # -- raw requests -------------------------------------------------------------------------

    def request(self, method: str, path: str, *, key: str | None = None,
                headers: dict[str, str] | None = None, timeout: float | None = None,
                **kwargs: Any) -> httpx.Response:
        url = self.base_url + path
        all_headers = {**self.headers, **(headers or {})}
        auth_key = self.api_key if key is None else key
        if auth_key:
            all_headers.setdefault("Authorization", f"Bearer {auth_key}")
        if self.live is not None:  # before anything is built: a refused request is never sent
            self.live.charge(method, path, kwargs.get("json") or kwargs.get("data"), self.dialect.submit_path)
        request = self.http.build_request(method, url, headers=all_headers, **kwargs)
        # Never more than what is left of the scenario's bound; nothing once the breaker is open
        # (harness/gateway/_run_budget.py).
        nominal = timeout if timeout is not None else self.timeouts.request
        bound = run_budget.clamp(nominal)
        request.extensions["timeout"] = httpx.Timeout(bound, connect=min(5.0, bound)).as_dict()
        exchange = Exchange(
            method=method,
            url=str(request.url),
            request_headers=redact_headers(request.headers.items(), self.secrets),
            request_body=clip(self._body_text(request)),
            path=request.url.raw_path.decode("ascii", errors="replace"),
            form=form_parts(kwargs.get("data"), kwargs.get("files")),
        )
        started = time.monotonic()
        try:
            response = self.send_within(request, bound)
        except httpx.TimeoutException as exc:
            exchange.elapsed = time.monotonic() - started
            exchange.error = f"timeout after {exchange.elapsed:.1f}s"
            self.record(exchange)
            if bound < nominal:  # the scenario's time ran out, not the gateway's bound
                raise run_budget.BudgetSpent(f"{url}: the scenario's bound was spent after {bound:.1f}s of "
                                         f"this request's {nominal:g}s") from exc
            raise GatewayTimeout(f"{url}: no complete answer within {bound:g}s") from exc
        except httpx.HTTPError as exc:
            exchange.elapsed = time.monotonic() - started
            exchange.error = f"{type(exc).__name__}: {exc}"
            self.record(exchange)
            raise UpstreamUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
        exchange.elapsed = time.monotonic() - started
        exchange.status = response.status_code
        exchange.response_headers = redact_headers(response.headers.items(), self.secrets)
        exchange.response_body = clip(scrub(self._response_text(response), self.secrets))
        self.last_answer = answer_of(response, exchange.elapsed)
        self.record(exchange)
        if self.tape is not None:
            self.tape.add(request, response)
        run_budget.record_answer()
        return response

    def still_answering(self) -> bool:
        """The liveness probe of the timeout rule (harness/gateway/_run_budget.py): any HTTP
        answer to a path no gateway serves, 404 included, shows the gateway is alive."""
        try:
            self.http.get(self.base_url + run_budget.PROBE_PATH,
                          timeout=httpx.Timeout(run_budget.PROBE_SECONDS))
        except httpx.HTTPError:
            return False
        return True

    def send_within(self, request: httpx.Request, bound: float) -> httpx.Response:
        """Send and read the whole answer within `bound` seconds of wall clock.

        httpx's timeouts limit each read, so a gateway that trickles a byte a second would
        never trip them; a timer that closes the stream at the deadline does."""
        response = self.http.send(request, stream=True)
        expired = threading.Event()

        def cut() -> None:
            expired.set()
            response.close()

        timer = threading.Timer(bound, cut)
        timer.start()
        try:
            response.read()
        except httpx.HTTPError as exc:
            if expired.is_set():
                raise httpx.ReadTimeout(f"answer not complete within {bound:g}s", request=request) from exc
            raise
        finally:
            timer.cancel()
        if expired.is_set() and not response.is_stream_consumed:
            raise httpx.ReadTimeout(f"answer not complete within {bound:g}s", request=request)
        return response

    @staticmethod
    def _body_text(request: httpx.Request) -> str:
        content_type = request.headers.get("content-type", "")
        if "multipart" in content_type:
            return f"<multipart body, {request.headers.get('content-length', '?')} bytes>"
        return scrub(request.content.decode("utf-8", errors="replace"))

    @staticmethod
    def _response_text(response: httpx.Response) -> str:
        return media_text(response)

    # -- operations ---------------------------------------------------------------------------

    def model_headers(self, model: str | None) -> dict[str, str]:
        """Per-alias headers from the profile (how header-routed gateways pick a provider)."""
        return dict(self.alias_headers.get(model or "", {}))

    def post_image(self, model: str, prompt: str, *, key: str | None = None,
                   **params: Any) -> httpx.Response:
        """One plain (synchronous) image request: where error surfacing is judged, any dialect."""
        body = {"model": model, "prompt": prompt, **params}
        return self.request("POST", "/v1/images/generations", json=body, key=key,
                            headers=self.model_headers(model))

    def generate_image(self, model: str, prompt: str, *, key: str | None = None,
                       **params: Any) -> JobResult:
        body = {"model": model, "prompt": prompt, **params}
        # A custom dialect may submit jobs elsewhere; the built-in ones use OpenAI's route.
        path = self.dialect.submit_path if self.dialect.name == "custom" else "/v1/images/generations"
        return self._submit(path, model, key, json=body)

    def edit_image(self, model: str, prompt: str, image: bytes, *, key: str | None = None,
                   filename: str = "input.png", **params: Any) -> JobResult:
        fields = {"model": model, "prompt": prompt, **{k: str(v) for k, v in params.items()}}
        files = {"image": (filename, image, "image/png")}
        return self._submit("/v1/images/edits", model, key, data=fields, files=files)

    def chat(self, model: str, text: str, *, key: str | None = None,
             **extra: Any) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
        return self.request("POST", "/v1/chat/completions", json=body, key=key,
                            headers=self.model_headers(model))

    def generate_video(self, model: str, prompt: str, *, key: str | None = None,
                       **params: Any) -> JobResult:
        """A video request, followed through the dialect's video jobs to their end."""
        dialect = self.dialect.for_video()
        body = {"model": model, "prompt": prompt, **params}
        result = self._submit(dialect.video_path, model, key, dialect=dialect, jobs=True, json=body)
        if result.job_id is None and result.status == "succeeded":
            result.status = "unknown"  # a video is never complete within its submit: nothing to read
        return result

    def video_content(self, job_id: str, *, key: str | None = None) -> httpx.Response:
        """The finished video's bytes, from the dialect's content route."""
        return self.request("GET", self.dialect.for_video().content_path.format(id=job_id), key=key)

    def cancel(self, job_id: str, *, key: str | None = None) -> httpx.Response:
        """Cancel a job where the dialect has a cancel route (callers check `cancel_path`)."""
        return self.request("POST", self.dialect.for_video().cancel_path.format(id=job_id), key=key)

    def _submit(self, path: str, model: str, key: str | None, *, dialect: Dialect | None = None,
                jobs: bool | None = None, **kwargs: Any) -> JobResult:
        """Submit and follow. Image requests are jobs where the dialect is async; video requests
        always are."""
        dialect = dialect or self.dialect
        jobs = dialect.is_async if jobs is None else jobs
        started = time.monotonic()
        params = dict(dialect.submit_query) if jobs else {}
        headers = {**self.model_headers(model), **(dialect.submit_headers if jobs else {})}
        response = self.request("POST", path, key=key, params=params or None, headers=headers, **kwargs)
        submit_elapsed = time.monotonic() - started
        body = body_of(response)
        body = body if isinstance(body, dict) else {}
        result = JobResult(submit=self.last_answer, submit_elapsed=submit_elapsed, body=body,
                           result_field=dialect.result_field)
        job_id = located(dialect.id_source or dialect.id_field, body, response) if jobs else None
        if jobs and dialect.poll_url_source:
            poll_url = located(dialect.poll_url_source, body, response)
            result.poll_url = poll_url if isinstance(poll_url, str) else ""
        if response.status_code >= 400:
            result.status = "failed"
        elif jobs and isinstance(job_id, str) and job_id:
            result.job_id = job_id
            result.status = self.canonical(body, dialect)
            self.follow(result, key=key, dialect=dialect)
        elif jobs and response.status_code == 202:
            # Accepted, but with nothing to follow: the job is lost to the client.
            result.status = "unknown"
            self.unfollowed_work = True
        else:
            # A complete 2xx answer (the sync dialect, or a job finished within the submit) is a
            # success as far as the gateway says; checks judge its data[] themselves, so a
            # "200 with no images" can never pass for a failure.
            result.status = "succeeded"
            self.unfollowed_work |= jobs and not result.data
        result.elapsed = time.monotonic() - started
        return result

    def canonical(self, body: dict[str, Any], dialect: Dialect | None = None) -> str:
        dialect = dialect or self.dialect
        for rule in dialect.state_rules:
            if holds(body, rule):
                return rule.state
        raw = dig(body, dialect.status_field)
        return dialect.statuses.get(str(raw), "unknown") if raw is not None else "unknown"

    def follow(self, result: JobResult, *, key: str | None = None, dialect: Dialect | None = None) -> JobResult:
        """Poll a job until it is terminal or the profile's job bound passes."""
        assert result.job_id
        dialect = dialect or self.dialect
        deadline = time.monotonic() + self.timeouts.job
        while result.status not in TERMINAL:
            if time.monotonic() >= deadline:
                result.timed_out = True
                break
            time.sleep(self.timeouts.poll_interval)
            response = self.poll(result.job_id, key=key, dialect=dialect, url=result.poll_url)
            body = body_of(response)
            body = body if isinstance(body, dict) else {"_raw": response.text[:200]}
            result.polls.append(body)
            result.poll_ids.append(dig(body, dialect.id_field))
            result.body = body
            if response.status_code >= 400:
                result.status = "failed" if response.status_code != 404 else "unknown"
                break
            result.status = self.canonical(body, dialect)
        return result

    def poll(self, job_id: str, *, key: str | None = None, dialect: Dialect | None = None,
             url: str = "") -> httpx.Response:
        """Read a job: at the URL its submit gave (absolute or relative), else at the poll path."""
        if url:
            path = url.removeprefix(self.base_url) if url.startswith(self.base_url) else url
            if path.startswith("/"):
                return self.request("GET", path, key=key)
        return self.request("GET", (dialect or self.dialect).poll_path.format(id=job_id), key=key)

    def fetch(self, url: str) -> bytes | None:
        """Download an image URL the gateway handed out (bounded like every request).

        None when the URL cannot be fetched: a URL the gateway handed out that does not work
        is the gateway's defect, for the check to report, not a harness error."""
        started = time.monotonic()
        exchange = Exchange("GET", url, {}, "",
                            path=url[len(self.base_url):] if url.startswith(self.base_url + "/") else "")
        try:
            response = self.send_within(self.http.build_request("GET", url), self.timeouts.request)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            exchange.error = f"{type(exc).__name__}: {exc}"
            self.record(exchange)
            return None
        exchange.elapsed = time.monotonic() - started
        exchange.status = response.status_code
        exchange.response_body = self._response_text(response)
        self.record(exchange)
        return response.content


def form_parts(data: Any, files: Any) -> list[list[str]]:
    """A multipart request's parts as curl would send them: text fields, then files by name
    (the bytes are the provider file of that name in cassettes/files/)."""
    if not isinstance(files, dict):
        return []
    parts = [[str(k), str(v)] for k, v in (data or {}).items()]
    for name, (filename, _content, content_type) in files.items():
        parts.append([str(name), f"@cassettes/files/{filename};type={content_type}"])
    return parts
