"""`gwconf load`: N jobs through the gateway, C in flight, each followed to its end, then judged.

Where job stores lose jobs and ids collide is under concurrent load, which the catalogue never
creates. The mocks run as for `gwconf run` (the gateway is started from its profile and pointed at
them), with one difference: every result URL they answer carries the job's marker token, and the
PNG behind it names that token (upstream/tagging.py). So each job's result is judged by its bytes:
a result from another job, or none, is a wrong result.

Then the same requests go straight to the mock, with the same concurrency: the difference of the
latency percentiles is what the gateway adds. Every request, poll loop and the whole run are bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.config._profile import GatewayProfile, ModelRoute
from harness.errors import ConfigError
from harness.gateway._session import Session, open_session
from harness.gateway.client import TERMINAL, dig
from harness.paths import CASSETTES_DIR
from harness.upstream._markers import Marker, new_token
from harness.upstream.dashscope import ASYNC_ONLY_IMAGE_MODELS
from harness.upstream.server import DASHSCOPE_REGIONS
from harness.upstream.tagging import png_tag

Job = Callable[["JobRecord"], Awaitable[None]]  # one job's work; it records its fate on the record
SHARD_CONNECTIONS = 16
# A client under load polls about twice a second (the replicate SDK's default interval); at the
# profile's test cadence a thousand clients would poll the gateway 20,000 times a second.
POLL_INTERVAL = 0.5
MAX_POLL_INTERVAL = 2.0
CHECK_ID = "LOAD-001"  # the marker's check id: the mock tags results with the marker's token
DASHSCOPE_SYNTHESIS = "/api/v1/services/aigc/text2image/image-synthesis"
DASHSCOPE_MULTIMODAL = "/api/v1/services/aigc/multimodal-generation/generation"


@dataclass
class LoadOptions:
    profile: Path
    jobs: int
    concurrency: int
    out: Path
    model: str | None = None  # the alias to load; default: the profile's DashScope image model
    bound: float = 60.0  # seconds a job may take, from its submit to a final state
    poll_interval: float = POLL_INTERVAL
    direct: bool = True  # also send the same requests straight to the mock (added latency)
    cassettes: Path = CASSETTES_DIR


@dataclass
class JobRecord:
    """One job's fate: `succeeded`, `failed` (a final failure or refusal) or `lost`."""

    token: str
    status: str = "lost"
    job_id: str | None = None
    latency: float | None = None
    wrong: str | None = None  # why the result is not this job's bytes
    error: str | None = None
    requests: list[float] = field(default_factory=list)  # each HTTP request's latency (submit, polls)
    http: Any = None  # the driver's client this job uses
    last: str = "not submitted"  # the last status the job was seen in

    def timed(self, response: httpx.Response) -> httpx.Response:
        self.requests.append(response.elapsed.total_seconds())
        return response


@dataclass
class Tally:
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    duplicate_ids: int = 0
    wrong_results: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    request_p50: float | None = None  # per HTTP request (a submit or a poll), what added latency compares
    request_p95: float | None = None
    request_p99: float | None = None
    elapsed: float = 0.0
    examples: list[str] = field(default_factory=list)  # a few reasons, for the reader


def tally(records: list[JobRecord], elapsed: float) -> Tally:
    ids = Counter(r.job_id for r in records if r.job_id)
    latencies = sorted(r.latency for r in records if r.status == "succeeded" and r.latency is not None)
    t = Tally(submitted=len(records), completed=sum(r.status == "succeeded" for r in records),
              failed=sum(r.status == "failed" for r in records), lost=sum(r.status == "lost" for r in records),
              duplicate_ids=sum(n - 1 for n in ids.values() if n > 1),
              wrong_results=sum(r.wrong is not None for r in records), elapsed=round(elapsed, 3))
    t.p50, t.p95, t.p99 = (percentile(latencies, q) for q in (50, 95, 99))
    each = sorted(x for r in records for x in r.requests)
    t.request_p50, t.request_p95, t.request_p99 = (percentile(each, q) for q in (50, 95, 99))
    reasons = Counter(r.wrong or r.error or "" for r in records if r.wrong or r.error or r.status != "succeeded")
    t.examples = [f"{n} x {reason or 'no final state within the bound'}" for reason, n in reasons.most_common(5)]
    return t


def percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 4)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 4)


