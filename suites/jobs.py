"""ASYNC: how a gateway surfaces provider tasks (DashScope tasks, Replicate predictions)."""

from __future__ import annotations

from harness.api import (
    MUST,
    SHOULD,
    SPEC_DASHSCOPE_TASKS,
    SPEC_JOBS,
    SPEC_QWEN_IMAGE_ASYNC,
    SPEC_REPLICATE,
    Driver,
    JobResult,
    Judgement,
    ModelRoute,
    check,
    decode_b64,
    describe,
    failure_text,
    is_dashscope_task_image,
    json_object,
    scenario,
    sha256_hex,
    short,
)

JOB = "job"  # the one generate step of each job scenario
READ_AGAIN = "read again"
READ_AS_B = "read with key B"
FETCH = "fetch data[0].url"


def task_route_of(s: Driver) -> ModelRoute | None:
    return s.route_where("image.generate", is_dashscope_task_image)


def task_route(t: Judgement) -> ModelRoute:
    return t.route_where("image.generate", is_dashscope_task_image, "a DashScope async-task model")


def one_job(s: Driver, route: ModelRoute | None, play: str, **params: object) -> JobResult | None:
    return None if route is None else s.generate(JOB, route.alias, play=play, **params)


def fetch_first(s: Driver, result: JobResult | None) -> None:
    """Download data[0].url when that is how the image came back."""
    if result is not None and result.data and isinstance(result.data[0], dict) and result.data[0].get("url") \
            and not result.data[0].get("b64_json"):
        s.fetch(FETCH, result.data[0])


@scenario("task-submit")
def submit_a_task(s: Driver) -> None:
    """One raw submit of the DashScope async-task alias, as the dialect submits."""
    route = task_route_of(s)
    if route is not None:
        query = dict(s.client.dialect.submit_query) if s.client.dialect.is_async else None
        s.request("submit", "POST", "/v1/images/generations", alias=route.alias,
                  body={"model": route.alias}, params=query)


@scenario("task-succeeds")
def follow_a_task_to_success(s: Driver) -> None:
    """A DashScope task followed to success; the job read again, and read with the second key."""
    result = one_job(s, task_route_of(s), "image-async")
    if result is not None and result.job_id:
        s.poll(READ_AGAIN, result.job_id)
        if s.env.api_key_b:
            s.poll(READ_AS_B, result.job_id, key=s.env.api_key_b)


@scenario("task-b64")
def follow_a_task_asking_b64(s: Driver) -> None:
    """A DashScope task asked for b64_json, followed to success; a URL answer is downloaded."""
    fetch_first(s, one_job(s, task_route_of(s), "image-async", response_format="b64_json"))


@scenario("task-fails")
def submit_a_task_that_fails(s: Driver) -> None:
    """A DashScope task the provider ends as FAILED (DataInspectionFailed)."""
    one_job(s, task_route_of(s), "image-async-failed")


@scenario("task-never-ends")
def submit_a_task_that_never_ends(s: Driver) -> None:
    """A DashScope task that stays RUNNING for ever."""
    one_job(s, task_route_of(s), "image-async-never")


@scenario("task-partial")
def submit_a_task_that_partly_fails(s: Driver) -> None:
    """A DashScope task for two images of which one fails."""
    one_job(s, task_route_of(s), "image-async-partial", n=2)


@scenario("prediction-succeeds")
def follow_a_prediction(s: Driver) -> None:
    """A Replicate prediction followed to success; a URL answer is downloaded."""
    fetch_first(s, one_job(s, s.profile.route_for("replicate", "image.generate"), "prediction"))


@scenario("prediction-fails")
def submit_a_prediction_that_fails(s: Driver) -> None:
    """A Replicate prediction that fails."""
    one_job(s, s.profile.route_for("replicate", "image.generate"), "prediction-failed")


@scenario("prediction-canceled")
def submit_a_prediction_that_is_canceled(s: Driver) -> None:
    """A Replicate prediction that is canceled."""
    one_job(s, s.profile.route_for("replicate", "image.generate"), "prediction-canceled")


def played(t: Judgement, play: str) -> JobResult:
    """The job: it only counts if the provider really played it (else the check is blocked by
    the routing check of its alias, when that failed)."""
    result = t.job(JOB, bounded=True)
    t.expect_played(JOB, play, describe(result))
    return result


