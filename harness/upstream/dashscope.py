"""DashScope (Alibaba Model Studio): native /api/v1 services, task API, compatible mode."""

from __future__ import annotations

import json
import re
import uuid

from jsonschema import ValidationError

from harness.config._cassette import Cassette
from harness.upstream.engine import ParsedRequest, Provider, Reply, Task
from harness.upstream.validation import missing_fields

TASK_PATH = re.compile(r"^/api/v1/tasks/(?P<id>[^/]+)/?$")
CANCEL_PATH = re.compile(r"^/api/v1/tasks/(?P<id>[^/]+)/cancel$")
COMPATIBLE_PREFIX = "/compatible-mode/"
# Paths that only accept `X-DashScope-Async: enable` (DashScope answers 403 AccessDenied otherwise).
ASYNC_ONLY_PATHS = frozenset(
    {
        "/api/v1/services/aigc/text2image/image-synthesis",
        "/api/v1/services/aigc/image2image/image-synthesis",
        "/api/v1/services/aigc/image-generation/generation",
        "/api/v1/services/aigc/video-generation/video-synthesis",
        "/api/v1/services/aigc/image2video/video-synthesis",
    }
)
SYNC_ONLY_PATHS = frozenset({"/api/v1/services/aigc/multimodal-generation/generation"})
# Text-to-image models that only the async task API serves (wan/wanx legacy synthesis). The
# qwen-image family is not among them: qwen-image-plus and qwen-image speak both the sync
# multimodal route and the task API; qwen-image-2.0(-pro) and qwen-image-max are sync only.
ASYNC_ONLY_IMAGE_MODELS = frozenset({"wan2.5-t2i-preview", "wan2.2-t2i-flash", "wan2.2-t2i-plus",
                                     "wanx2.1-t2i-turbo", "wanx2.1-t2i-plus", "wanx2.0-t2i-turbo", "wanx-v1"})


INVALID_PARAMETER = ("Required parameter(s) missing or invalid, please check the request "
                     "parameters.")


def request_id() -> str:
    return str(uuid.uuid4())


def is_pending(task: Task) -> bool:
    """Whether the task is still PENDING as far as its caller has seen: DashScope cancels only then."""
    if task.served == 0:
        return True
    polls = task.cassette.polls
    last = json.loads(polls[min(task.served, len(polls)) - 1].response_body)
    return not task.canceled and last.get("output", {}).get("task_status") == "PENDING"


class DashScope(Provider):
    name = "dashscope"

    def new_id(self) -> str:
        return str(uuid.uuid4())

    def poll_id(self, method: str, path: str) -> str | None:
        match = TASK_PATH.match(path)
        return match["id"] if match and method == "GET" else None

    def error(self, status: int, code: str, message: str, path: str = "") -> Reply:
        if path.startswith(COMPATIBLE_PREFIX):
            body = {
                "error": {"message": message, "type": "invalid_request_error", "param": None,
                          "code": code},
                "request_id": request_id(),
            }
        else:
            body = {"code": code, "message": message, "request_id": request_id()}
        return Reply(status, json.dumps(body).encode())

    def unknown_model(self, req: ParsedRequest, model: str | None) -> Reply:
        if req.path.startswith(COMPATIBLE_PREFIX):
            return self.error(
                404,
                "model_not_supported",
                f"Unsupported model {model} for OpenAI compatibility mode.",
                req.path,
            )
        return self.error(400, "InvalidParameter", "Model not exist.", req.path)

    def invalid_request(self, req: ParsedRequest, error: ValidationError) -> Reply:
        """The documented refusals (dashscope.md 5): an empty model or input has its own code,
        anything else is InvalidParameter. Compatible mode wraps the snake_case code in
        OpenAI's envelope (invalid_parameter_error, seen in public logs [T])."""
        if req.path.startswith(COMPATIBLE_PREFIX):
            return self.error(400, "invalid_parameter_error", INVALID_PARAMETER, req.path)
        missing = missing_fields(error) if not error.absolute_path else []
        if "model" in missing:
            return self.error(400, "BadRequest.EmptyModel",
                              'Required parameter "model" missing from request.', req.path)
        if "input" in missing:
            return self.error(400, "BadRequest.EmptyInput",
                              'Required parameter "input" missing from request.', req.path)
        return self.error(400, "InvalidParameter", INVALID_PARAMETER, req.path)

    def wrong_endpoint(self, req: ParsedRequest, cassette: Cassette | None) -> Reply:
        if req.path.startswith(COMPATIBLE_PREFIX):
            return self.unknown_model(req, self.model_of(req))
        return self.error(400, "InvalidParameter", "url error, please check url!", req.path)

    def unknown_task(self, task_id: str) -> Reply:
        body = {"request_id": request_id(),
                "output": {"task_id": task_id, "task_status": "UNKNOWN"}}
        return Reply(200, json.dumps(body).encode())

    def as_canceled(self, reply: Reply) -> Reply:
        body = json.loads(reply.body)
        output = body.get("output", {})
        output["task_status"] = "CANCELED"
        for key in ("results", "code", "message"):
            output.pop(key, None)
        return Reply(200, json.dumps(body).encode(), reply.headers, reply.media_type)

    def check_request(self, req: ParsedRequest, cassette: Cassette) -> Reply | None:
        is_async = req.headers.get("x-dashscope-async", "").lower() == "enable"
        if req.path in ASYNC_ONLY_PATHS and not is_async:
            return self.error(403, "AccessDenied",
                              "current user api does not support synchronous calls.", req.path)
        if req.path in SYNC_ONLY_PATHS and is_async:
            return self.error(403, "AccessDenied",
                              "Current user api does not support asynchronous calls.", req.path)
        return None

    def cancel_id(self, method: str, path: str) -> str | None:
        match = CANCEL_PATH.match(path)
        return match["id"] if match and method == "POST" else None

    def cancel(self, task: Task | None) -> Reply:
        """Only a PENDING task can be canceled (dashscope.md 3.2); the answer is a bare request_id."""
        if task is None or not is_pending(task):
            return self.error(400, "UnsupportedOperation",
                              "Failed to cancel the task, please confirm if the task is in PENDING status.")
        task.canceled = True
        return Reply(200, json.dumps({"request_id": request_id()}).encode())
