"""VIDEO: video jobs through the gateway's dialect, upstream DashScope's wan video-synthesis tasks."""

from __future__ import annotations

import secrets

from harness.api import (
    CLIENT,
    MUST,
    SHOULD,
    SPEC_DASHSCOPE_TASKS,
    CapturedRequest,
    CheckSkipped,
    Driver,
    JobResult,
    Judgement,
    ModelRoute,
    check,
    dashscope_parameters,
    describe,
    failure_text,
    scenario,
    sha256_hex,
    short,
    submits,
)

SPEC_WAN_VIDEO = "https://docs.qwencloud.com/api-reference/video-generation/wan-text-to-video"
DASHSCOPE_VIDEO = "/api/v1/services/aigc/video-generation/video-synthesis"
VIDEO_FILE = "dashscope-video-1.mp4"  # what the wan cassettes hand out
JOB = "video"
SUBMIT = "submit"
CONTENT = "content"
CANCEL = "cancel"
READ_AFTER_CANCEL = "read after cancel"
# What the client asks for: OpenAI's video fields, and DashScope's own next to them.
VIDEO_PARAMS = {"seconds": "5", "size": "1280x720", "prompt_extend": False, "seed": 42}
FIRST_FRAME = "https://cdn.example.invalid/first-frame.png"
GHOST = "video_gwconfghost"  # the start of a video id no gateway handed out


def is_t2v(route: ModelRoute) -> bool:
    return route.provider == "dashscope" and "-t2v" in route.upstream_model


def is_i2v(route: ModelRoute) -> bool:
    return route.provider == "dashscope" and "-i2v" in route.upstream_model


def t2v_of(s: Driver) -> ModelRoute | None:
    return s.route_where("video.generate", is_t2v)


def t2v(t: Judgement) -> ModelRoute:
    return t.route_where("video.generate", is_t2v, "a DashScope wan text-to-video model")


def one_video(s: Driver, play: str, **params: object) -> JobResult | None:
    route = t2v_of(s)
    return None if route is None else s.video(JOB, route.alias, play=play, **params)


@scenario("video-succeeds")
def follow_a_video_to_its_bytes(s: Driver) -> None:
    """A wan text-to-video job with OpenAI and DashScope parameters, followed to success; its bytes read."""
    result = one_video(s, "video-t2v", **VIDEO_PARAMS)
    if result is not None and result.job_id and result.status == "succeeded":
        s.video_content(CONTENT, result.job_id)


@scenario("video-i2v")
def submit_an_image_to_video_job(s: Driver) -> None:
    """A wan image-to-video job with its first frame as DashScope's img_url."""
    route = s.route_where("video.generate", is_i2v)
    if route is not None:
        s.video(JOB, route.alias, play="video-i2v", img_url=FIRST_FRAME, seconds="5")


@scenario("video-fails")
def submit_a_video_that_fails(s: Driver) -> None:
    """A wan video task the provider ends as FAILED (DataInspectionFailed)."""
    one_video(s, "video-failed")


@scenario("video-never-ends", waits=True)
def submit_a_video_that_never_ends(s: Driver) -> None:
    """A wan video task that stays RUNNING for ever."""
    one_video(s, "video-never")


@scenario("video-unknown-id")
def read_a_video_that_does_not_exist(s: Driver) -> None:
    """Read a video id the gateway never handed out, as job and as content."""
    dialect = s.client.dialect.for_video()
    ghost = GHOST + secrets.token_hex(8)
    if t2v_of(s) is not None:
        s.request("read", "GET", dialect.poll_path.format(id=ghost))
        s.request("content", "GET", dialect.content_path.format(id=ghost))
        s.keep_stray()  # a lookup of the ghost id upstream carries no marker: it is a stray


@scenario("video-cancel")
def cancel_a_queued_video(s: Driver) -> None:
    """Cancel a video job whose provider task is still PENDING, then read it."""
    route = t2v_of(s)
    if route is None or not s.client.dialect.for_video().cancel_path:
        return
    dialect = s.client.dialect.for_video()
    # Submitted, not followed: it is canceled while its task is still queued.
    answer = s.request(SUBMIT, "POST", dialect.video_path, alias=route.alias, body={"model": route.alias},
                       play="video-queued")
    try:
        job_id = answer.json().get(dialect.id_field) if answer is not None else None
    except (ValueError, AttributeError):
        job_id = None
    if isinstance(job_id, str) and job_id:
        s.cancel(CANCEL, job_id, job_step=SUBMIT)
        s.poll(READ_AFTER_CANCEL, job_id)


def video_submits(t: Judgement, step: str = JOB) -> list[CapturedRequest]:
    return submits(t.upstream(step, "dashscope"))


def submitted_parameters(t: Judgement) -> dict[str, object]:
    """The `parameters` of the video submit that reached DashScope."""
    t2v(t)
    t.job(JOB, bounded=True)
    sent = video_submits(t)
    return dashscope_parameters(sent[0]) if sent else {}


