"""Broken variants of the reference gateway: each breaks one thing a check claims to see.

A mutant is a small subclass of ReferenceGateway (or GatewayApp) overriding one step. The
mutation test runs the whole catalogue against each and asserts exactly which checks fail.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from harness.reference.app import GatewayApp
from harness.reference.errors import GatewayError
from harness.reference.gateway import (
    DASHSCOPE_CHAT,
    DASHSCOPE_MULTIMODAL,
    ImageRequest,
    ReferenceGateway,
    Route,
)

STANDARD_CHAT_FIELDS = {"model", "messages", "temperature", "top_p", "n", "stream", "stop",
                        "max_tokens", "presence_penalty", "frequency_penalty", "user"}


class ImageToChat(ReferenceGateway):
    """Sends DashScope image models to compatible-mode chat, as a text-only router would."""

    async def dashscope_generate(self, route: Route, req: ImageRequest) -> list[str]:
        body = {"model": route.upstream_model, "messages": [{"role": "user", "content": req.prompt}]}
        await self.call("dashscope", "POST", DASHSCOPE_CHAT, json=body)
        return []


class MissingAsyncHeader(ReferenceGateway):
    """Forgets X-DashScope-Async on task submits."""

    def dashscope_async_headers(self) -> dict[str, str]:
        return {}


class DropsJobId(GatewayApp):
    """Answers the async submit with 202 but no job id."""

    async def answer(self, request: Request, owner: str, model: str, work: Any) -> Response:
        response = await super().answer(request, owner, model, work)
        if response.status_code != 202:
            return response
        return JSONResponse({"object": "image_job", "status": "queued"}, status_code=202)


class FailedAsSuccess(ReferenceGateway):
    """Turns a FAILED task or failed prediction into 200 with empty data."""

    def task_failure(self, code: str, message: str) -> GatewayError:
        raise _EmptySuccess

    async def generate(self, route: Route, req: ImageRequest) -> dict[str, Any]:
        try:
            return await super().generate(route, req)
        except _EmptySuccess:
            return {"created": int(time.time()), "data": []}


class _EmptySuccess(Exception):
    pass


class NeverGivesUp(ReferenceGateway):
    """Polls an upstream task with no bound of its own."""

    async def poll_dashscope(self, task_id: str) -> dict[str, Any]:
        self.config.task_max_polls = 10**6
        return await super().poll_dashscope(task_id)


class StripsChatExtras(ReferenceGateway):
    """Keeps only standard OpenAI chat fields: translation_options and friends vanish."""

    async def chat(self, route: Route, body: dict[str, Any]) -> dict[str, Any]:
        return await super().chat(route, {k: v for k, v in body.items() if k in STANDARD_CHAT_FIELDS})


class DropsVendorParams(ReferenceGateway):
    """Silently drops every non-OpenAI image field."""

    def dashscope_parameters(self, req: ImageRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"n": req.n}
        if req.size:
            params["size"] = self.dashscope_size(req.size)
        return params


class RawDashScopeShape(ReferenceGateway):
    """Hands DashScope's own answer to the client instead of OpenAI's shapes."""

    async def generate(self, route: Route, req: ImageRequest) -> dict[str, Any]:
        if route.provider != "dashscope":
            return await super().generate(route, req)
        urls = await self.dashscope_generate(route, req)
        return {"output": {"choices": [{"message": {"content": [{"image": u} for u in urls]}}]},
                "request_id": "raw"}

    async def chat(self, route: Route, body: dict[str, Any]) -> dict[str, Any]:
        answer = await super().chat(route, body)
        if route.provider != "dashscope":
            return answer
        return {"output": {"choices": answer.get("choices", [])}, "request_id": "raw"}


class IgnoresB64(ReferenceGateway):
    """Always answers URLs, whatever response_format asked for."""

    async def images_response(self, urls: list[str], req: ImageRequest) -> dict[str, Any]:
        req.response_format = "url"
        return await super().images_response(urls, req)


class CorruptsImageBytes(ReferenceGateway):
    """Re-encodes images on the way through, so the client never gets the provider's bytes."""

    async def fetch_bytes(self, url: str) -> bytes:
        return (await super().fetch_bytes(url)) + b"\x00gwconf-reencoded"


class SizeNotConverted(ReferenceGateway):
    """Passes OpenAI's 1024x1024 to DashScope unchanged."""

    def dashscope_size(self, size: str | None) -> str | None:
        return size