def pick_route(profile: GatewayProfile, alias: str | None) -> ModelRoute:
    """The alias to load: the given one, else DashScope's async-only model for an async dialect
    (jobs are what job stores lose), else the first DashScope image model, else any image model."""
    routes = profile.routes_for("image.generate")
    if alias is not None:
        for route in routes:
            if route.alias == alias:
                return route
        raise ConfigError(f"{profile.path}: no image.generate model with alias {alias!r}")
    dashscope = [r for r in routes if r.provider == "dashscope"]
    task_models = [r for r in dashscope if r.upstream_model in ASYNC_ONLY_IMAGE_MODELS]
    sync_models = [r for r in dashscope if r.upstream_model not in ASYNC_ONLY_IMAGE_MODELS]
    ordered = (task_models + sync_models) if profile.dialect.is_async else (sync_models + task_models)
    chosen = ordered or routes
    if not chosen:
        raise ConfigError(f"{profile.path}: claims no image.generate model to load")
    return chosen[0]


def judge_result(body: dict[str, Any], token: str, fetched: dict[str, bytes]) -> str | None:
    """None when the job's result is the bytes the mock made for this job; else why not."""
    data = body.get("data") if isinstance(body.get("data"), list) else None
    if not data:
        return "no data[] in the result"
    item = data[0] if isinstance(data[0], dict) else {}
    if item.get("b64_json"):
        try:
            blob = base64.b64decode(item["b64_json"])
        except ValueError:
            return "b64_json is not base64"
    elif isinstance(item.get("url"), str) and item["url"] in fetched:
        blob = fetched[item["url"]]
    else:
        return "no url or b64_json in data[0]"
    tag = png_tag(blob)
    if tag != token:
        return "another job's image" if tag else "an image the mock did not make for this job"
    return None


class Driver:
    """Runs jobs with at most C in flight, on one async client."""

    def __init__(self, concurrency: int, bound: float, poll_interval: float) -> None:
        self.bound = bound
        self.poll_interval = poll_interval
        # httpx's pool scans every connection it holds on each request: one client with 1000
        # connections spends most of a run there. Many small pools, a job on each in turn.
        shards = max(1, -(-concurrency // SHARD_CONNECTIONS))
        limits = httpx.Limits(max_connections=2 * SHARD_CONNECTIONS, max_keepalive_connections=SHARD_CONNECTIONS)
        self.clients = [httpx.AsyncClient(limits=limits, trust_env=False,
                                          timeout=httpx.Timeout(bound, connect=min(bound, 30.0)))
                        for _ in range(shards)]
        self.concurrency = concurrency
        self.gate = asyncio.Semaphore(concurrency)

    async def run(self, count: int, job: Job) -> tuple[list[JobRecord], float]:
        records = [JobRecord(new_token(), http=self.clients[i % len(self.clients)]) for i in range(count)]
        started = time.monotonic()

        async def one(record: JobRecord) -> None:
            async with self.gate:
                begun = time.monotonic()
                try:
                    await asyncio.wait_for(job(record), self.bound)
                except TimeoutError:
                    record.status = "lost"
                    record.error = f"no final state within {self.bound:g}s (last seen: {record.last})"
                except httpx.TimeoutException as exc:
                    record.status, record.error = "lost", f"timeout: {type(exc).__name__}"
                except httpx.HTTPError as exc:
                    record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"[:200]
                if record.status == "succeeded":
                    record.latency = time.monotonic() - begun

        # The whole run is bounded too: every job's own bound, plus its wait for a slot.
        overall = self.bound * (count / self.concurrency + 1) + 30
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(one(r) for r in records)), overall)
        return records, time.monotonic() - started

    def poll_waits(self) -> Iterator[float]:
        """The waits between one job's polls: the interval, then 1.5 times longer up to 2 s, as
        SDKs back off. Without it a thousand clients polling a saturated gateway only slow it."""
        wait = self.poll_interval
        while True:
            yield wait
            wait = min(wait * 1.5, MAX_POLL_INTERVAL)

    @staticmethod
    async def fetch_all(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, bytes]:
        data = body.get("data") if isinstance(body.get("data"), list) else []
        urls = [d["url"] for d in data[:1] if isinstance(d, dict) and isinstance(d.get("url"), str)]
        fetched = {}
        for url in urls:
            with contextlib.suppress(httpx.HTTPError, httpx.InvalidURL):
                response = await http.get(url)
                if response.status_code == 200:
                    fetched[url] = response.content
        return fetched

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


