"""ASYNC: how a gateway surfaces provider tasks (DashScope tasks, Replicate predictions)."""

from __future__ import annotations

from harness.checklib import (
    DASHSCOPE_TASK_MODELS,
    SPEC_DASHSCOPE_TASKS,
    SPEC_JOBS,
    SPEC_QWEN_IMAGE_ASYNC,
    SPEC_REPLICATE,
    decode_b64,
    describe,
    failure_text,
    json_object,
    short,
)
from harness.context import CheckContext
from harness.gateway.client import JobResult
from harness.profile import ModelRoute
from harness.registry import MUST, SHOULD, check


def task_route(t: CheckContext) -> ModelRoute:
    return t.route_where("image.generate",
                         lambda r: r.provider == "dashscope" and r.upstream_model in
                         DASHSCOPE_TASK_MODELS, "a DashScope async-task model")


def bounded(t: CheckContext, scenario: str, route: ModelRoute) -> JobResult:
    """Run a job, turning a client-side timeout into this check's failure (not an error)."""
    with t.bounded():
        return t.client.generate_image(route.alias, t.prompt(scenario=scenario))


def played(t: CheckContext, scenario: str, route: ModelRoute) -> JobResult:
    """`bounded`, for a failure path: it only counts if the provider really played it."""
    result = bounded(t, scenario, route)
    t.expect_played(scenario, describe(result))
    return result


@check("ASYNC-001", MUST, needs="image.generate", spec=SPEC_JOBS)
def submit_answers_with_job_or_result(t: CheckContext) -> None:
    """The submit answers within the bound with a job id (async dialects) or a complete result."""
    route = task_route(t)
    with t.bounded("The submit must answer within the profile's request bound."):
        response = t.client.request(
            "POST", "/v1/images/generations",
            params=dict(t.client.dialect.submit_query) if t.client.dialect.is_async else None,
            json={"model": route.alias, "prompt": t.prompt()},
            headers=t.client.model_headers(route.alias))
    body = json_object(response)
    job_id = body.get(t.client.dialect.id_field)
    complete = isinstance(body.get("data"), list) and body["data"]
    if t.client.dialect.is_async:
        t.expect(response.status_code in (200, 201, 202) and (job_id or complete),
                 "An async submit must answer with a job id (or a complete result).",
                 f"2xx with `{t.client.dialect.id_field}`",
                 f"{response.status_code} {short(response.text)}")
    else:
        t.expect(response.status_code == 200 and complete,
                 "A sync gateway must answer with the complete result.",
                 "200 with data[]", f"{response.status_code} {short(response.text)}")


@check("ASYNC-002", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE_ASYNC)
def task_reaches_success_with_data(t: CheckContext) -> None:
    """Following an upstream task to success yields normalized data[] with url or b64_json."""
    route = task_route(t)
    result = bounded(t, "image-async", route)
    t.expect(result.status == "succeeded" and result.data,
             "A task that succeeds upstream must succeed for the client with data[].",
             "status succeeded with data[]", describe(result))
    bad = [d for d in result.data if not (isinstance(d, dict) and (d.get("url") or
                                                                   d.get("b64_json")))]
    t.expect(not bad, "Every data[] item must carry `url` or `b64_json`.",
             "data[i].url or data[i].b64_json", short(result.data))


@check("ASYNC-003", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_TASKS)
def failed_task_surfaces_as_failure(t: CheckContext) -> None:
    """An upstream FAILED task surfaces as a failure, never as success with missing data."""
    route = task_route(t)
    result = played(t, "image-async-failed", route)
    submit_ok = result.submit is not None and result.submit.status_code < 400
    t.expect(result.status in ("failed", "canceled", "expired") or not submit_ok,
             "A FAILED upstream task must reach the client as a failed job or an error.",
             "job status failed, or an HTTP error", describe(result))
    t.expect(not result.data or result.status != "succeeded",
             "A FAILED task must not be reported as success.", "no success", describe(result))


@check("ASYNC-004", SHOULD, needs="image.generate", spec=SPEC_DASHSCOPE_TASKS)
def failed_task_carries_provider_reason(t: CheckContext) -> None:
    """A FAILED task's provider code or message reaches the client."""
    route = task_route(t)
    result = played(t, "image-async-failed", route)
    text = failure_text(result)
    t.expect("DataInspectionFailed" in text or "inappropriate content" in text,
             "The client must learn why the task failed.",
             "the provider's code DataInspectionFailed or its message", short(text))


@check("ASYNC-005", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_TASKS)
def never_finishing_task_ends_in_bounded_error(t: CheckContext) -> None:
    """A task that never finishes ends in an error or a failed job, not a hang."""
    route = task_route(t)
    result = played(t, "image-async-never", route)
    t.expect(not result.timed_out,
             "A never-finishing upstream task must end within the profile's job bound.",
             f"a terminal job state within {t.profile.timeouts.job:g}s",
             f"still {result.status} after {result.elapsed:.1f}s")
    submit_ok = result.submit is not None and result.submit.status_code < 400
    t.expect(result.status in ("failed", "expired", "canceled") or not submit_ok,
             "A never-finishing task must end as a failure.", "failed or expired, or an error",
             describe(result))


