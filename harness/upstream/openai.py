"""OpenAI: images (generations, edits), chat completions, and the Videos job lifecycle."""

from __future__ import annotations

import json
import re
import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.upstream.engine import MockUpstream, ParsedRequest, Provider, Reply

VIDEO_PATH = re.compile(r"^/v1/videos/(?P<id>video_[0-9a-f]+)$")
ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404:
               "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error"}


class OpenAI(Provider):
    name = "openai"

    def new_id(self) -> str:
        return "video_" + secrets.token_hex(16)

    def poll_id(self, method: str, path: str) -> str | None:
        match = VIDEO_PATH.match(path)
        return match["id"] if match and method == "GET" else None

    def model_of(self, req: ParsedRequest) -> str | None:
        model = req.json().get("model")
        return model if isinstance(model, str) else None

    def error(self, status: int, code: str, message: str, path: str = "") -> Reply:
        kind = ERROR_TYPES.get(status, "invalid_request_error")
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return Reply(status, json.dumps(body).encode())

    def unknown_route(self, req: ParsedRequest) -> Reply:
        return self.error(404, "unknown_url", f"Invalid URL ({req.method} {req.path})")

    def unknown_model(self, req: ParsedRequest, model: str | None) -> Reply:
        return self.error(
            404, "model_not_found",
            f"The model `{model}` does not exist or you do not have access to it.",
        )

    def wrong_endpoint(self, req: ParsedRequest, cassette: object) -> Reply:
        return self.error(400, "invalid_request_error",
                          f"Invalid URL ({req.method} {req.path}) for this model")

    def invalid_key(self, req: ParsedRequest) -> Reply:
        return self.error(401, "invalid_api_key", "Incorrect API key provided.")

    def unknown_task(self, task_id: str) -> Reply:
        return self.error(404, "video_not_found", f"Video with id '{task_id}' not found.")

    def extra_routes(self, mock: MockUpstream) -> list[Route]:
        async def models(request: Request) -> Response:
            data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "gwconf"}
                    for m in sorted(mock.catalogue)]
            return JSONResponse({"object": "list", "data": data})

        async def video_content(request: Request) -> Response:
            task = mock.get_task(request.path_params["video_id"])
            if task is None:
                reply = self.unknown_task(request.path_params["video_id"])
                return Response(reply.body, status_code=reply.status, media_type=reply.media_type)
            return Response((mock.files_dir / "video.mp4").read_bytes(), media_type="video/mp4")

        return [
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/videos/{video_id}/content", video_content, methods=["GET"]),
        ]