def through_gateway(driver: Driver, session: Session, route: ModelRoute) -> Job:
    """A job as a client sends it: submit in the profile's dialect, poll to a final state, judge."""
    profile, env = session.profile, session.env
    dialect = profile.dialect
    base = env.gateway_url.rstrip("/")
    headers = {**env.headers, **env.route_headers.get(route.alias, {}), "Authorization": f"Bearer {env.api_key}"}
    submit_path = dialect.submit_path if dialect.name == "custom" else "/v1/images/generations"

    def canonical(body: dict[str, Any]) -> str:
        raw = dig(body, dialect.status_field)
        return dialect.statuses.get(str(raw), str(raw)) if raw is not None else "unknown"

    async def job(record: JobRecord) -> None:
        body = {"model": route.alias, "prompt": f"load test [{Marker(CHECK_ID, record.token)}]"}
        params = dialect.submit_query if dialect.is_async else None
        response = record.timed(await record.http.post(base + submit_path, json=body, params=params, headers=headers))
        answer = json_object(response)
        if response.status_code >= 400:
            record.status, record.error = "failed", f"submit answered {response.status_code}"
            return
        record.last = "submitted"
        if dialect.is_async and response.status_code == 202:
            job_id = dig(answer, dialect.id_field)
            if not isinstance(job_id, str) or not job_id:
                record.status, record.error = "lost", "accepted with no job id"
                return
            record.job_id = job_id
            status = canonical(answer)
            waits = driver.poll_waits()
            while status not in TERMINAL:
                await asyncio.sleep(next(waits))
                poll = record.timed(await get_again_once(record.http, base + dialect.poll_path.format(id=job_id),
                                                         headers))
                if poll.status_code == 404:
                    record.status, record.error = "lost", "the job vanished (404 on poll)"
                    return
                if poll.status_code >= 400:
                    record.status, record.error = "failed", f"poll answered {poll.status_code}"
                    return
                answer = json_object(poll)
                status = record.last = canonical(answer)
            if status != "succeeded":
                code = dig(answer, "error.code")
                record.status, record.error = "failed", f"job ended {status}" + (f" ({code})" if code else "")
                return
            result = dig(answer, dialect.result_field)
            answer = result if isinstance(result, dict) else answer
        record.status = "succeeded"
        record.wrong = judge_result(answer, record.token, await driver.fetch_all(record.http, answer))

    return job


