"""The reference gateway's HTTP surface: OpenAI-style routes, the `jobs` dialect, auth."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from harness.reference.errors import GatewayError
from harness.reference.gateway import OPENAI_IMAGE_FIELDS, Config, ImageRequest, ReferenceGateway, VideoRequest

# The reference's video job states in OpenAI's Videos API words.
VIDEO_STATUSES = {"succeeded": "completed"}


@dataclass
class Job:
    id: str
    owner: str  # fingerprint of the client key that created it
    model: str
    status: str = "queued"
    created_at: int = field(default_factory=lambda: int(time.time()))
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "object": "image_job", "status": self.status,
                                "model": self.model, "created_at": self.created_at,
                                "polling_url": f"/v1/jobs/{self.id}"}
        if self.result is not None:
            body["result"] = self.result
        if self.error is not None:
            body["error"] = self.error
        return body


@dataclass
class VideoJob(Job):
    """A video job: OpenAI's video object, read at /v1/videos/{id} and (jobs dialect) /v1/jobs/{id}."""

    seconds: int | None = None
    size: str | None = None
    task_id: str | None = None  # the provider's task, once submitted
    video_url: str | None = None  # the provider's video, once finished

    def view(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "object": "video",
                                "status": VIDEO_STATUSES.get(self.status, self.status), "model": self.model,
                                "created_at": self.created_at, "polling_url": f"/v1/jobs/{self.id}",
                                "progress": 100 if self.status == "succeeded" else 0}
        if self.seconds is not None:
            body["seconds"] = str(self.seconds)
        if self.size is not None:
            body["size"] = self.size
        if self.error is not None:
            body["error"] = self.error
        return body


