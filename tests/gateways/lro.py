"""A gateway with Google-style long-running operations, for the custom dialect's tests.

`Prefer: respond-async` makes an image request an operation: 202, `Location: /v1/operations/ID`
and `{"name": "operations/ID", "done": false}`; the operation ends `done: true` with either
`response` (the ImagesResponse) or `error` ({code, message}). Without the header it answers
synchronously. The broken variant reports a failed operation as done with an empty response.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.reference.app import GatewayApp, Job
from harness.reference.errors import GatewayError


class OperationsGateway(GatewayApp):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app.router.routes.insert(0, Route("/v1/operations/{job_id}", self.get_operation, methods=["GET"]))

    async def answer(self, request: Request, owner: str, model: str, work: Any) -> Response:
        if request.headers.get("prefer", "").lower() != "respond-async":
            return JSONResponse(await work())
        job = self.start_job(owner, model, work)
        return JSONResponse(self.operation(job), status_code=202, headers={"Location": f"/v1/operations/{job.id}"})

    def operation(self, job: Job) -> dict[str, Any]:
        body: dict[str, Any] = {"name": f"operations/{job.id}", "done": job.status in ("succeeded", "failed"),
                                "metadata": {"model": job.model, "createTime": job.created_at}}
        if job.status == "succeeded":
            body["response"] = job.result
        elif job.status == "failed":
            body["error"] = job.error
        return body

    async def get_operation(self, request: Request) -> Response:
        owner = self.client_key(request)
        job = self.jobs.get(request.path_params["job_id"])
        if job is None or job.owner != owner:
            raise GatewayError(404, "not_found", "no such operation")
        return JSONResponse(self.operation(job))


class BrokenOperationsGateway(OperationsGateway):
    """Reports a failed operation as done with an empty response: the failure vanishes."""

    def operation(self, job: Job) -> dict[str, Any]:
        body = super().operation(job)
        if "error" in body:
            body["response"] = {"created": job.created_at, "data": []}
            del body["error"]
        return body
