"""Replicate: predictions on official models, polling, cancel and `Prefer: wait`."""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import string

from jsonschema import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harness.config._cassette import Interaction
from harness.upstream.engine import MockUpstream, ParsedRequest, Provider, Reply, Task
from harness.upstream.validation import missing_fields

PREDICTION_PATH = re.compile(r"^/v1/predictions/(?P<id>[a-z0-9]+)$")
MODEL_PATH = re.compile(r"^/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)/predictions$")
ID_ALPHABET = string.ascii_lowercase + string.digits


class Replicate(Provider):
    name = "replicate"
    public_hosts = ("https://api.replicate.com",)

    def new_id(self) -> str:
        return "".join(secrets.choice(ID_ALPHABET) for _ in range(26))

    def poll_id(self, method: str, path: str) -> str | None:
        match = PREDICTION_PATH.match(path)
        return match["id"] if match and method == "GET" else None

    def model_of(self, req: ParsedRequest) -> str | None:
        match = MODEL_PATH.match(req.path)
        if match:
            return f"{match['owner']}/{match['name']}"
        version = req.json().get("version")
        return version.split(":")[0] if isinstance(version, str) else None

    def error(self, status: int, code: str, message: str, path: str = "") -> Reply:
        body = {"title": code, "detail": message, "status": status}
        return Reply(status, json.dumps(body).encode(), media_type="application/problem+json")

    def invalid_request(self, req: ParsedRequest, error: ValidationError) -> Reply:
        """422 "Input validation failed" with invalid_fields (openai_replicate.md E.7, S25)."""
        field = ".".join(str(p) for p in error.absolute_path) or "(root)"
        missing = missing_fields(error)
        description = f"{missing[0]} is required" if missing else error.message
        kind = "required" if missing else str(error.validator)
        body = {"detail": f"- {field}: {description}\n", "status": 422, "title": "Input validation failed",
                "invalid_fields": [{"type": kind, "field": field, "description": description}]}
        return Reply(422, json.dumps(body).encode(), media_type="application/problem+json")

    def unknown_route(self, req: ParsedRequest) -> Reply:
        return self.error(404, "Not found", "The requested resource could not be found.")

    def unknown_model(self, req: ParsedRequest, model: str | None) -> Reply:
        return self.error(404, "Not found", "The requested resource could not be found.")

    def wrong_endpoint(self, req: ParsedRequest, cassette: object) -> Reply:
        return self.unknown_route(req)

    def invalid_key(self, req: ParsedRequest) -> Reply:
        return self.error(401, "Unauthenticated", "You did not pass a valid authentication token")

    def unknown_task(self, task_id: str) -> Reply:
        return self.error(404, "Not found", "The requested resource could not be found.")

    def submit_reply(self, req: ParsedRequest, task: Task) -> Interaction:
        # `Prefer: wait` holds the request until the prediction is done; the mock has it done.
        if req.headers.get("prefer", "").startswith("wait"):
            return dataclasses.replace(task.final(), status=201)
        return task.cassette.submit

    def as_canceled(self, reply: Reply) -> Reply:
        body = json.loads(reply.body)
        body.update(status="canceled", output=None)
        return Reply(200, json.dumps(body).encode(), reply.headers, reply.media_type)

    def extra_routes(self, mock: MockUpstream) -> list[Route]:
        async def cancel(request: Request) -> Response:
            task = mock.get_task(request.path_params["prediction_id"])
            if task is None:
                reply = self.unknown_task(request.path_params["prediction_id"])
                return Response(reply.body, status_code=reply.status, media_type=reply.media_type)
            task.canceled = True
            last = json.loads(mock.render(task.cassette.polls[-1], task.id, task.cassette).body)
            last.update(status="canceled", output=None)
            return Response(json.dumps(last), media_type="application/json")

        return [Route("/v1/predictions/{prediction_id}/cancel", cancel, methods=["POST"])]
