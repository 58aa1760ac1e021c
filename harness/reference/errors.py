"""Errors inside the reference gateway, and their OpenAI error envelope."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import JSONResponse

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}


@dataclass
class GatewayError(Exception):
    """Anything the gateway answers with an error envelope instead of a result."""

    status: int
    code: str
    message: str
    retry_after: str | None = None
    provider: str | None = None

    def envelope(self) -> dict[str, object]:
        kind = ERROR_TYPES.get(self.status, "upstream_error" if self.status >= 500 else
                               "invalid_request_error")
        return {"error": {"message": self.message, "type": kind, "param": None,
                          "code": self.code}}

    def response(self) -> JSONResponse:
        headers = {"Retry-After": self.retry_after} if self.retry_after else None
        return JSONResponse(self.envelope(), status_code=self.status, headers=headers)

    @property
    def retryable(self) -> bool:
        """Worth trying the next fallback target: throttling, upstream faults, timeouts."""
        return self.status in {429, 500, 502, 503, 504}


def client_status(upstream_status: int) -> int:
    """Client errors stay 4xx, throttling stays 429, upstream faults become 502."""
    if upstream_status == 429 or 400 <= upstream_status < 500:
        return upstream_status
    return 502