def played(t: Judgement, play: str) -> JobResult:
    result = t.job(JOB, bounded=True)
    t.expect_played(JOB, play, describe(result))
    return result


@check("VIDEO-001", MUST, needs="video.generate", spec=SPEC_WAN_VIDEO, scenario="video-succeeds")
def video_reaches_video_synthesis_async(t: Judgement) -> None:
    """The video model reaches DashScope's video-synthesis task route, with X-DashScope-Async: enable."""
    route = t2v(t)
    t.job(JOB, bounded=True)
    sent = video_submits(t)
    first = sent[0] if sent else None
    t.expect(first is not None and first.path == DASHSCOPE_VIDEO
             and first.json_body().get("model") == route.upstream_model,
             "A wan video model must be submitted to the video-synthesis task route as itself.",
             f"POST {DASHSCOPE_VIDEO} with model {route.upstream_model}",
             ", ".join(f"{r.method} {r.path} model={r.json_body().get('model')}" for r in sent) or "no submit")
    t.expect(first is not None and (first.header("x-dashscope-async") or "").lower() == "enable",
             "The video submit must carry X-DashScope-Async: enable (the route refuses sync calls).",
             "X-DashScope-Async: enable", str(first.header("x-dashscope-async") if first else None))


@check("VIDEO-002", MUST, needs="video.generate", spec=SPEC_WAN_VIDEO, scenario="video-succeeds")
def video_openai_parameters_become_dashscope_parameters(t: Judgement) -> None:
    """OpenAI's `seconds` and `size` reach DashScope as parameters.duration and size W*H."""
    params = submitted_parameters(t)
    t.expect(params.get("duration") == 5 and params.get("size") == "1280*720",
             "The video's length and size must reach the provider in its own words.",
             "parameters.duration 5 and parameters.size 1280*720", short(params),
             unless=t.unless_reached(JOB, provider="dashscope"))


@check("VIDEO-003", SHOULD, needs="video.generate", spec=SPEC_WAN_VIDEO, scenario="video-succeeds")
def video_vendor_parameters_pass_through(t: Judgement) -> None:
    """DashScope's own video fields (prompt_extend, seed) reach parameters unchanged."""
    params = submitted_parameters(t)
    t.expect(params.get("prompt_extend") is False and params.get("seed") == 42,
             "Vendor video fields must reach the provider's parameters unchanged.",
             "parameters.prompt_extend false and parameters.seed 42", short(params),
             unless=t.unless_reached(JOB, provider="dashscope"))


@check("VIDEO-004", MUST, needs="video.generate", spec=SPEC_DASHSCOPE_TASKS, scenario="video-succeeds", observes=CLIENT)
def video_submit_answers_with_an_id(t: Judgement) -> None:
    """The video submit answers within the request bound with a job id to follow."""
    t2v(t)
    result = t.job(JOB, bounded="The video submit must answer within the profile's request bound.")
    t.expect(result.submit is not None and result.submit.status_code < 300 and result.job_id,
             "A video submit must answer with the id of a job to follow.",
             f"2xx with `{t.profile.dialect.for_video().id_field}`", describe(result),
             unless=t.unless_served(JOB))


@check("VIDEO-005", MUST, needs="video.generate", spec=SPEC_DASHSCOPE_TASKS, scenario="video-succeeds", observes=CLIENT)
def video_polling_reaches_success(t: Judgement) -> None:
    """Polling the video job reaches success once the provider's task has succeeded."""
    t2v(t)
    result = t.job(JOB, bounded=True)
    t.expect(result.status == "succeeded" and not result.timed_out,
             "A video task that succeeds upstream must succeed for the client.",
             "job status succeeded", describe(result), unless=t.unless_served(JOB))


@check("VIDEO-006", MUST, needs="video.generate", spec=SPEC_WAN_VIDEO, scenario="video-succeeds")
def video_bytes_equal_provider_video(t: Judgement) -> None:
    """The video the client reads is byte-identical to the provider's MP4."""
    t2v(t)
    result = t.job(JOB, bounded=True)
    t.expect(result.status == "succeeded", "The video job must succeed before its bytes can be read.",
             "job status succeeded", describe(result), unless=t.unless_served(JOB))
    want = t.provider_file(VIDEO_FILE)
    fetched = t.step(CONTENT).value.get("fetched")
    t.expect(fetched and fetched["sha256"] == sha256_hex(want),
             "The client must receive the provider's video bytes unchanged.",
             f"{len(want)} bytes, sha256 of {VIDEO_FILE}",
             f"{fetched['size']} bytes that differ" if fetched else short(t.answer(CONTENT).text))


@check("VIDEO-007", MUST, needs="video.generate", spec=SPEC_DASHSCOPE_TASKS, scenario="video-fails")
def failed_video_surfaces_as_failure(t: Judgement) -> None:
    """A FAILED video task surfaces as a failed job or an error, never as success."""
    t2v(t)
    result = played(t, "video-failed")
    t.expect(result.status in ("failed", "canceled", "expired"),
             "A FAILED upstream video task must reach the client as a failure.",
             "job status failed, or an HTTP error", describe(result))


