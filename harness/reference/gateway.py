"""The reference gateway's logic: route an OpenAI-style request to the right provider call.

Each step is a method, so a test mutant can break exactly one of them by overriding it.
"""

from __future__ import annotations

import asyncio
import base64
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.reference.errors import GatewayError, client_status
from harness.reference.facts import (
    DASHSCOPE_CHAT,
    DASHSCOPE_MULTIMODAL,
    DASHSCOPE_SYNTHESIS,
    DASHSCOPE_TASK,
    DASHSCOPE_TASK_MODELS,
    OPENAI_CHAT,
    OPENAI_EDITS,
    OPENAI_GENERATIONS,
    REPLICATE_MODEL_PREDICTIONS,
    REPLICATE_PREDICTION,
)
from harness.reference.transport import QueuedTransport

# OpenAI image request fields the gateway understands; anything else is a vendor field.
OPENAI_IMAGE_FIELDS = frozenset({"model", "prompt", "n", "size", "response_format", "quality",
                                 "style", "user", "background", "output_format",
                                 "output_compression", "moderation", "stream", "partial_images"})
DASHSCOPE_VENDOR_FIELDS = frozenset({"prompt_extend", "watermark", "negative_prompt", "seed"})
# The types DashScope reads them as: a multipart edit carries every field as a string.
DASHSCOPE_VENDOR_TYPES: dict[str, type] = {"prompt_extend": bool, "watermark": bool, "seed": int}
DASHSCOPE_VIDEO = "/api/v1/services/aigc/video-generation/video-synthesis"
# DashScope video fields a client may add to an OpenAI video request, by where DashScope wants them.
DASHSCOPE_VIDEO_INPUT = frozenset({"img_url", "negative_prompt", "audio_url"})
DASHSCOPE_VIDEO_PARAMETERS = frozenset({"prompt_extend", "watermark", "seed", "resolution", "shot_type",
                                        "duration", "size"})
# The config key under which an in-process run hands the gateway its HTTP transport (the seam's
# router: harness.gateway._seam names the same key; tests/test_oracles.py keeps them equal).
TRANSPORT_KEY = "http_transport"
TASK_DONE = {"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"}
# DashScope's regions have their own hosts and keys; config `upstreams` and `provider_keys`
# name them by these keys. A route without a region is Beijing's, DashScope's default.
DASHSCOPE_REGION_UPSTREAMS = {"cn-beijing": "dashscope", "ap-southeast-1": "dashscope-intl",
                              "us-east-1": "dashscope-us"}
LOOPBACK_PATTERNS = ("all://127.0.0.1", "all://localhost", "all://[::1]")
PREDICTION_DONE = {"succeeded", "failed", "canceled", "aborted"}
# Provider failures that are content refusals: DashScope's code (error-code page), and Replicate's
# E005 "The input or output was flagged as sensitive" in a failed prediction's error.
CONTENT_POLICY_CODES = frozenset({"DataInspectionFailed"})
CONTENT_POLICY_MARKS = ("(E005)",)


@dataclass(frozen=True)
class Route:
    alias: str
    provider: str
    upstream_model: str
    capability: str
    region: str | None = None


@dataclass
class ImageRequest:
    prompt: str
    n: int = 1
    size: str | None = None
    response_format: str = "url"
    vendor: dict[str, Any] = field(default_factory=dict)
    openai_body: dict[str, Any] = field(default_factory=dict)
    image: bytes | None = None
    image_type: str = "image/png"


@dataclass
class VideoRequest:
    prompt: str
    seconds: int | None = None
    size: str | None = None
    vendor: dict[str, Any] = field(default_factory=dict)


