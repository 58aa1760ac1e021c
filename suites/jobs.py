"""ASYNC: how a gateway surfaces provider tasks (DashScope tasks, Replicate predictions)."""

from __future__ import annotations

import secrets

from harness.api import (
    CLIENT,
    MUST,
    SHOULD,
    SPEC_DASHSCOPE_ERRORS,
    SPEC_DASHSCOPE_TASKS,
    SPEC_JOBS,
    SPEC_QWEN_IMAGE_ASYNC,
    SPEC_REPLICATE,
    Driver,
    JobResult,
    Judgement,
    ModelRoute,
    UpstreamUnavailable,
    check,
    decode_b64,
    describe,
    failure_text,
    is_dashscope_task_image,
    json_object,
    paths,
    reads_as_server_fault,
    scenario,
    sha256_hex,
    short,
    submits,
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
        dialect = s.client.dialect
        query = dict(dialect.submit_query) if dialect.is_async else None
        headers = dict(dialect.submit_headers) if dialect.is_async else None
        s.request("submit", "POST", "/v1/images/generations", alias=route.alias,
                  body={"model": route.alias}, params=query, headers=headers)


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


# provider -> (step, cassette): a job whose provider fails behind it, for the providers that have
# no task of their own (OpenAI answers images synchronously; Replicate can fail the create).
PROVIDER_JOB_FAULTS = {"openai": ("openai job error-500", "error-500"),
                       "replicate": ("replicate job error-500", "error-500")}


@scenario("task-fails")
def submit_a_task_that_fails(s: Driver) -> None:
    """A DashScope task the provider ends as FAILED (DataInspectionFailed), and a job on OpenAI's
    and Replicate's image alias whose provider answers 500."""
    one_job(s, task_route_of(s), "image-async-failed")
    for provider, (step, play) in PROVIDER_JOB_FAULTS.items():
        route = s.profile.route_for(provider, "image.generate")
        if route is not None:
            s.generate(step, route.alias, play=play)


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


@check("ASYNC-001", MUST, needs="image.generate", spec=SPEC_JOBS, scenario="task-submit", observes=CLIENT)
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
                 f"2xx with `{dialect.id_field}`", f"{response.status_code} {short(response.text)}",
                 unless=t.unless_served("submit"))
    else:
        t.expect(response.status_code == 200 and complete,
                 "A sync gateway must answer with the complete result.",
                 "200 with data[]", f"{response.status_code} {short(response.text)}",
                 unless=t.unless_served("submit"))


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
    """An upstream failure behind a job (a DashScope FAILED task, an OpenAI or Replicate 500)
    surfaces as a failure, never as success with missing data; judged per provider routed."""
    judged = [(JOB, "image-async-failed")] if any(is_dashscope_task_image(r) for r in t.profile.models) else []
    judged += [PROVIDER_JOB_FAULTS[p] for p in PROVIDER_JOB_FAULTS if t.profile.route_for(p, "image.generate")]
    if not judged:
        task_route(t)  # skips: nothing of this scenario applies to the profile
    for step, play in judged:
        result = t.job(step, bounded=True)
        t.expect_played(step, play, describe(result))
        submit_ok = result.submit is not None and result.submit.status_code < 400
        # A failed job or an HTTP error is never a success: no second assertion for "not succeeded".
        t.expect(result.status in ("failed", "canceled", "expired") or not submit_ok,
                 f"A provider failure ({step}) must reach the client as a failed job or an error.",
                 "job status failed, or an HTTP error", describe(result))


@check("ASYNC-004", MUST, needs="image.generate", spec=SPEC_DASHSCOPE_ERRORS, scenario="task-fails")
def failed_task_carries_provider_reason(t: Judgement) -> None:
    """A FAILED task's provider code or message reaches the client, and a content-policy failure
    does not read as a server fault.

    Rests on the DashScope error-code page (spec): "400 DataInspectionFailed: Input or output data
    may contain inappropriate content", a client-side cause (HTTP 400), and on the task API
    (manage-asynchronous-tasks), whose FAILED task carries `code` and `message`."""
    task_route(t)
    result = played(t, "image-async-failed")
    text = failure_text(result)
    t.expect("DataInspectionFailed" in text or "inappropriate content" in text,
             "The client must learn why the task failed.",
             "the provider's code DataInspectionFailed or its message", short(text))
    t.expect(not reads_as_server_fault(result),
             "A content-policy failure must not look like a server fault (a retry will not help).",
             "a 4xx or a failed job whose error is not a server_error/5xx", describe(result))


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