@check("ASYNC-006", MUST, needs="async", spec=SPEC_JOBS)
def job_id_stays_valid_through_lifecycle(t: CheckContext) -> None:
    """The job id is the same in every poll and still answers after the job has ended."""
    route = task_route(t)
    result = bounded(t, "image-async", route)
    t.expect(result.job_id, "The submit must return a job id.", "a job id", describe(result))
    assert result.job_id
    t.expect(all(pid == result.job_id for pid in result.poll_ids),
             "Every poll must answer for the same job.", f"id {result.job_id}",
             f"ids {result.poll_ids}")
    again = t.client.poll(result.job_id)
    body = again.json() if again.status_code == 200 else {}
    t.expect(again.status_code == 200 and t.client.canonical(body) == result.status,
             "A finished job must stay readable with its final state.",
             f"200 with status {result.status}", f"{again.status_code} {short(again.text)}")


@check("ASYNC-007", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE_ASYNC)
def result_bytes_equal_provider_image(t: CheckContext) -> None:
    """The image the client gets is byte-identical to the provider's image."""
    route = task_route(t)
    with t.bounded():
        result = t.client.generate_image(route.alias, t.prompt(scenario="image-async"),
                                         response_format="b64_json")
    t.expect(result.data, "The job must succeed with data[].", "data[]", describe(result))
    item = result.data[0]
    got = decode_b64(item.get("b64_json")) if item.get("b64_json") else (
        t.client.fetch(item["url"]) if item.get("url") else None)
    want = t.provider_file("dashscope-2.png")
    t.expect(got == want, "The client must receive the provider's image bytes unchanged.",
             f"{len(want)} bytes, sha256 of dashscope-2.png",
             f"{len(got) if got else 0} bytes that differ")


@check("ASYNC-008", MUST, needs="image.generate", spec=SPEC_REPLICATE)
def failed_prediction_surfaces_as_failure(t: CheckContext) -> None:
    """A failed Replicate prediction surfaces as a failure, never as success."""
    route = t.route("replicate", "image.generate")
    result = played(t, "prediction-failed", route)
    submit_ok = result.submit is not None and result.submit.status_code < 400
    t.expect((result.status in ("failed", "canceled") or not submit_ok) and result.status != "succeeded",
             "A failed prediction must reach the client as a failure.",
             "job status failed, or an HTTP error", describe(result))


@check("ASYNC-009", MUST, needs="image.generate", spec=SPEC_REPLICATE)
def prediction_output_becomes_data(t: CheckContext) -> None:
    """A succeeded Replicate prediction's output files become data[] with the same image."""
    route = t.route("replicate", "image.generate")
    result = bounded(t, "prediction", route)
    t.expect(result.status == "succeeded" and result.data,
             "A succeeded prediction must give data[].", "status succeeded with data[]",
             describe(result))
    item = result.data[0]
    got = decode_b64(item.get("b64_json")) if item.get("b64_json") else (
        t.client.fetch(item["url"]) if item.get("url") else None)
    t.expect(got == t.provider_file("replicate-1.png"),
             "data[0] must be the prediction's output image.", "the bytes of replicate-1.png",
             short(item))


@check("ASYNC-010", SHOULD, needs="image.generate", spec=SPEC_DASHSCOPE_TASKS)
def partial_task_reports_only_real_images(t: CheckContext) -> None:
    """A partly failed task reports only the images that exist."""
    route = task_route(t)
    with t.bounded():
        result = t.client.generate_image(route.alias, t.prompt(scenario="image-async-partial"), n=2)
    t.expect_played("image-async-partial", describe(result))
    if result.status == "failed":
        t.note("the gateway failed the partly failed task as a whole; acceptable")
        return
    t.expect(result.status == "succeeded", "The task must end, as a success or a failure.",
             "succeeded or failed", describe(result))
    real = [d for d in result.data if isinstance(d, dict) and (d.get("url") or d.get("b64_json"))]
    t.expect(len(result.data) == 1 and len(real) == 1,
             "Only the image that succeeded may be reported.", "exactly 1 image in data[]",
             short(result.data))


@check("ASYNC-011", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_TASKS)
def task_is_polled_by_its_id(t: CheckContext) -> None:
    """The gateway polls GET /api/v1/tasks/{task_id} with the id DashScope returned."""
    route = task_route(t)
    bounded(t, "image-async", route)
    records = t.upstream("dashscope")
    created = [r.task for r in records if r.method == "POST" and r.task]
    polled = {r.task for r in records if r.method == "GET" and r.path.startswith("/api/v1/tasks/")}
    t.expect(created and created[0] in polled,
             "The gateway must poll the task it created.",
             f"GET /api/v1/tasks/{created[0] if created else '<task_id>'}",
             ", ".join(f"{r.method} {r.path}" for r in records))


@check("ASYNC-012", SHOULD, needs="image.generate", spec=SPEC_REPLICATE)
def canceled_prediction_is_not_success(t: CheckContext) -> None:
    """A canceled Replicate prediction does not surface as success."""
    route = t.route("replicate", "image.generate")
    result = played(t, "prediction-canceled", route)
    t.expect(result.status != "succeeded" and not result.data,
             "A canceled prediction must not be reported as success.",
             "failed/canceled job or an error", describe(result))