@dataclass
class Config:
    models: list[Route]
    upstreams: dict[str, str]
    provider_keys: dict[str, str]
    client_keys: list[str]
    fallbacks: dict[str, list[Route]] = field(default_factory=dict)
    upstream_timeout: float = 10.0
    task_poll_interval: float = 0.05
    task_max_polls: int = 60
    image_prices: dict[str, float] = field(default_factory=dict)  # alias -> price of one image
    key_budget: float | None = None  # spend cap per client key; None: unlimited
    egress_proxy: str | None = None  # every non-loopback call goes through this proxy
    transport: httpx.AsyncBaseTransport | None = None  # in-process runs: the seam instead of sockets

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        fallbacks = {
            f["alias"]: [Route(f["alias"], t["provider"], t["upstream_model"], f["capability"])
                         for t in f["targets"]]
            for f in data.get("fallbacks", [])
        }
        return cls(
            models=[Route(**m) for m in data["models"]],
            upstreams=data["upstreams"],
            provider_keys=data.get("provider_keys", {}),
            client_keys=[k for k in data.get("client_keys", []) if k],
            fallbacks=fallbacks,
            upstream_timeout=float(data.get("upstream_timeout", 10.0)),
            task_poll_interval=float(data.get("task_poll_interval", 0.05)),
            task_max_polls=int(data.get("task_max_polls", 60)),
            image_prices={k: float(v) for k, v in data.get("image_prices", {}).items()},
            key_budget=float(data["key_budget"]) if data.get("key_budget") is not None else None,
            egress_proxy=data.get("egress_proxy") or None,
            transport=data.get(TRANSPORT_KEY),
        )


# The DashScope region of the alias the current request was routed to (set by `routes`), so
# every upstream call made for the request, polls and background job work included, goes there.
REGION: ContextVar[str | None] = ContextVar("region", default=None)
# The `usage` of the provider's last answer for the current request (reset by `routes`): what
# the gateway meters and reports, never a number of its own.
PROVIDER_USAGE: ContextVar[dict[str, Any] | None] = ContextVar("provider_usage", default=None)


def http_options(proxy: str | None, transport: httpx.AsyncBaseTransport | None = None) -> dict[str, Any]:
    """An explicit egress proxy for everything but loopback (where the upstreams live).

    Explicit rather than HTTP(S)_PROXY from the environment: an in-process gateway shares the
    harness's environment. In-process, the seam's transport takes every call (it plays the proxy)."""
    if transport is not None:
        return {"transport": transport, "trust_env": False}
    if not proxy:
        return {"transport": QueuedTransport()}
    return {"transport": QueuedTransport(), "proxy": proxy, "mounts": dict.fromkeys(LOOPBACK_PATTERNS)}