def straight_to_mock(driver: Driver, session: Session, route: ModelRoute) -> Job | None:
    """The same work sent to the DashScope mock directly (None for another provider: no baseline)."""
    if route.provider != "dashscope":
        return None
    name = next((n for n, r in DASHSCOPE_REGIONS.items() if r == (route.region or "cn-beijing")), "dashscope")
    base = session.upstreams.urls[name]
    headers = {"Authorization": f"Bearer {session.env.provider_keys.get(name, '')}"}
    task = route.upstream_model in ASYNC_ONLY_IMAGE_MODELS

    async def job(record: JobRecord) -> None:
        prompt = f"load test [{Marker(CHECK_ID, record.token)}]"
        if task:
            body = {"model": route.upstream_model, "input": {"prompt": prompt}, "parameters": {"n": 1}}
            submitted = record.timed(await record.http.post(base + DASHSCOPE_SYNTHESIS, json=body,
                                                            headers={**headers, "X-DashScope-Async": "enable"}))
            task_id = dig(json_object(submitted), "output.task_id")
            status = "PENDING"
            waits = driver.poll_waits()
            while isinstance(task_id, str) and status not in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
                await asyncio.sleep(next(waits))
                polled = record.timed(await get_again_once(record.http, f"{base}/api/v1/tasks/{task_id}", headers))
                status = dig(json_object(polled), "output.task_status")
            record.status = "succeeded" if status == "SUCCEEDED" else "failed"
        else:
            body = {"model": route.upstream_model,
                    "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]}, "parameters": {"n": 1}}
            answered = record.timed(await record.http.post(base + DASHSCOPE_MULTIMODAL, json=body, headers=headers))
            record.status = "succeeded" if answered.status_code == 200 else "failed"

    return job


async def get_again_once(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    """A poll, sent again once if the server closed the kept-alive connection as it was reused
    (a GET is safe to repeat; a submit is not, and is never repeated)."""
    try:
        return await http.get(url, headers=headers)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        return await http.get(url, headers=headers)


def json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def raise_fd_limit(wanted: int) -> None:
    """C connections need C descriptors on each side; the default soft limit is often 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted)) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def drive(session: Session, route: ModelRoute, options: LoadOptions) -> tuple[Tally, Tally | None]:
    driver = Driver(options.concurrency, options.bound, options.poll_interval)
    try:
        # The mock alone first: afterwards it may still be busy with what the gateway left behind.
        direct_job = straight_to_mock(driver, session, route) if options.direct else None
        direct = None
        if direct_job is not None:
            direct = tally(*await driver.run(options.jobs, direct_job))
        gateway = tally(*await driver.run(options.jobs, through_gateway(driver, session, route)))
        return gateway, direct
    finally:
        await driver.close()


def added(gateway: Tally, direct: Tally | None, name: str) -> float | None:
    ours, theirs = getattr(gateway, name), getattr(direct, name) if direct else None
    return round(ours - theirs, 4) if ours is not None and theirs is not None else None


def run_load(options: LoadOptions) -> dict[str, Any]:
    """Run the load against the profile's gateway; return the report document (also written)."""
    if options.jobs < 1 or options.concurrency < 1:
        raise ConfigError("--jobs and --concurrency must be at least 1")
    raise_fd_limit(4 * options.concurrency + 256)
    # A gateway whose config template takes an upstream timeout (the reference's does) gets the
    # load's bound: the mocks share this machine with the load, and a timeout of a couple of
    # seconds would measure them rather than the gateway.
    with tempfile.TemporaryDirectory(prefix="gwconf-load-") as tmp, open_session(
            options.profile, options.cassettes, Path(tmp),
            template_vars={"upstream_timeout": options.bound}) as session:
        route = pick_route(session.profile, options.model)
        for mock in session.upstreams.mocks.values():
            mock.tag_results = True
        gateway, direct = asyncio.run(drive(session, route, options))
        profile = session.profile
    document = {
        "gateway": {"name": profile.name, "version": profile.raw.get("version"), "profile": str(options.profile),
                    "dialect": profile.dialect.name},
        "model": {"alias": route.alias, "provider": route.provider, "upstream_model": route.upstream_model},
        "jobs": options.jobs, "concurrency": options.concurrency, "bound_seconds": options.bound,
        "poll_interval_seconds": options.poll_interval, "machine": machine(),
        "through_gateway": asdict(gateway),
        "direct_to_mock": asdict(direct) if direct else None,
        # Per request: a job's end-to-end time through a gateway depends on how often it polls the
        # provider, which is its own business; what it adds to each request is the comparable figure.
        "added_latency": {q: added(gateway, direct, f"request_{q}") for q in ("p50", "p95", "p99")},
        "verdict": "pass" if gateway.lost == gateway.duplicate_ids == gateway.wrong_results == gateway.failed == 0
        else "fail",
    }
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "load.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return document


def print_load(document: dict[str, Any], console: Any) -> None:
    """The table a person reads; the JSON line (printed by the CLI) is for machines."""
    from rich.table import Table

    gateway, direct = document["through_gateway"], document["direct_to_mock"] or {}
    table = Table(title=f"gwconf load: {document['gateway']['name']}, {document['model']['alias']}, "
                        f"{document['jobs']} jobs, {document['concurrency']} in flight")
    table.add_column("")
    table.add_column("through the gateway", justify="right")
    table.add_column("straight to the mock", justify="right")
    table.add_column("added", justify="right")
    for name in ("submitted", "completed", "failed", "lost", "duplicate_ids", "wrong_results"):
        table.add_row(name.replace("_", " "), str(gateway[name]), str(direct.get(name, "")), "")
    for name in ("p50", "p95", "p99"):
        table.add_row(f"job latency {name}", seconds(gateway[name]), seconds(direct.get(name)), "")
    for name in ("p50", "p95", "p99"):
        table.add_row(f"request latency {name}", seconds(gateway[f"request_{name}"]),
                      seconds(direct.get(f"request_{name}")), seconds(document["added_latency"][name]))
    table.add_row("elapsed", seconds(gateway["elapsed"]), seconds(direct.get("elapsed")), "")
    console.print(table)
    for example in gateway["examples"]:
        console.print(f"  {example}")


def seconds(value: float | None) -> str:
    return "" if value is None else f"{value * 1000:.1f} ms" if abs(value) < 1 else f"{value:.2f} s"


LOCUSTFILE = '''"""Generated by `gwconf load --locustfile` for gateway profile {profile}.

Distributed load on locust (its master/worker mode): each user submits a job for {alias} in the
gateway's {dialect} dialect and follows it to a final state. A job that vanishes, fails, reuses an
id (seen by this worker) or does not end within the bound is reported as a locust failure.
The client key comes from GWCONF_LOAD_KEY. Result bytes are not judged here: `gwconf load` does
that against its own tagged mocks.
"""

import json
import os
import time

from locust import HttpUser, task

ALIAS = {alias_json}
SUBMIT_PATH = {submit_json}
SUBMIT_QUERY = {query_json}
POLL_PATH = {poll_json}
ID_FIELD = {id_json}
STATUS_FIELD = {status_json}
STATUSES = {statuses_json}
ASYNC = {is_async}
HEADERS = {headers_json}
BOUND = {bound}
POLL_INTERVAL = {poll_interval}
SEEN_IDS = set()


def dig(data, dotted):
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


class GatewayJob(HttpUser):
    @task
    def job(self):
        headers = {{**HEADERS, "Authorization": "Bearer " + os.environ.get("GWCONF_LOAD_KEY", "")}}
        body = {{"model": ALIAS, "prompt": "locust load"}}
        started = time.monotonic()
        with self.client.post(SUBMIT_PATH, json=body, params=SUBMIT_QUERY if ASYNC else None, headers=headers,
                              name="submit", catch_response=True, timeout=BOUND) as submitted:
            if submitted.status_code >= 400:
                submitted.failure("submit answered %d" % submitted.status_code)
                return
            if not ASYNC or submitted.status_code != 202:
                return
            job_id = dig(submitted.json(), ID_FIELD)
            if not job_id:
                submitted.failure("accepted with no job id")
                return
            if job_id in SEEN_IDS:
                submitted.failure("duplicate job id " + job_id)
            SEEN_IDS.add(job_id)
        status = None
        while time.monotonic() - started < BOUND:
            time.sleep(POLL_INTERVAL)
            with self.client.get(POLL_PATH.format(id=job_id), headers=headers, name="poll",
                                 catch_response=True, timeout=BOUND) as polled:
                if polled.status_code >= 400:
                    polled.failure("job lost or failed: poll answered %d" % polled.status_code)
                    return
                raw = dig(polled.json(), STATUS_FIELD)
                status = STATUSES.get(str(raw), str(raw))
                if status in ("succeeded", "failed", "canceled", "expired"):
                    if status != "succeeded":
                        polled.failure("job ended " + status)
                    return
        self.environment.events.request.fire(request_type="JOB", name="lost", response_time=BOUND * 1000,
                                             response_length=0, exception=Exception("no final state"),
                                             context={{}})
'''


def write_locustfile(profile_path: Path, target: Path, alias: str | None) -> None:
    """A locustfile that runs the same jobs as `gwconf load`, for locust's distributed mode."""
    from harness.config._profile import load_profile

    profile = load_profile(profile_path)
    route = pick_route(profile, alias)
    dialect = profile.dialect
    headers = {k: v for k, v in {**profile.headers, **route.headers}.items() if "{" not in v}
    text = LOCUSTFILE.format(
        profile=profile_path, alias=route.alias, dialect=dialect.name, alias_json=json.dumps(route.alias),
        submit_json=json.dumps(dialect.submit_path if dialect.name == "custom" else "/v1/images/generations"),
        query_json=json.dumps(dialect.submit_query), poll_json=json.dumps(dialect.poll_path),
        id_json=json.dumps(dialect.id_field), status_json=json.dumps(dialect.status_field),
        statuses_json=json.dumps(dialect.statuses), is_async=dialect.is_async, headers_json=json.dumps(headers),
        bound=profile.timeouts.job, poll_interval=profile.timeouts.poll_interval)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write the locustfile ({exc.strerror})") from exc


def machine() -> str:
    """What the figures were measured on (they mean little without it)."""
    return (f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()}, "
            f"{platform.python_implementation()} {platform.python_version()}")