class IgnoresN(ReferenceGateway):
    """Never tells DashScope how many images were asked for."""

    def dashscope_parameters(self, req: ImageRequest) -> dict[str, Any]:
        params = super().dashscope_parameters(req)
        params.pop("n", None)
        return params


class UnknownModelFallsBack(ReferenceGateway):
    """Routes an unknown alias to the first model of the capability instead of refusing it."""

    def routes(self, alias: str, capability: str) -> list[Route]:
        try:
            return super().routes(alias, capability)
        except GatewayError:
            return [next(r for r in self.config.models if r.capability == capability)]


class EditAsGeneration(ReferenceGateway):
    """Sends an edit to DashScope as a plain generation: the input image is lost."""

    async def dashscope_edit(self, route: Route, req: ImageRequest) -> list[str]:
        return await self.dashscope_multimodal(route, [{"text": req.prompt}], self.dashscope_parameters(req))


class AliasAsUpstreamModel(ReferenceGateway):
    """Sends the client-facing alias upstream instead of the registered provider model ID."""

    def routes(self, alias: str, capability: str) -> list[Route]:
        return [Route(r.alias, r.provider, r.alias, r.capability) for r in super().routes(alias, capability)]


class OpenAIEditAsGeneration(ReferenceGateway):
    """Turns an OpenAI edit into a generation request."""

    async def openai_edit(self, route: Route, req: ImageRequest) -> dict[str, Any]:
        return await self.openai_generate(route, req)


class CountsFailedResults(ReferenceGateway):
    """Reports every result of a partly failed task, failed ones included."""

    async def dashscope_task(self, route: Route, req: ImageRequest, params: dict[str, Any]) -> list[str]:
        body = {"model": route.upstream_model, "input": {"prompt": req.prompt}, "parameters": params}
        submitted = await self.call("dashscope", "POST", "/api/v1/services/aigc/text2image/image-synthesis",
                                    json=body, headers=self.dashscope_async_headers())
        output = await self.poll_dashscope(submitted["output"]["task_id"])
        return [r.get("url", "") for r in output.get("results", [])]

    async def images_response(self, urls: list[str], req: ImageRequest) -> dict[str, Any]:
        if req.response_format == "b64_json" or all(urls):
            return await super().images_response([u for u in urls if u], req)
        return {"created": int(time.time()), "data": [{"url": u} for u in urls]}


class ForgetsFinishedJobs(GatewayApp):
    """Deletes a job the first time it is read in a final state."""

    async def get_job(self, request: Request) -> Response:
        response = await super().get_job(request)
        job = self.jobs.get(request.path_params["job_id"])
        if job is not None and job.status in ("succeeded", "failed"):
            del self.jobs[job.id]
        return response


class ChatToWrongEndpoint(ReferenceGateway):
    """Sends DashScope chat to the native multimodal image route."""

    async def chat(self, route: Route, body: dict[str, Any]) -> dict[str, Any]:
        if route.provider != "dashscope":
            return await super().chat(route, body)
        return await self.call("dashscope", "POST", DASHSCOPE_MULTIMODAL, json={**body, "model": route.upstream_model})


@dataclass(frozen=True)
class Mutant:
    name: str
    gateway: type[ReferenceGateway] = ReferenceGateway
    app: type[GatewayApp] = GatewayApp

    def factory(self) -> Callable[[dict[str, Any]], Any]:
        from harness.reference.app import build_app

        return lambda config: build_app(config, self.gateway, self.app).app


# name -> (mutant, the checks it must fail: fail for MUST, warn for SHOULD)
MUTANTS: dict[str, tuple[Mutant, frozenset[str]]] = {}


def mutant(name: str, expected: set[str], gateway: type[ReferenceGateway] = ReferenceGateway,
           app: type[GatewayApp] = GatewayApp) -> None:
    MUTANTS[name] = (Mutant(name, gateway, app), frozenset(expected))


# Without a job id the client cannot follow an async request: every verdict on the result fails,
# while what reached the upstream (the gateway still works in the background) stays right.
UNFOLLOWABLE = {"ASYNC-001", "ASYNC-002", "ASYNC-004", "ASYNC-006", "ASYNC-007", "ASYNC-009", "EXTRA-006",
                "NORM-001", "NORM-002", "NORM-004", "NORM-005"}