class ReferenceGateway:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.http = httpx.AsyncClient(timeout=config.upstream_timeout,
                                      **http_options(config.egress_proxy, config.transport))

    # -- routing ------------------------------------------------------------------------------

    def routes(self, alias: str, capability: str) -> list[Route]:
        REGION.set(None)
        PROVIDER_USAGE.set(None)
        if alias in self.config.fallbacks:
            return self.config.fallbacks[alias]
        found = [r for r in self.config.models if r.alias == alias]
        if not found:
            raise GatewayError(404, "model_not_found", f"The model `{alias}` does not exist.")
        route = found[0]
        REGION.set(route.region)
        if route.capability != capability:
            raise GatewayError(400, "unsupported_model",
                               f"The model `{alias}` does not support {capability}.")
        return [route]

    async def with_fallback(self, routes: list[Route], call: Any) -> Any:
        """Try each target in order; only throttling, upstream faults and timeouts move on."""
        last: GatewayError | None = None
        for route in routes:
            try:
                return await call(route)
            except GatewayError as exc:
                last = exc
                if not self.should_fall_back(exc):
                    raise
        assert last is not None
        raise last

    def should_fall_back(self, error: GatewayError) -> bool:
        return error.retryable

    # -- upstream calls -----------------------------------------------------------------------

    def upstream_name(self, provider: str) -> str:
        """Which configured upstream serves this provider for the current route: its region's."""
        region = REGION.get()
        if provider != "dashscope" or not region:
            return provider
        name = DASHSCOPE_REGION_UPSTREAMS.get(region)
        if name is None or name not in self.config.upstreams:
            raise GatewayError(500, "unknown_region", f"no upstream configured for dashscope region {region}")
        return name

    def upstream_headers(self, provider: str) -> dict[str, str]:
        key = self.config.provider_keys.get(self.upstream_name(provider), "")
        return {"Authorization": f"Bearer {key}"}

    async def call(self, provider: str, method: str, path: str, *,
                   headers: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
        url = self.config.upstreams[self.upstream_name(provider)] + path
        all_headers = {**self.upstream_headers(provider), **(headers or {})}
        try:
            response = await self.http.request(method, url, headers=all_headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise GatewayError(504, "upstream_timeout",
                               f"{provider} did not answer within "
                               f"{self.config.upstream_timeout:g}s", provider=provider) from exc
        except httpx.HTTPError as exc:
            raise GatewayError(502, "upstream_unreachable",
                               f"{provider} connection failed: {type(exc).__name__}",
                               provider=provider) from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise GatewayError(502, "upstream_bad_response",
                               f"{provider} answered {response.status_code} with a body that is "
                               "not JSON", provider=provider) from exc
        if response.status_code >= 400 or (provider == "dashscope" and self.is_business_error(body)):
            raise self.upstream_error(provider, response, body)
        if isinstance(body, dict) and isinstance(body.get("usage"), dict):
            PROVIDER_USAGE.set(body["usage"])
        return body

    @staticmethod
    def is_business_error(body: Any) -> bool:
        return isinstance(body, dict) and "code" in body and "output" not in body and body["code"]

    def upstream_error(self, provider: str, response: httpx.Response, body: Any) -> GatewayError:
        code, message = provider_reason(body)
        status = response.status_code if response.status_code >= 400 else 400
        return GatewayError(client_status(status), code or "upstream_error",
                            f"{provider}: {message or 'error ' + str(status)}",
                            retry_after=self.retry_after(response), provider=provider)

    def retry_after(self, response: httpx.Response) -> str | None:
        return response.headers.get("retry-after")

    async def fetch_bytes(self, url: str) -> bytes:
        try:
            response = await self.http.get(url)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise GatewayError(502, "upstream_unreachable", f"image fetch failed: {exc}") from exc
        return response.content

    # -- images -------------------------------------------------------------------------------

    async def generate(self, route: Route, req: ImageRequest) -> dict[str, Any]:
        return self.metered(route, await self.generated(route, req))

    async def generated(self, route: Route, req: ImageRequest) -> dict[str, Any]:
        if route.provider == "dashscope":
            urls = await self.dashscope_generate(route, req)
        elif route.provider == "openai":
            return await self.normalize_openai(await self.openai_generate(route, req), req)
        elif route.provider == "replicate":
            urls = await self.replicate_generate(route, req)
        else:  # pragma: no cover - profiles are validated
            raise GatewayError(500, "unknown_provider", route.provider)
        return await self.images_response(urls, req)

    async def edit(self, route: Route, req: ImageRequest) -> dict[str, Any]:
        return self.metered(route, await self.edited(route, req))

    async def edited(self, route: Route, req: ImageRequest) -> dict[str, Any]:
        if route.provider == "dashscope":
            return await self.images_response(await self.dashscope_edit(route, req), req)
        if route.provider == "openai":
            return await self.normalize_openai(await self.openai_edit(route, req), req)
        raise GatewayError(400, "unsupported_model", f"{route.alias} cannot edit images")

    def image_usage(self, route: Route, answer: dict[str, Any]) -> dict[str, Any]:
        """What the provider reported: DashScope's usage (image_count, size); elsewhere the
        images the provider returned (OpenAI's token usage stays in the answer's `usage`)."""
        usage = PROVIDER_USAGE.get() or {}
        if route.provider == "dashscope" and "image_count" in usage:
            found: dict[str, Any] = {"image_count": usage["image_count"]}
            if "width" in usage and "height" in usage:
                found["size"] = f"{usage['width']}x{usage['height']}"
            return found
        return {"image_count": len(answer.get("data", []))}

    def metered(self, route: Route, answer: dict[str, Any]) -> dict[str, Any]:
        """The answer with the gateway's declared usage and cost (gateways/reference.toml `cost`):
        `cost.image_count` from the provider, `cost.usd` = the alias's price per image times it."""
        usage = self.image_usage(route, answer)
        price = self.config.image_prices.get(route.alias)
        if price is not None:
            usage["usd"] = round(price * usage["image_count"], 6)
        return {**answer, "cost": usage}

    async def images_response(self, urls: list[str], req: ImageRequest) -> dict[str, Any]:
        if not urls:
            raise GatewayError(502, "upstream_empty_result", "the provider returned no image")
        if req.response_format == "b64_json":
            data = [{"b64_json": base64.b64encode(await self.fetch_bytes(u)).decode()}
                    for u in urls]
        else:
            data = [{"url": u} for u in urls]
        return {"created": int(time.time()), "data": data}

    async def normalize_openai(self, body: dict[str, Any], req: ImageRequest) -> dict[str, Any]:
        if req.response_format == "b64_json":
            for item in body.get("data", []):
                if "url" in item and "b64_json" not in item:
                    item["b64_json"] = base64.b64encode(await self.fetch_bytes(item.pop("url"))
                                                        ).decode()
        return body

    # DashScope

    def dashscope_size(self, size: str | None) -> str | None:
        return size.replace("x", "*") if size else None

    def dashscope_parameters(self, req: ImageRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"n": req.n}
        size = self.dashscope_size(req.size)
        if size:
            params["size"] = size
        nested = req.vendor.get("parameters")
        if isinstance(nested, dict):
            params.update(nested)
        unknown = set(req.vendor) - DASHSCOPE_VENDOR_FIELDS - {"parameters"}
        if unknown:
            raise GatewayError(400, "unsupported_parameter",
                               f"parameter(s) not supported for this model: {sorted(unknown)}")
        params.update({k: vendor_value(k, v) for k, v in req.vendor.items() if k in DASHSCOPE_VENDOR_FIELDS})
        return params

    async def dashscope_generate(self, route: Route, req: ImageRequest) -> list[str]:
        params = self.dashscope_parameters(req)
        if route.upstream_model in DASHSCOPE_TASK_MODELS:
            return await self.dashscope_task(route, req, params)
        content = [{"text": req.prompt}]
        return await self.dashscope_multimodal(route, content, params)

    async def dashscope_edit(self, route: Route, req: ImageRequest) -> list[str]:
        assert req.image is not None
        data_url = f"data:{req.image_type};base64,{base64.b64encode(req.image).decode()}"
        content = [{"image": data_url}, {"text": req.prompt}]
        return await self.dashscope_multimodal(route, content, self.dashscope_parameters(req))

    async def dashscope_multimodal(self, route: Route, content: list[dict[str, str]],
                                   params: dict[str, Any]) -> list[str]:
        body = {"model": route.upstream_model,
                "input": {"messages": [{"role": "user", "content": content}]},
                "parameters": params}
        answer = await self.call("dashscope", "POST", DASHSCOPE_MULTIMODAL, json=body)
        choices = answer.get("output", {}).get("choices", [])
        return [part["image"] for choice in choices
                for part in choice.get("message", {}).get("content", []) if "image" in part]

    async def dashscope_task(self, route: Route, req: ImageRequest,
                             params: dict[str, Any]) -> list[str]:
        body = {"model": route.upstream_model, "input": {"prompt": req.prompt},
                "parameters": params}
        output = await self.poll_dashscope(await self.submit_dashscope_task(DASHSCOPE_SYNTHESIS, body))
        return [r["url"] for r in output.get("results", []) if r.get("url")]

    async def submit_dashscope_task(self, path: str, body: dict[str, Any]) -> str:
        submitted = await self.call("dashscope", "POST", path, json=body,
                                    headers=self.dashscope_async_headers())
        task_id = submitted.get("output", {}).get("task_id")
        if not task_id:
            raise GatewayError(502, "upstream_bad_response", "dashscope returned no task_id")
        return str(task_id)

    def dashscope_async_headers(self) -> dict[str, str]:
        return {"X-DashScope-Async": "enable"}

    async def poll_dashscope(self, task_id: str) -> dict[str, Any]:
        for _ in range(self.config.task_max_polls):
            await asyncio.sleep(self.config.task_poll_interval)
            output = (await self.call("dashscope", "GET", DASHSCOPE_TASK.format(task_id=task_id))
                      ).get("output", {})
            status = output.get("task_status")
            if status == "SUCCEEDED":
                return output
            if status in TASK_DONE:
                raise self.task_failure(output.get("code") or status,
                                        output.get("message") or f"task {status}")
        raise self.task_timeout()

    def task_failure(self, code: str, message: str) -> GatewayError:
        # A content refusal is the request's fault, as OpenAI's own 400 moderation_blocked is: a
        # 5xx would tell the client to retry the same thing.
        status = 400 if code in CONTENT_POLICY_CODES or any(m in message for m in CONTENT_POLICY_MARKS) else 502
        return GatewayError(status, code, f"upstream task failed: {message}")

    def task_timeout(self) -> GatewayError:
        return GatewayError(504, "upstream_task_timeout",
                            f"upstream task unfinished after {self.config.task_max_polls} polls")

    # OpenAI

    def openai_body(self, route: Route, req: ImageRequest) -> dict[str, Any]:
        """The client's OpenAI fields for the upstream model. GPT image models (gpt-image-2 and
        on) always answer base64 and refuse `response_format`: the gateway keeps the client's
        choice to itself and turns base64 into a URL-less answer either way."""
        body = {**req.openai_body, **req.vendor, "model": route.upstream_model}
        body.pop("response_format", None)
        return body

    async def openai_generate(self, route: Route, req: ImageRequest) -> dict[str, Any]:
        return await self.call("openai", "POST", OPENAI_GENERATIONS,
                               json=self.openai_body(route, req))

    async def openai_edit(self, route: Route, req: ImageRequest) -> dict[str, Any]:
        assert req.image is not None
        fields = {k: str(v) for k, v in self.openai_body(route, req).items()}
        files = {"image": ("image.png", req.image, req.image_type)}
        return await self.call("openai", "POST", OPENAI_EDITS, data=fields, files=files)

    # Replicate

    async def replicate_generate(self, route: Route, req: ImageRequest) -> list[str]:
        owner_name = route.upstream_model.split(":")[0]
        # OpenAI's output_format names jpeg what flux calls jpg; the others are the same words.
        output_format = req.openai_body.get("output_format") or "png"
        body = {"input": {"prompt": req.prompt, "num_outputs": req.n,
                          "output_format": "jpg" if output_format == "jpeg" else output_format, **req.vendor}}
        created = await self.call("replicate", "POST", REPLICATE_MODEL_PREDICTIONS.format(owner_name=owner_name),
                                  json=body)
        prediction = await self.poll_replicate(created)
        output = prediction.get("output")
        return [output] if isinstance(output, str) else list(output or [])

    async def poll_replicate(self, prediction: dict[str, Any]) -> dict[str, Any]:
        for _ in range(self.config.task_max_polls):
            status = prediction.get("status")
            if status == "succeeded":
                return prediction
            if status in PREDICTION_DONE:
                raise self.task_failure(f"prediction_{status}",
                                        str(prediction.get("error") or status))
            await asyncio.sleep(self.config.task_poll_interval)
            prediction = await self.call("replicate", "GET",
                                         REPLICATE_PREDICTION.format(prediction_id=prediction["id"]))
        raise self.task_timeout()

    # -- video --------------------------------------------------------------------------------

    def video_task_body(self, route: Route, req: VideoRequest) -> dict[str, Any]:
        """OpenAI's video fields (seconds, size WxH) and DashScope's own, where DashScope wants them."""
        unknown = set(req.vendor) - DASHSCOPE_VIDEO_INPUT - DASHSCOPE_VIDEO_PARAMETERS
        if unknown:
            raise GatewayError(400, "unsupported_parameter",
                               f"parameter(s) not supported for this model: {sorted(unknown)}")
        params: dict[str, Any] = {}
        if req.seconds is not None:
            params["duration"] = req.seconds
        size = self.dashscope_size(req.size)
        if size:
            params["size"] = size
        params.update({k: v for k, v in req.vendor.items() if k in DASHSCOPE_VIDEO_PARAMETERS})
        inputs = {"prompt": req.prompt, **{k: v for k, v in req.vendor.items() if k in DASHSCOPE_VIDEO_INPUT}}
        return {"model": route.upstream_model, "input": inputs, "parameters": params}

    async def submit_video(self, route: Route, req: VideoRequest) -> str:
        """Create the provider's video task; its id."""
        if route.provider != "dashscope":
            raise GatewayError(400, "unsupported_model", f"{route.alias} cannot generate video")
        return await self.submit_dashscope_task(DASHSCOPE_VIDEO, self.video_task_body(route, req))

    async def finish_video(self, task_id: str) -> str:
        """Follow the provider's video task to its end; the URL of the video."""
        output = await self.poll_dashscope(task_id)
        url = output.get("video_url")
        if not isinstance(url, str) or not url:
            raise GatewayError(502, "upstream_empty_result", "the provider returned no video")
        return url

    async def cancel_video(self, task_id: str) -> None:
        """DashScope cancels a task only while it is PENDING; its refusal reaches the client."""
        await self.call("dashscope", "POST", f"/api/v1/tasks/{task_id}/cancel")

    # -- chat ---------------------------------------------------------------------------------

    async def chat(self, route: Route, body: dict[str, Any]) -> dict[str, Any]:
        upstream_body = {**body, "model": route.upstream_model}
        if route.provider == "dashscope":
            return await self.call("dashscope", "POST", DASHSCOPE_CHAT, json=upstream_body)
        if route.provider == "openai":
            return await self.call("openai", "POST", OPENAI_CHAT, json=upstream_body)
        raise GatewayError(400, "unsupported_model", f"{route.alias} does not support chat")


def vendor_value(name: str, value: Any) -> Any:
    """A DashScope vendor field as DashScope reads it: a multipart form's "true" or "42" becomes
    the boolean or integer the client meant (the OpenAI SDK writes booleans as "true"/"false")."""
    kind = DASHSCOPE_VENDOR_TYPES.get(name)
    if kind is None or not isinstance(value, str):
        return value
    if kind is bool:
        if value.lower() not in ("true", "false"):
            raise GatewayError(400, "invalid_parameter", f"`{name}` must be true or false")
        return value.lower() == "true"
    try:
        return int(value)
    except ValueError as exc:
        raise GatewayError(400, "invalid_parameter", f"`{name}` must be an integer") from exc


def provider_reason(body: Any) -> tuple[str | None, str | None]:
    """The provider's own error code and message, whichever envelope it used."""
    if not isinstance(body, dict):
        return None, None
    if isinstance(body.get("error"), dict):
        err = body["error"]
        return err.get("code") or err.get("type"), err.get("message")
    if "code" in body or "message" in body:
        return body.get("code"), body.get("message")
    if "title" in body or "detail" in body:
        return body.get("title"), body.get("detail")
    return None, None
