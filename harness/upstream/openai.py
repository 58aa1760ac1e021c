"""OpenAI: images (generations, edits) and chat completions. The Videos API is retired
(catalogue.yaml): its routes answer as gone."""

from __future__ import annotations

import json
import secrets

from jsonschema import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.upstream.engine import MockUpstream, ParsedRequest, Provider, Reply
from harness.upstream.validation import missing_fields

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404:
               "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error"}


class OpenAI(Provider):
    name = "openai"

    def new_id(self) -> str:
        return secrets.token_hex(16)

    def model_of(self, req: ParsedRequest) -> str | None:
        model = req.json().get("model")
        return model if isinstance(model, str) else None

    def error(self, status: int, code: str, message: str, path: str = "", param: str | None = None) -> Reply:
        kind = ERROR_TYPES.get(status, "invalid_request_error")
        body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        return Reply(status, json.dumps(body).encode())

    def invalid_request(self, req: ParsedRequest, error: ValidationError) -> Reply:
        """OpenAI's 400 envelope naming the parameter. `unknown_parameter` for a parameter the
        model does not take is sourced (openai_replicate.md B.1, S30); the codes for a missing or
        invalid value follow the same envelope and are unconfirmed."""
        path = [str(p) for p in error.absolute_path]
        param = ".".join(path) or None
        if error.validator == "not" and path:
            return self.error(400, "unknown_parameter", f"Unknown parameter: '{param}'.", param=param)
        missing = missing_fields(error) if not path else []
        if missing:
            return self.error(400, "missing_required_parameter",
                              f"Missing required parameter: '{missing[0]}'.", param=missing[0])
        return self.error(400, "invalid_value", f"Invalid value for '{param}': {error.message}.",
                          param=param)

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

    def extra_routes(self, mock: MockUpstream) -> list[Route]:
        async def models(request: Request) -> Response:
            data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "gwconf"}
                    for m in sorted(mock.catalogue)]
            return JSONResponse({"object": "list", "data": data})

        return [Route("/v1/models", models, methods=["GET"])]