# Every ERR check on the image route that needs the faulty scenario played (ERR-014 judges any answer).
NEVER_PLAYED_ERRORS = {f"ERR-{n:03d}" for n in range(1, 16) if n not in (11, 14)}
FALLBACK_LEGS = {"FALLBACK-001", "FALLBACK-002", "FALLBACK-003", "FALLBACK-004"}
VENDOR_FIELDS = {"EXTRA-002", "EXTRA-003", "EXTRA-004", "EXTRA-005", "EXTRA-006", "EXTRA-008"}

# Routing DashScope images to chat also breaks every error scenario on the image route and the
# DashScope leg of the fallback chain.
mutant("image-model-routed-to-chat", {
    "MAP-001", "MAP-003", "ASYNC-002", "ASYNC-004", "ASYNC-007", "ASYNC-011", *VENDOR_FIELDS,
    "NORM-001", "NORM-002", "NORM-003", "NORM-004", "NORM-005", *FALLBACK_LEGS, "FALLBACK-005",
    "ASYNC-003", "ASYNC-005", "ASYNC-010", *NEVER_PLAYED_ERRORS}, gateway=ImageToChat)
# Rejected before a task exists, the failure scenarios are never played: their checks cannot pass.
mutant("missing-async-header", {"MAP-003", "ASYNC-002", "ASYNC-003", "ASYNC-004", "ASYNC-005", "ASYNC-007",
                                "ASYNC-010", "ASYNC-011", "ERR-015"},
       gateway=MissingAsyncHeader)
mutant("job-id-dropped", UNFOLLOWABLE | {"ERR-015", "FALLBACK-001", "FALLBACK-002", "FALLBACK-003", "SEC-001",
                                        "SEC-003", "ASYNC-003", "ASYNC-005", "ASYNC-008", "ASYNC-010",
                                        "NORM-007"}, app=DropsJobId)
mutant("failed-task-as-200-empty", {"ASYNC-003", "ASYNC-004", "ASYNC-008", "ASYNC-012"},
       gateway=FailedAsSuccess)
mutant("never-finishing-task-hangs", {"ASYNC-005"}, gateway=NeverGivesUp)
mutant("translation-options-stripped", {"EXTRA-001", "EXTRA-007"}, gateway=StripsChatExtras)
mutant("vendor-parameters-dropped", VENDOR_FIELDS, gateway=DropsVendorParams)
mutant("raw-dashscope-shape", {"ASYNC-002", "ASYNC-007", "ASYNC-010", "NORM-001", "NORM-002", "NORM-004",
                               "NORM-005", "NORM-006", "NORM-007", "FALLBACK-001", "FALLBACK-002", "FALLBACK-003"},
       gateway=RawDashScopeShape)
mutant("b64-json-ignored", {"NORM-002"}, gateway=IgnoresB64)
mutant("image-bytes-reencoded", {"ASYNC-007", "NORM-002"}, gateway=CorruptsImageBytes)
# The fallback leg to DashScope converts size and n through the same steps.
mutant("size-not-converted", {"NORM-003", "FALLBACK-004"}, gateway=SizeNotConverted)
mutant("n-ignored", {"NORM-004", "FALLBACK-004"}, gateway=IgnoresN)
mutant("unknown-model-silently-routed", {"MAP-007", "MAP-008"}, gateway=UnknownModelFallsBack)
mutant("edit-sent-as-generation", {"MAP-004"}, gateway=EditAsGeneration)
mutant("alias-sent-as-upstream-model", {"MAP-002", "MAP-003", "MAP-005", "MAP-006", "ASYNC-002", "ASYNC-004",
                                        "ASYNC-007", "ASYNC-009", "ASYNC-011", "NORM-001", "NORM-005", "ERR-015",
                                        "ASYNC-003", "ASYNC-005", "ASYNC-008", "ASYNC-010", "ASYNC-012",
                                        *FALLBACK_LEGS, "ERR-011", "FALLBACK-005", "FALLBACK-006"},
       gateway=AliasAsUpstreamModel)
mutant("openai-edit-sent-as-generation", {"MAP-010"}, gateway=OpenAIEditAsGeneration)
mutant("partial-task-counts-failed-images", {"ASYNC-010"}, gateway=CountsFailedResults)
mutant("finished-job-forgotten", {"ASYNC-006", "ERR-015"}, app=ForgetsFinishedJobs)
mutant("chat-sent-to-image-route", {"EXTRA-001", "EXTRA-007", "MAP-009", "NORM-006"},
       gateway=ChatToWrongEndpoint)


# -- error surfacing, fallback chains, isolation (ERR, FALLBACK, SEC) ---------------------------

