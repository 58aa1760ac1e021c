"""A gateway with Replicate-style predictions and `Prefer: wait`, for the custom dialect's tests.

`Prefer: wait=N` makes an image request a prediction: the gateway holds the request up to N
seconds and answers 201 with `{"id", "status", "output", "error", "urls": {"get": ...}}`, finished
if the work finished in time, else `starting`/`processing` with the URL to poll. Without the
header it answers synchronously. The broken variant says `succeeded` before the work is done.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.reference.app import GatewayApp, Job
from harness.reference.errors import GatewayError

STATUSES = {"queued": "starting", "in_progress": "processing"}
WAIT_CAP_SECONDS = 60.0  # Replicate's own cap on `Prefer: wait`


class PredictionsGateway(GatewayApp):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app.router.routes.insert(0, Route("/v1/predictions/{job_id}", self.get_prediction, methods=["GET"],
                                               name="prediction"))

    async def answer(self, request: Request, owner: str, model: str, work: Any) -> Response:
        prefer = request.headers.get("prefer", "").lower()
        if not prefer.startswith("wait"):
            return JSONResponse(await work())
        seconds = float(prefer.partition("=")[2] or WAIT_CAP_SECONDS)
        job = self.start_job(owner, model, work)
        deadline = asyncio.get_running_loop().time() + min(seconds, WAIT_CAP_SECONDS)
        while job.status not in ("succeeded", "failed") and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        return JSONResponse(self.prediction(job, request), status_code=201)

    def prediction(self, job: Job, request: Request) -> dict[str, Any]:
        return {"id": job.id, "model": job.model, "status": STATUSES.get(job.status, job.status),
                "output": job.result, "error": job.error,
                "urls": {"get": str(request.url_for("prediction", job_id=job.id))}}

    async def get_prediction(self, request: Request) -> Response:
        owner = self.client_key(request)
        job = self.jobs.get(request.path_params["job_id"])
        if job is None or job.owner != owner:
            raise GatewayError(404, "not_found", "no such prediction")
        return JSONResponse(self.prediction(job, request))


class BrokenPredictionsGateway(PredictionsGateway):
    """Says `succeeded` as soon as the wait is over, finished or not, failed or not."""

    def prediction(self, job: Job, request: Request) -> dict[str, Any]:
        return {**super().prediction(job, request), "status": "succeeded", "error": None}