@check("ASYNC-006", MUST, needs="async", spec=SPEC_JOBS, scenario="task-succeeds", observes=CLIENT)
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
    """A failed Replicate prediction surfaces as a failure with Replicate's reason, never as
    success, and its content flag does not read as a server fault.

    Rests on Replicate's HTTP reference (spec), the prediction object: "status ... failed" and
    "error: If the prediction failed, the error message"."""
    t.route("replicate", "image.generate")
    result = played(t, "prediction-failed")
    submit_ok = result.submit is not None and result.submit.status_code < 400
    t.expect((result.status in ("failed", "canceled") or not submit_ok) and result.status != "succeeded",
             "A failed prediction must reach the client as a failure.",
             "job status failed, or an HTTP error", describe(result))
    # The prediction's `error` (openai_replicate.md E.7: "Model failures are not HTTP errors. The
    # prediction gets status failed with error set to a string") is a content flag here.
    t.expect("flagged as sensitive" in failure_text(result) or "E005" in failure_text(result),
             "The client must learn why the prediction failed.",
             "Replicate's error: The input or output was flagged as sensitive. (E005)", describe(result))
    t.expect(not reads_as_server_fault(result),
             "A content-policy failure must not look like a server fault (a retry will not help).",
             "a 4xx or a failed job whose error is not a server_error/5xx", describe(result))


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


DUPLICATE = "same request twice"
SPEC_RFC9110_IDEMPOTENT = "https://www.rfc-editor.org/rfc/rfc9110#name-idempotent-methods"


@scenario("duplicate-submit")
def submit_the_same_request_twice(s: Driver) -> None:
    """The same image request (same body, same key) submitted twice through the first image alias,
    with the profile's idempotency header when it declares one."""
    routes = s.profile.routes_for("image.generate")
    if routes:
        header = s.profile.idempotency_header
        s.generate_twice(DUPLICATE, routes[0].alias,
                         headers={header: f"gwconf-{secrets.token_hex(8)}"} if header else None)


@check("ASYNC-013", MUST, needs="image.generate", spec=SPEC_RFC9110_IDEMPOTENT, scenario="duplicate-submit")
def duplicate_submissions_are_separate_jobs(t: Judgement) -> None:
    """Two identical submissions become two jobs with distinct ids, each with its own result and
    its own upstream request; a gateway that declares idempotency keys gives one job instead.

    Rests on RFC 9110, 9.2.2 "Idempotent Methods": "PUT, DELETE, and safe request methods are
    idempotent", and POST is not: two POSTs are two requests, unless the gateway declares
    idempotency keys (profile `idempotency_header`) and is judged by that declaration."""
    value = t.step(DUPLICATE, bounded=True).value.get("jobs")
    if not isinstance(value, list) or len(value) != 2:
        raise UpstreamUnavailable(f"step {DUPLICATE!r} recorded no pair of jobs")
    first, second = (JobResult.from_dict(v) for v in value)
    idempotent = t.profile.idempotency_header is not None
    if idempotent:
        t.note(f"the profile declares idempotency keys ({t.profile.idempotency_header}): one job expected")
    t.expect(all(r.status == "succeeded" and r.data for r in (first, second)),
             "Each of the two submissions must end with a result.",
             "two jobs succeeded with data[]", f"first: {describe(first)}; second: {describe(second)}",
             unless=t.unless_served(DUPLICATE))
    if t.profile.dialect.is_async:
        t.expect((first.job_id == second.job_id) == idempotent and first.job_id and second.job_id,
                 "The same key must give the same job." if idempotent else
                 "Two identical submissions must be two jobs: a job id may not be derived from the request.",
                 "the same job id twice" if idempotent else "two distinct job ids",
                 f"{first.job_id!r} and {second.job_id!r}")
    sent = submits(t.upstream(DUPLICATE))
    wanted = 1 if idempotent else 2
    t.expect(len(sent) == wanted,
             "Each submission must reach the provider: a repeat may not be served from a cache."
             if not idempotent else "A repeated idempotency key must not reach the provider again.",
             f"{wanted} upstream submission(s)", f"{len(sent)}: {', '.join(paths(sent))}",
             unless=t.unless_reached(DUPLICATE))