class RawErrorPassthrough(ReferenceGateway):
    """Hands the provider's own error body to the client."""

    def upstream_error(self, provider: str, response: Any, body: Any) -> GatewayError:
        error = super().upstream_error(provider, response, body)
        return _RawError(error.status, error.code, error.message, error.retry_after, provider, body)


class _RawError(GatewayError):
    def __init__(self, status: int, code: str, message: str, retry_after: str | None, provider: str | None,
                 raw: Any) -> None:
        super().__init__(status, code, message, retry_after, provider)
        self.raw = raw

    def response(self) -> JSONResponse:
        return JSONResponse(self.raw, status_code=self.status)


class SuccessOnUpstreamFault(ReferenceGateway):
    """Answers 200 with no images when the provider fails with a 5xx, drops or times out."""

    async def generate(self, route: Route, req: ImageRequest) -> dict[str, Any]:
        try:
            return await super().generate(route, req)
        except GatewayError as exc:
            if exc.status < 500:
                raise
            return {"created": int(time.time()), "data": []}


class DropsRetryAfter(ReferenceGateway):
    """Loses the upstream's Retry-After."""

    def retry_after(self, response: Any) -> str | None:
        return None


class EchoesProviderKey(ReferenceGateway):
    """Puts the upstream request's Authorization header into its error messages."""

    def upstream_error(self, provider: str, response: Any, body: Any) -> GatewayError:
        error = super().upstream_error(provider, response, body)
        error.message += f" (sent {response.request.headers.get('authorization')})"
        return error


class LongUpstreamTimeout(ReferenceGateway):
    """Waits a minute for an upstream that does not answer."""

    def __init__(self, config: Any) -> None:
        config.upstream_timeout = 60.0
        super().__init__(config)


class HidesProviderReason(ReferenceGateway):
    """Replaces the provider's code and message with a generic one."""

    def upstream_error(self, provider: str, response: Any, body: Any) -> GatewayError:
        error = super().upstream_error(provider, response, body)
        return GatewayError(error.status, "upstream_error", "upstream request failed", error.retry_after,
                            provider)


class FlattensErrorStatuses(GatewayApp):
    """Answers every provider error with 500."""

    async def on_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        if exc.provider:
            exc.status = 500
        return exc.response()


class LosesJobOnPollFault(GatewayApp):
    """Deletes a job that failed because polling the provider failed."""

    async def run_job(self, job: Any, work: Any) -> None:
        await super().run_job(job, work)
        if job.error and job.error.get("code") == "InternalError":
            del self.jobs[job.id]


class FallbackToChat(ReferenceGateway):
    """Sends the fallback target a chat request: the image model lands on compatible mode."""

    async def with_fallback(self, routes: list[Route], call: Any) -> Any:
        first, *rest = routes
        if not rest:
            return await super().with_fallback(routes, call)
        try:
            return await call(first)
        except GatewayError as exc:
            if not self.should_fall_back(exc):
                raise
        body = {"model": rest[0].upstream_model, "messages": [{"role": "user", "content": "image"}]}
        await self.call(rest[0].provider, "POST", DASHSCOPE_CHAT, json=body)
        return {"created": int(time.time()), "data": []}


class FallsBackOnClientError(ReferenceGateway):
    """Falls back on any error, a client's 400 included."""

    def should_fall_back(self, error: GatewayError) -> bool:
        return True


class ReportsFirstFailure(ReferenceGateway):
    """When every target fails, reports the first failure instead of the last."""

    async def with_fallback(self, routes: list[Route], call: Any) -> Any:
        errors: list[GatewayError] = []

        async def recording(route: Route) -> Any:
            try:
                return await call(route)
            except GatewayError as exc:
                errors.append(exc)
                raise

        try:
            return await super().with_fallback(routes, recording)
        except GatewayError:
            raise errors[0] from None


class JobsVisibleAcrossKeys(GatewayApp):
    """Shows any job to any valid key."""

    async def get_job(self, request: Request) -> Response:
        self.client_key(request)
        job = self.jobs.get(request.path_params["job_id"])
        if job is None:
            raise GatewayError(404, "job_not_found", "no such job")
        return JSONResponse(job.view())


CLIENT_KEY: ContextVar[str] = ContextVar("client_key", default="")


class RemembersClientKey(GatewayApp):
    def client_key(self, request: Request) -> str:
        CLIENT_KEY.set(request.headers.get("authorization", ""))
        return super().client_key(request)