def delivered(t: Judgement, result: JobResult) -> tuple[str, int] | None:
    """The sha256 and size of the first image the client got (base64 or downloaded URL)."""
    item = result.data[0]
    if item.get("b64_json"):
        raw = decode_b64(item.get("b64_json"))
        return None if raw is None else (sha256_hex(raw), len(raw))
    if item.get("url"):
        fetched = t.step(FETCH).value.get("fetched")
        return None if not fetched else (fetched["sha256"], fetched["size"])
    return None


@check("ASYNC-001", MUST, needs="image.generate", spec=SPEC_JOBS, scenario="task-submit")
def submit_answers_with_job_or_result(t: Judgement) -> None:
    """The submit answers within the bound with a job id (async dialects) or a complete result."""
    task_route(t)
    response = t.answer("submit", bounded="The submit must answer within the profile's request bound.")
    body = json_object(response)
    dialect = t.profile.dialect
    job_id = body.get(dialect.id_field)
    complete = isinstance(body.get("data"), list) and body["data"]
    if dialect.is_async:
        t.expect(response.status_code in (200, 201, 202) and (job_id or complete),
                 "An async submit must answer with a job id (or a complete result).",
                 f"2xx with `{dialect.id_field}`", f"{response.status_code} {short(response.text)}")
    else:
        t.expect(response.status_code == 200 and complete,
                 "A sync gateway must answer with the complete result.",
                 "200 with data[]", f"{response.status_code} {short(response.text)}")


@check("ASYNC-002", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE_ASYNC, scenario="task-succeeds")
def task_reaches_success_with_data(t: Judgement) -> None:
    """Following an upstream task to success yields normalized data[] with url or b64_json."""
    task_route(t)
    result = played(t, "image-async")
    t.expect(result.status == "succeeded" and result.data,
             "A task that succeeds upstream must succeed for the client with data[].",
             "status succeeded with data[]", describe(result))
    bad = [d for d in result.data if not (isinstance(d, dict) and (d.get("url") or d.get("b64_json")))]
    t.expect(not bad, "Every data[] item must carry `url` or `b64_json`.",
             "data[i].url or data[i].b64_json", short(result.data))


@check("ASYNC-003", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_TASKS, scenario="task-fails")
def failed_task_surfaces_as_failure(t: Judgement) -> None:
    """An upstream FAILED task surfaces as a failure, never as success with missing data."""
    task_route(t)
    result = played(t, "image-async-failed")
    submit_ok = result.submit is not None and result.submit.status_code < 400
    # A failed job or an HTTP error is never a success: no second assertion for "not succeeded".
    t.expect(result.status in ("failed", "canceled", "expired") or not submit_ok,
             "A FAILED upstream task must reach the client as a failed job or an error.",
             "job status failed, or an HTTP error", describe(result))


@check("ASYNC-004", SHOULD, needs="image.generate", spec=SPEC_DASHSCOPE_TASKS, scenario="task-fails")
def failed_task_carries_provider_reason(t: Judgement) -> None:
    """A FAILED task's provider code or message reaches the client."""
    task_route(t)
    text = failure_text(played(t, "image-async-failed"))
    t.expect("DataInspectionFailed" in text or "inappropriate content" in text,
             "The client must learn why the task failed.",
             "the provider's code DataInspectionFailed or its message", short(text))


@check("ASYNC-005", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_TASKS, scenario="task-never-ends")
def never_finishing_task_ends_in_bounded_error(t: Judgement) -> None:
    """A task that never finishes ends in an error or a failed job, not a hang."""
    task_route(t)
    result = played(t, "image-async-never")
    t.expect(not result.timed_out,
             "A never-finishing upstream task must end within the profile's job bound.",
             f"a terminal job state within {t.profile.timeouts.job:g}s",
             f"still {result.status} after {result.elapsed:.1f}s")
    submit_ok = result.submit is not None and result.submit.status_code < 400
    t.expect(result.status in ("failed", "expired", "canceled") or not submit_ok,
             "A never-finishing task must end as a failure.", "failed or expired, or an error",
             describe(result))


@check("ASYNC-006", MUST, needs="async", spec=SPEC_JOBS, scenario="task-succeeds")
def job_id_stays_valid_through_lifecycle(t: Judgement) -> None:
    """The job id is the same in every poll and still answers after the job has ended."""
    task_route(t)
    result = t.job(JOB, bounded=True)
    t.expect(result.job_id, "The submit must return a job id.", "a job id", describe(result))
    t.expect(all(pid == result.job_id for pid in result.poll_ids),
             "Every poll must answer for the same job.", f"id {result.job_id}",
             f"ids {result.poll_ids}")
    again = t.answer(READ_AGAIN)
    status = t.step(READ_AGAIN).value.get("status") if again.status_code == 200 else None
    t.expect(again.status_code == 200 and status == result.status,
             "A finished job must stay readable with its final state.",
             f"200 with status {result.status}", f"{again.status_code} {short(again.text)}")