@check("VIDEO-008", SHOULD, needs="video.generate", spec=SPEC_DASHSCOPE_TASKS, scenario="video-fails")
def failed_video_carries_provider_reason(t: Judgement) -> None:
    """A FAILED video task's provider code or message reaches the client."""
    t2v(t)
    text = failure_text(played(t, "video-failed"))
    t.expect("DataInspectionFailed" in text or "inappropriate content" in text,
             "The client must learn why the video failed.",
             "the provider's code DataInspectionFailed or its message", short(text))


@check("VIDEO-009", MUST, needs="video.generate", spec=SPEC_DASHSCOPE_TASKS, scenario="video-never-ends")
def never_ending_video_ends_in_bound(t: Judgement) -> None:
    """A video task that never finishes ends, within the job bound, as a failure."""
    t2v(t)
    result = played(t, "video-never")
    t.expect(not result.timed_out and result.status in ("failed", "expired", "canceled"),
             "A never-finishing video task must end as a failure within the profile's job bound.",
             f"failed or expired within {t.profile.timeouts.job:g}s",
             f"{result.status} after {result.elapsed:.1f}s")


@check("VIDEO-010", MUST, needs="video.generate", spec=SPEC_DASHSCOPE_TASKS, scenario="video-unknown-id")
def unknown_video_is_404_locally(t: Judgement) -> None:
    """An unknown video id gets a 404, and the gateway asks no upstream and no public host about it."""
    t2v(t)
    answers = {name: t.answer(name, bounded=True) for name in ("read", "content")}
    t.expect(all(a.status_code == 404 for a in answers.values()),
             "A video id the gateway never handed out must be a 404.",
             "404 on the job and on its content",
             ", ".join(f"{n} {a.status_code}" for n, a in answers.items()))
    reached = [*t.upstream(), *(r for r in t.recording.stray if GHOST in r.path + str(r.query) + str(r.body))]
    t.expect(not reached, "An unknown video id must not be looked up upstream.", "no upstream request",
             ", ".join(f"{r.provider} {r.method} {r.path}" for r in reached))
    public = t.egress()
    t.expect(not public, "An unknown video id must not be looked up on a public host.", "no outbound attempt",
             ", ".join(f"{a.method} {a.target}" for a in public))


@check("VIDEO-011", MUST, needs="video.generate", spec=SPEC_WAN_VIDEO, scenario="video-i2v")
def image_to_video_carries_its_frame(t: Judgement) -> None:
    """An image-to-video model reaches video-synthesis with its first frame as input.img_url."""
    t.route_where("video.generate", is_i2v, "a DashScope wan image-to-video model")
    t.job(JOB, bounded=True)
    sent = video_submits(t)
    inputs = sent[0].json_body().get("input") if sent else None
    t.expect(sent and sent[0].path == DASHSCOPE_VIDEO and isinstance(inputs, dict)
             and inputs.get("img_url") == FIRST_FRAME,
             "The first frame must reach the provider as input.img_url on the video-synthesis route.",
             f"POST {DASHSCOPE_VIDEO} with input.img_url {FIRST_FRAME}",
             ", ".join(f"{r.method} {r.path} {short(r.json_body().get('input'))}" for r in sent) or "no submit",
             unless=t.unless_reached(JOB, provider="dashscope"))


@check("VIDEO-012", MUST, needs="video.generate", spec=SPEC_DASHSCOPE_TASKS, scenario="video-cancel")
def cancel_reaches_the_provider(t: Judgement) -> None:
    """Where the dialect has cancel: canceling a queued video cancels the provider's task, and the job
    then reads as canceled."""
    t2v(t)
    if not t.profile.dialect.for_video().cancel_path:
        raise CheckSkipped("the profile's dialect has no cancel route")
    submitted = t.answer(SUBMIT, bounded=True)
    t.expect(submitted.status_code < 300 and t.recording.step(CANCEL) is not None,
             "The video submit must answer with a job id to cancel.",
             f"2xx with `{t.profile.dialect.for_video().id_field}`",
             f"{submitted.status_code} {short(submitted.text)}", unless=t.unless_served(SUBMIT))
    created = [r.task for r in video_submits(t, SUBMIT) if r.task]
    canceled = [r for r in t.upstream(CANCEL, "dashscope")
                if r.method == "POST" and created and r.path == f"/api/v1/tasks/{created[0]}/cancel"]
    t.expect(canceled, "Canceling a video job must cancel the provider's task.",
             f"POST /api/v1/tasks/{created[0] if created else '<task_id>'}/cancel",
             ", ".join(f"{r.method} {r.path}" for r in t.upstream(CANCEL)) or "no upstream request")
    status = t.step(READ_AFTER_CANCEL).value.get("status")
    t.expect(t.answer(CANCEL).status_code < 300 and status == "canceled",
             "A canceled video job must say so.", "cancel answered 2xx, job status canceled",
             f"cancel {t.answer(CANCEL).status_code}, job status {status}")