class ForwardsClientKey(ReferenceGateway):
    """Forwards the client's Authorization to the provider next to its own key."""

    def upstream_headers(self, provider: str) -> dict[str, str]:
        return {**super().upstream_headers(provider), "X-Client-Authorization": CLIENT_KEY.get()}


class SequentialJobIds(GatewayApp):
    """Numbers jobs 1, 2, 3: anyone can guess the next one."""

    counter = itertools.count(1)

    def new_job_id(self) -> str:
        return f"img_{next(self.counter):06d}"


class IgnoresRegion(ReferenceGateway):
    """Sends every DashScope request to the Beijing upstream, whatever region the alias is bound to."""

    def upstream_name(self, provider: str) -> str:
        return provider


class CallsPublicHost(ReferenceGateway):
    """Tries api.openai.com first for one model (openai/gpt-image-2-2026-04-21), then its configured upstream.

    The client still gets its image, so only egress capture sees the prompt leave for a public host
    (without the fallback the client would see a bare 502 and the fuzz checks would flake on it)."""

    async def openai_generate(self, route: Route, req: ImageRequest) -> dict[str, Any]:
        import httpx

        if route.alias == "openai/gpt-image-2-2026-04-21":
            body = {**req.openai_body, **req.vendor, "model": route.upstream_model}
            try:
                response = await self.http.post("https://api.openai.com/v1/images/generations", json=body,
                                                headers=self.upstream_headers("openai"))
                return response.json()
            except httpx.HTTPError:
                pass  # the egress proxy refused: fall back to the configured upstream
        return await super().openai_generate(route, req)


mutant("region-ignored", {"MAP-012"}, gateway=IgnoresRegion)
mutant("calls-public-host", {"MAP-011"}, gateway=CallsPublicHost)


mutant("raw-provider-error-passed-through", {"ERR-001", "ERR-002", "ERR-003", "ERR-004", "ERR-005", "ERR-006",
                                             "ERR-011", "FALLBACK-005", "FUZZ-002"}, gateway=RawErrorPassthrough)
# Success on a provider fault also hides failed and never-finishing tasks, and stops fallbacks.
mutant("200-on-upstream-500", {"ASYNC-003", "ASYNC-004", "ASYNC-005", "ASYNC-008", "ASYNC-012", "ERR-005", "ERR-006",
                               "ERR-007", "ERR-008", "ERR-009", "ERR-010", "ERR-012", "ERR-013", "ERR-015",
                               "FALLBACK-002", "FALLBACK-003", "FALLBACK-004", "FALLBACK-005"},
       gateway=SuccessOnUpstreamFault)
mutant("retry-after-dropped", {"ERR-011"}, gateway=DropsRetryAfter)
mutant("provider-key-echoed-in-error", {"ERR-014"}, gateway=EchoesProviderKey)
mutant("upstream-timeout-unbounded", {"ERR-007", "ERR-010", "ERR-013", "FALLBACK-003"}, gateway=LongUpstreamTimeout)
mutant("provider-reason-hidden", {"ERR-012", "ERR-015", "FALLBACK-005"}, gateway=HidesProviderReason)
mutant("error-statuses-flattened", {"ERR-010", "ERR-011", "FUZZ-001"}, app=FlattensErrorStatuses)
mutant("job-lost-on-poll-fault", {"ERR-015"}, app=LosesJobOnPollFault)
mutant("fallback-to-chat-endpoint", {"FALLBACK-001", "FALLBACK-002", "FALLBACK-003", "FALLBACK-004",
                                     "FALLBACK-005"}, gateway=FallbackToChat)
mutant("fallback-on-400", {"FALLBACK-006"}, gateway=FallsBackOnClientError)
mutant("exhausted-chain-reports-first-failure", {"FALLBACK-005"}, gateway=ReportsFirstFailure)
mutant("job-visible-across-keys", {"SEC-001"}, app=JobsVisibleAcrossKeys)
mutant("client-key-forwarded", {"SEC-002"}, gateway=ForwardsClientKey, app=RemembersClientKey)
mutant("sequential-job-ids", {"SEC-003"}, app=SequentialJobIds)


# -- invalid input (FUZZ) -----------------------------------------------------------------------

FUZZ_VALIDATION_CODES = frozenset({"invalid_json", "invalid_request", "missing_model", "missing_prompt", "invalid_n",
                                   "invalid_size", "invalid_response_format", "missing_messages", "missing_image"})