@check("ASYNC-007", MUST, needs="image.generate", spec=SPEC_QWEN_IMAGE_ASYNC, scenario="task-b64")
def result_bytes_equal_provider_image(t: Judgement) -> None:
    """The image the client gets is byte-identical to the provider's image."""
    task_route(t)
    result = played(t, "image-async")
    t.expect(result.data, "The job must succeed with data[].", "data[]", describe(result))
    got = delivered(t, result)
    want = t.provider_file("dashscope-2.png")
    t.expect(got is not None and got[0] == sha256_hex(want),
             "The client must receive the provider's image bytes unchanged.",
             f"{len(want)} bytes, sha256 of dashscope-2.png",
             f"{got[1] if got else 0} bytes that differ")


@check("ASYNC-008", MUST, needs="image.generate", spec=SPEC_REPLICATE, scenario="prediction-fails")
def failed_prediction_surfaces_as_failure(t: Judgement) -> None:
    """A failed Replicate prediction surfaces as a failure, never as success."""
    t.route("replicate", "image.generate")
    result = played(t, "prediction-failed")
    submit_ok = result.submit is not None and result.submit.status_code < 400
    t.expect((result.status in ("failed", "canceled") or not submit_ok) and result.status != "succeeded",
             "A failed prediction must reach the client as a failure.",
             "job status failed, or an HTTP error", describe(result))


@check("ASYNC-009", MUST, needs="image.generate", spec=SPEC_REPLICATE, scenario="prediction-succeeds")
def prediction_output_becomes_data(t: Judgement) -> None:
    """A succeeded Replicate prediction's output files become data[] with the same image."""
    t.route("replicate", "image.generate")
    result = played(t, "prediction")
    t.expect(result.status == "succeeded" and result.data,
             "A succeeded prediction must give data[].", "status succeeded with data[]",
             describe(result))
    got = delivered(t, result)
    t.expect(got is not None and got[0] == sha256_hex(t.provider_file("replicate-1.png")),
             "data[0] must be the prediction's output image.", "the bytes of replicate-1.png",
             short(result.data[0]))


@check("ASYNC-010", SHOULD, needs="image.generate", spec=SPEC_DASHSCOPE_TASKS, scenario="task-partial")
def partial_task_reports_only_real_images(t: Judgement) -> None:
    """A partly failed task reports only the images that exist."""
    task_route(t)
    result = played(t, "image-async-partial")
    if result.status == "failed":
        t.note("the gateway failed the partly failed task as a whole; acceptable")
        return
    t.expect(result.status == "succeeded", "The task must end, as a success or a failure.",
             "succeeded or failed", describe(result))
    real = [d for d in result.data if isinstance(d, dict) and (d.get("url") or d.get("b64_json"))]
    t.expect(len(result.data) == 1 and len(real) == 1,
             "Only the image that succeeded may be reported.", "exactly 1 image in data[]",
             short(result.data))


@check("ASYNC-011", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_TASKS, scenario="task-succeeds")
def task_is_polled_by_its_id(t: Judgement) -> None:
    """The gateway polls GET /api/v1/tasks/{task_id} with the id DashScope returned."""
    task_route(t)
    played(t, "image-async")
    records = t.upstream(JOB, "dashscope")
    created = [r.task for r in records if r.method == "POST" and r.task]
    polled = {r.task for r in records if r.method == "GET" and r.path.startswith("/api/v1/tasks/")}
    t.expect(created and created[0] in polled,
             "The gateway must poll the task it created.",
             f"GET /api/v1/tasks/{created[0] if created else '<task_id>'}",
             ", ".join(f"{r.method} {r.path}" for r in records))


@check("ASYNC-012", SHOULD, needs="image.generate", spec=SPEC_REPLICATE, scenario="prediction-canceled")
def canceled_prediction_is_not_success(t: Judgement) -> None:
    """A canceled Replicate prediction does not surface as success."""
    t.route("replicate", "image.generate")
    result = played(t, "prediction-canceled")
    t.expect(result.status != "succeeded" and not result.data,
             "A canceled prediction must not be reported as success.",
             "failed/canceled job or an error", describe(result))