class GatewayApp:
    """Binds a ReferenceGateway (or a mutant of it) to HTTP."""

    def __init__(self, gateway: ReferenceGateway) -> None:
        self.gateway = gateway
        self.jobs: dict[str, Job] = {}
        self.spent: dict[str, float] = {}  # client key fingerprint -> what its images cost so far
        self.background: set[asyncio.Task[None]] = set()
        self.app = Starlette(routes=[
            HttpRoute("/health", self.health, methods=["GET"]),
            HttpRoute("/v1/models", self.models, methods=["GET"]),
            HttpRoute("/v1/images/generations", self.images_generations, methods=["POST"]),
            HttpRoute("/v1/images/edits", self.images_edits, methods=["POST"]),
            HttpRoute("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            HttpRoute("/v1/jobs/{job_id}", self.get_job, methods=["GET"]),
            HttpRoute("/v1/jobs/{job_id}/cancel", self.cancel_job, methods=["POST"]),
            HttpRoute("/v1/videos", self.videos_create, methods=["POST"]),
            HttpRoute("/v1/videos/{job_id}", self.get_job, methods=["GET"]),
            HttpRoute("/v1/videos/{job_id}/content", self.video_content, methods=["GET"]),
        ], exception_handlers={GatewayError: self.on_error, HTTPException: self.on_http_error,
                               Exception: self.on_crash})

    # -- plumbing -----------------------------------------------------------------------------

    async def on_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return exc.response()

    async def on_http_error(self, request: Request, exc: Exception) -> Response:
        """Starlette's own 404/405 answers, in the same envelope as everything else."""
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        return GatewayError(exc.status_code, code, str(exc.detail)).response()

    async def on_crash(self, request: Request, exc: Exception) -> Response:
        return GatewayError(500, "internal_error", "the gateway failed unexpectedly").response()

    def client_key(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        key = header.removeprefix("Bearer ").strip()
        if not key or key not in self.gateway.config.client_keys:
            raise GatewayError(401, "invalid_api_key", "missing or unknown API key")
        return hashlib.sha256(key.encode()).hexdigest()

    async def json_body(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise GatewayError(400, "invalid_json", "request body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise GatewayError(400, "invalid_request", "request body must be a JSON object")
        return body

    def image_request(self, fields: dict[str, Any], image: bytes | None = None,
                      image_type: str = "image/png") -> ImageRequest:
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise GatewayError(400, "missing_prompt", "`prompt` is required")
        try:
            n = int(fields.get("n", 1))
        except (TypeError, ValueError) as exc:
            raise GatewayError(400, "invalid_n", "`n` must be an integer") from exc
        if not 1 <= n <= 10:
            raise GatewayError(400, "invalid_n", "`n` must be between 1 and 10")
        size = fields.get("size")
        if size is not None and not isinstance(size, str):
            raise GatewayError(400, "invalid_size", "`size` must be a string like 1024x1024")
        response_format = fields.get("response_format") or "url"
        if response_format not in {"url", "b64_json"}:
            raise GatewayError(400, "invalid_response_format",
                               "`response_format` must be url or b64_json")
        standard = {k: v for k, v in fields.items() if k in OPENAI_IMAGE_FIELDS}
        vendor = {k: v for k, v in fields.items() if k not in OPENAI_IMAGE_FIELDS}
        return ImageRequest(prompt=prompt, n=n, size=size, response_format=response_format,
                            vendor=vendor, openai_body=standard, image=image, image_type=image_type)

    def model_of(self, fields: dict[str, Any]) -> str:
        model = fields.get("model")
        if not isinstance(model, str) or not model:
            raise GatewayError(400, "missing_model", "`model` is required")
        return model

    # -- routes -------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "gateway": "gwconf-reference"})

    async def models(self, request: Request) -> Response:
        self.client_key(request)
        data = [{"id": r.alias, "object": "model", "owned_by": r.provider}
                for r in self.gateway.config.models]
        return JSONResponse({"object": "list", "data": data})

    async def images_generations(self, request: Request) -> Response:
        owner = self.client_key(request)
        fields = await self.json_body(request)
        model = self.model_of(fields)
        routes = self.gateway.routes(model, "image.generate")
        req = self.image_request(fields)

        async def work() -> dict[str, Any]:
            return await self.gateway.with_fallback(routes, lambda r: self.gateway.generate(r, req))

        return await self.answer(request, owner, model, work)

    async def images_edits(self, request: Request) -> Response:
        owner = self.client_key(request)
        try:
            form = await request.form()
        except (MultiPartException, ValueError, KeyError, AssertionError) as exc:
            raise GatewayError(400, "invalid_multipart", f"cannot read the multipart body: {exc}") from exc
        fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("image") or form.get("image[]")
        if upload is None or isinstance(upload, str):
            raise GatewayError(400, "missing_image", "`image` file is required")
        image = await upload.read()
        model = self.model_of(fields)
        routes = self.gateway.routes(model, "image.edit")
        req = self.image_request(fields, image, upload.content_type or "image/png")

        async def work() -> dict[str, Any]:
            return await self.gateway.with_fallback(routes, lambda r: self.gateway.edit(r, req))

        return await self.answer(request, owner, model, work)

    async def chat_completions(self, request: Request) -> Response:
        self.client_key(request)
        body = await self.json_body(request)
        model = self.model_of(body)
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise GatewayError(400, "missing_messages", "`messages` must be a non-empty list")
        routes = self.gateway.routes(model, "chat")
        answer = await self.gateway.with_fallback(routes, lambda r: self.gateway.chat(r, body))
        return JSONResponse(answer)

    async def answer(self, request: Request, owner: str, model: str, work: Any) -> Response:
        """Sync: wait and answer. `?async=true` (the jobs dialect): 202 and a job to poll."""
        work = self.charged(owner, work)
        if request.query_params.get("async", "").lower() != "true":
            return JSONResponse(await work())
        return JSONResponse(self.start_job(owner, model, work).view(), status_code=202)

    def start_job(self, owner: str, model: str, work: Any) -> Job:
        job = Job(id=self.new_job_id(), owner=owner, model=model)
        self.jobs[job.id] = job
        self.spawn(self.run_job(job, work))
        return job

    def spawn(self, work: Any) -> None:
        """Run a job's work in the background, keeping a reference so it is not collected."""
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def charged(self, owner: str, work: Any) -> Any:
        """`work` refused once the key's budget is spent, and charged what its answer costs."""
        budget = self.gateway.config.key_budget
        if budget is not None and self.spent.get(owner, 0.0) >= budget:
            raise GatewayError(429, "budget_exceeded", "this key has spent its budget")

        async def run() -> dict[str, Any]:
            result = await work()
            cost = result.get("cost", {}).get("usd", 0.0)
            self.spent[owner] = self.spent.get(owner, 0.0) + float(cost)
            return result

        return run

    async def run_job(self, job: Job, work: Any) -> None:
        job.status = "in_progress"
        result, error = None, None
        try:
            result = await work()
        except GatewayError as exc:
            error = exc.envelope()["error"]
        except Exception:
            error = {"code": "internal_error", "message": "the gateway failed unexpectedly"}
        if job.status == "canceled":  # the client canceled it: what its task did since is no news
            return
        job.result, job.error = result, error  # type: ignore[assignment]
        job.status = "failed" if error is not None else "succeeded"

    def new_job_id(self) -> str:
        return "img_" + secrets.token_urlsafe(16)

    async def get_job(self, request: Request) -> Response:
        return JSONResponse(self.own_job(request).view())

    def own_job(self, request: Request) -> Job:
        owner = self.client_key(request)
        job = self.jobs.get(request.path_params["job_id"])
        if job is None or job.owner != owner:
            raise GatewayError(404, "job_not_found", "no such job")
        return job

    # -- video ----------------------------------------------------------------------------------

    def video_request(self, fields: dict[str, Any]) -> VideoRequest:
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise GatewayError(400, "missing_prompt", "`prompt` is required")
        seconds = fields.get("seconds")
        try:
            seconds = None if seconds is None else int(seconds)
        except (TypeError, ValueError) as exc:
            raise GatewayError(400, "invalid_seconds", "`seconds` must be a whole number") from exc
        size = fields.get("size")
        if size is not None and not isinstance(size, str):
            raise GatewayError(400, "invalid_size", "`size` must be a string like 1280x720")
        vendor = {k: v for k, v in fields.items() if k not in ("model", "prompt", "seconds", "size")}
        return VideoRequest(prompt=prompt, seconds=seconds, size=size, vendor=vendor)

    async def videos_create(self, request: Request) -> Response:
        """OpenAI's Videos API create: always a job (the jobs dialect polls it at /v1/jobs/{id})."""
        owner = self.client_key(request)
        fields = await self.json_body(request)
        model = self.model_of(fields)
        route = self.gateway.routes(model, "video.generate")[0]
        req = self.video_request(fields)
        job = VideoJob(id=self.new_video_id(), owner=owner, model=model, seconds=req.seconds, size=req.size)
        job.task_id = await self.gateway.submit_video(route, req)
        self.jobs[job.id] = job
        self.spawn(self.run_video(job))
        return JSONResponse(job.view())

    async def run_video(self, job: VideoJob) -> None:
        assert job.task_id is not None

        async def work() -> dict[str, Any]:
            job.video_url = await self.gateway.finish_video(job.task_id or "")
            return {}

        await self.run_job(job, work)

    def new_video_id(self) -> str:
        return "video_" + secrets.token_urlsafe(16)

    async def video_content(self, request: Request) -> Response:
        job = self.own_job(request)
        if not isinstance(job, VideoJob):
            raise GatewayError(404, "job_not_found", "no such video")
        if job.status != "succeeded" or not job.video_url:
            raise GatewayError(409, "video_not_ready", f"the video is {job.view()['status']}")
        return Response(await self.gateway.fetch_bytes(job.video_url), media_type="video/mp4")

    async def cancel_job(self, request: Request) -> Response:
        """Cancel a video job: the provider's task first, and only if the provider agrees."""
        job = self.own_job(request)
        if not isinstance(job, VideoJob) or job.task_id is None or job.status in ("succeeded", "failed"):
            raise GatewayError(409, "not_cancelable", "only a video job that has not ended can be canceled")
        await self.gateway.cancel_video(job.task_id)
        job.status = "canceled"
        return JSONResponse(job.view())


def build_app(config: dict[str, Any], gateway_cls: type[ReferenceGateway] = ReferenceGateway,
              app_cls: type[GatewayApp] = GatewayApp) -> GatewayApp:
    return app_cls(gateway_cls(Config.from_dict(config)))