class CrashesOnMissingPrompt(GatewayApp):
    """Reads `prompt` without looking: a missing or non-string prompt is a 500 with a stack trace."""

    def image_request(self, fields: dict[str, Any], image: bytes | None = None,
                      image_type: str = "image/png") -> ImageRequest:
        if not isinstance(fields.get("prompt"), str):
            raise _PromptCrash('Traceback (most recent call last):\n  File "gateway.py", line 88, in image_request\n'
                               "    prompt = fields[\"prompt\"].strip()\nKeyError: 'prompt'")
        return super().image_request(fields, image, image_type)

    async def on_crash(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, _PromptCrash):
            return Response(str(exc), status_code=500, media_type="text/plain")
        return await super().on_crash(request, exc)


class _PromptCrash(Exception):
    pass


class PlainTextValidationErrors(GatewayApp):
    """Refuses invalid input with a bare `Bad Request` text body instead of an error envelope."""

    async def on_error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, GatewayError) and exc.code in FUZZ_VALIDATION_CODES:
            return Response("Bad Request", status_code=exc.status, media_type="text/plain")
        return await super().on_error(request, exc)


class SlowOnInvalidImageRequest(GatewayApp):
    """Takes 5 s to refuse an invalid image generation request (past the 4 s bound of the test)."""

    async def on_error(self, request: Request, exc: Exception) -> Response:
        import asyncio

        if (isinstance(exc, GatewayError) and exc.code in FUZZ_VALIDATION_CODES
                and request.url.path == "/v1/images/generations"):
            await asyncio.sleep(5)
        return await super().on_error(request, exc)


mutant("500-on-missing-prompt", {"FUZZ-001"}, app=CrashesOnMissingPrompt)
mutant("validation-errors-as-plain-text", {"FUZZ-002"}, app=PlainTextValidationErrors)
mutant("slow-on-invalid-input", {"FUZZ-003"}, app=SlowOnInvalidImageRequest)


# -- strict, current upstreams (#9) ---------------------------------------------------------------


class LegacyPromptOnMultimodal(ReferenceGateway):
    """Sends the legacy synthesis body `{"input": {"prompt": ...}}` to the multimodal route, which
    wants `input.messages`: DashScope refuses it with 400 InvalidParameter."""

    async def dashscope_multimodal(self, route: Route, content: list[dict[str, str]],
                                   params: dict[str, Any]) -> list[str]:
        if any("image" in part for part in content):
            return await super().dashscope_multimodal(route, content, params)
        body = {"model": route.upstream_model, "input": {"prompt": content[0]["text"]},
                "parameters": params}
        answer = await self.call("dashscope", "POST", DASHSCOPE_MULTIMODAL, json=body)
        choices = answer.get("output", {}).get("choices", [])
        return [part["image"] for choice in choices
                for part in choice.get("message", {}).get("content", []) if "image" in part]


class StaleOpenAIModelMap(ReferenceGateway):
    """Maps OpenAI image aliases to dall-e-3, as a model table from before its retirement would:
    OpenAI answers that the model is gone."""

    def openai_body(self, route: Route, req: ImageRequest) -> dict[str, Any]:
        return {**super().openai_body(route, req), "model": "dall-e-3"}


# The refused body never reaches a scenario, so no ERR scenario on the route is played either.
mutant("legacy-prompt-body-on-multimodal",
       {"MAP-001", "NORM-001", "NORM-002", "NORM-004", "NORM-005", *NEVER_PLAYED_ERRORS - {"ERR-015"},
        "FALLBACK-001", "FALLBACK-002", "FALLBACK-003", "FALLBACK-005"}, gateway=LegacyPromptOnMultimodal)
# OpenAI's gone answer is a 404, not a fallback reason: the chain stops at its first target.
mutant("retired-openai-model", {"MAP-005", "NORM-001", "NORM-005", "ERR-011", *FALLBACK_LEGS, "FALLBACK-005",
                                "FALLBACK-006"}, gateway=StaleOpenAIModelMap)


# -- a non-answer is never a pass (#14) -----------------------------------------------------------


class OkPageOnInvalidInput(GatewayApp):
    """Answers invalid input with a 200 HTML page (a catch-all proxy's "OK"): no error a client can use."""

    async def on_error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, GatewayError) and exc.code in FUZZ_VALIDATION_CODES:
            return Response("<html><body>OK</body></html>", status_code=200, media_type="text/html")
        return await super().on_error(request, exc)


mutant("ok-page-on-invalid-input", {"FUZZ-001", "FUZZ-002", "FUZZ-003"}, app=OkPageOnInvalidInput)
