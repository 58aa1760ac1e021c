"""The official SDKs judge the mocks: unchanged but for their base URL, they get what the docs say.

Each provider also has a negative test: a mock built from a tampered copy of a cassette, to show
that these tests would notice a wrong wire shape.
"""

from __future__ import annotations

import base64
import importlib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.config._cassette import load_cassette
from harness.paths import CASSETTES_DIR
from harness.upstream import UpstreamSet, start_upstreams
from harness.upstream._markers import Marker, new_token

FILES_DIR = CASSETTES_DIR / "files"


class Lazy:
    """An SDK name, imported on first use: importing the three SDKs at collection cost every xdist
    worker 0.9 s, and only the workers that run these tests need them."""

    def __init__(self, module: str, name: str | None = None) -> None:
        self.module, self.name = module, name

    def resolve(self) -> Any:
        module = importlib.import_module(self.module)
        return getattr(module, self.name) if self.name else module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.resolve(), attr)


dashscope = Lazy("dashscope")
openai = Lazy("openai")
replicate = Lazy("replicate")
ImageSynthesis = Lazy("dashscope", "ImageSynthesis")
MultiModalConversation = Lazy("dashscope", "MultiModalConversation")
dashscope_base_api = Lazy("dashscope.client.base_api")
InvalidParameter = Lazy("dashscope.common.error", "InvalidParameter")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SDK_TIMEOUT = 10.0
DASHSCOPE_KEY = "sk-gwconf-test-dashscope-0000"
OPENAI_KEY = "sk-gwconf-test-openai-0000"
REPLICATE_TOKEN = "r8_gwconfTestToken0000"
TRANSLATION_OPTIONS = {
    "source_lang": "auto",
    "target_lang": "English",
    "terms": [{"source": "生物传感器", "target": "biological sensor"}],
    "tm_list": [{"source": "您好", "target": "Hello"}],
    "domains": "The sentence is from Ali Cloud IT domain.",
}


def marker(scenario: str | None = None) -> Marker:
    return Marker("SDK-001", new_token(), scenario)


def fetch(url: str) -> bytes:
    reply = httpx.get(url, timeout=SDK_TIMEOUT)
    reply.raise_for_status()
    return reply.content


def tampered_upstreams(tmp_path: Path, provider: str, scenario: str,
                       old: str, new: str) -> Iterator[UpstreamSet]:
    """Mocks serving one cassette whose text has `old` replaced by `new`."""
    source = CASSETTES_DIR / provider / f"{scenario}.yaml"
    text = source.read_text(encoding="utf-8")
    assert old in text, f"{source} has no {old!r} to tamper with"
    copy = tmp_path / f"{scenario}.yaml"
    copy.write_text(text.replace(old, new), encoding="utf-8")
    with start_upstreams([load_cassette(copy)], FILES_DIR) as running:
        yield running


# -- DashScope (dashscope SDK, 1.x surface) -----------------------------------------------------


@pytest.fixture
def dashscope_at(monkeypatch):
    """Point the SDK at a mock; its task polling sleeps are skipped (progress is per poll)."""
    monkeypatch.setattr(dashscope_base_api.resolve(), "time",
                        types.SimpleNamespace(time=dashscope_base_api.time.time,
                                              sleep=lambda seconds: None))

    def point(base_url: str) -> None:
        monkeypatch.setattr(dashscope.resolve(), "base_http_api_url", base_url + "/api/v1")
        monkeypatch.setattr(dashscope.resolve(), "api_key", DASHSCOPE_KEY)

    return point


def test_dashscope_async_call_and_wait_reach_succeeded_with_png(upstreams, dashscope_at):
    dashscope_at(upstreams.urls["dashscope"])
    submitted = ImageSynthesis.async_call(model="qwen-image-plus", prompt="three puppies",
                                          size="1328*1328", n=1)
    assert submitted.status_code == 200, submitted
    assert submitted.output.task_status == "PENDING"

    done = ImageSynthesis.wait(submitted)

    assert done.status_code == 200, done
    assert done.output.task_id == submitted.output.task_id
    assert done.output.task_status == "SUCCEEDED"
    assert fetch(done.output.results[0].url).startswith(PNG_SIGNATURE)


def test_dashscope_failed_task_comes_back_failed_with_its_code(upstreams, dashscope_at):
    dashscope_at(upstreams.urls["dashscope"])
    submitted = ImageSynthesis.async_call(
        model="qwen-image-plus", prompt=f"three puppies {marker('image-async-failed')}")
    done = ImageSynthesis.wait(submitted)

    assert done.output.task_status == "FAILED"
    assert done.output.code == "DataInspectionFailed"
    assert done.output.message


def test_dashscope_multimodal_conversation_returns_the_image(upstreams, dashscope_at):
    dashscope_at(upstreams.urls["dashscope"])
    answer = MultiModalConversation.call(
        model="qwen-image-2.0-pro",
        messages=[{"role": "user", "content": [{"text": "a hand-drawn poster"}]}],
        size="1328*1328", n=1, watermark=False)

    assert answer.status_code == 200, answer
    content = answer.output.choices[0].message.content
    assert fetch(content[0]["image"]).startswith(PNG_SIGNATURE)


@pytest.fixture
def dashscope_without_task_id(tmp_path):
    yield from tampered_upstreams(tmp_path, "dashscope", "image-async",
                                  ', "task_id": "0385dc79-5ff8-4d82-bcb6-000000000001"}', '}')


def test_dashscope_sdk_notices_a_submit_without_task_id(dashscope_without_task_id, dashscope_at):
    dashscope_at(dashscope_without_task_id.urls["dashscope"])
    submitted = ImageSynthesis.async_call(model="qwen-image-plus", prompt="three puppies")
    assert submitted.output.task_id is None
    with pytest.raises(InvalidParameter.resolve(), match="Task id required"):
        ImageSynthesis.wait(submitted)


@pytest.fixture
def dashscope_with_renamed_url(tmp_path):
    yield from tampered_upstreams(tmp_path, "dashscope", "image-async",
                                  '"url": "http://mock.gwconf.invalid/files/dashscope-2.png"',
                                  '"image_url": "http://mock.gwconf.invalid/files/dashscope-2.png"')


def test_dashscope_sdk_gets_no_image_from_a_renamed_url_field(dashscope_with_renamed_url,
                                                              dashscope_at):
    dashscope_at(dashscope_with_renamed_url.urls["dashscope"])
    done = ImageSynthesis.wait(ImageSynthesis.async_call(model="qwen-image-plus", prompt="x"))
    assert done.output.task_status == "SUCCEEDED"
    assert not done.output.results[0].url


# -- OpenAI (openai SDK) -----------------------------------------------------------------------


def openai_client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=OPENAI_KEY, timeout=SDK_TIMEOUT,
                         max_retries=0)


@pytest.mark.parametrize("model", ["dall-e-3", "dall-e-2", "gpt-image-1"])
def test_openai_retired_image_model_raises_not_found(upstreams, model):
    client = openai_client(upstreams.urls["openai"] + "/v1")
    with pytest.raises(openai.NotFoundError) as caught:
        client.images.generate(model=model, prompt="a sea otter", size="1024x1024")
    assert caught.value.code == "model_not_found"
    assert caught.value.body == {"message": f"The model `{model}` does not exist or you do not have access to it.",
                                 "type": "invalid_request_error", "param": None, "code": "model_not_found"}


def test_openai_generate_b64_model_returns_the_png_bytes(upstreams):
    client = openai_client(upstreams.urls["openai"] + "/v1")
    answer = client.images.generate(model="gpt-image-2", prompt="a sea otter")
    assert base64.b64decode(answer.data[0].b64_json) == (FILES_DIR / "openai-1.png").read_bytes()
    assert answer.usage.total_tokens > 0
    assert answer.output_format == "png"


def test_openai_edit_sends_multipart_and_returns_the_png(upstreams):
    client = openai_client(upstreams.urls["openai"] + "/v1")
    source = FILES_DIR / "input-1.png"
    mark = marker()
    with source.open("rb") as image:
        answer = client.images.edit(model="gpt-image-2", image=image,
                                    prompt=f"add snow {mark}")

    assert base64.b64decode(answer.data[0].b64_json) == (FILES_DIR / "openai-1.png").read_bytes()
    (captured,) = upstreams.captures.for_token(mark.token)
    assert captured.path == "/v1/images/edits"
    assert captured.body["model"] == "gpt-image-2"
    assert captured.body["image"]["size"] == source.stat().st_size


def test_openai_sdk_extra_body_reaches_dashscope_top_level(upstreams):
    client = openai_client(upstreams.urls["dashscope"] + "/compatible-mode/v1")
    mark = marker()
    answer = client.chat.completions.create(
        model="qwen-mt-turbo",
        messages=[{"role": "user", "content": f"我看到这个视频后没有笑 {mark}"}],
        extra_body={"translation_options": TRANSLATION_OPTIONS},
    )

    assert answer.choices[0].message.content
    (captured,) = upstreams.captures.for_token(mark.token)
    assert captured.path == "/compatible-mode/v1/chat/completions"
    assert captured.scenario == "mt-compatible"
    assert captured.body["translation_options"] == TRANSLATION_OPTIONS
    assert "extra_body" not in captured.body


def test_openai_sdk_raises_the_typed_error_with_retry_after(upstreams):
    client = openai_client(upstreams.urls["openai"] + "/v1")
    with pytest.raises(openai.RateLimitError) as caught:
        client.images.generate(model="gpt-image-2", prompt=f"x {marker('error-429')}")
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "7"


@pytest.fixture
def openai_with_renamed_b64(tmp_path):
    yield from tampered_upstreams(tmp_path, "openai", "image-b64", '"b64_json":', '"b64":')


def test_openai_sdk_gets_no_image_from_a_renamed_b64_field(openai_with_renamed_b64):
    client = openai_client(openai_with_renamed_b64.urls["openai"] + "/v1")
    answer = client.images.generate(model="gpt-image-2", prompt="a sea otter")
    assert answer.data[0].b64_json is None
    assert answer.data[0].url is None


# -- Replicate (replicate SDK) -----------------------------------------------------------------


def replicate_client(base_url: str) -> replicate.Client:
    client = replicate.Client(api_token=REPLICATE_TOKEN, base_url=base_url,
                              timeout=httpx.Timeout(SDK_TIMEOUT))
    client.poll_interval = 0.0  # progress is per poll, not per second
    return client


def test_replicate_create_and_wait_reach_succeeded_with_png(upstreams):
    client = replicate_client(upstreams.urls["replicate"])
    prediction = client.predictions.create(model="black-forest-labs/flux-schnell",
                                           input={"prompt": "an astronaut"})
    assert prediction.status == "starting"
    created_id = prediction.id

    prediction.wait()

    assert prediction.id == created_id
    assert prediction.status == "succeeded"
    assert fetch(prediction.output[0]).startswith(PNG_SIGNATURE)


def test_replicate_failed_prediction_carries_the_error(upstreams):
    client = replicate_client(upstreams.urls["replicate"])
    prediction = client.predictions.create(
        model="black-forest-labs/flux-schnell",
        input={"prompt": f"an astronaut {marker('prediction-failed')}"})
    prediction.wait()
    assert prediction.status == "failed"
    assert "(E005)" in prediction.error


def test_replicate_run_uses_prefer_wait_and_gets_the_file(upstreams):
    client = replicate_client(upstreams.urls["replicate"])
    mark = marker()
    output = client.run("black-forest-labs/flux-schnell",
                        input={"prompt": f"an astronaut {mark}"}, wait=True)

    # The SDK wraps https: outputs in FileOutput; the mock's loopback http URL stays a string.
    first = output[0]
    data = first.read() if hasattr(first, "read") else fetch(first)
    assert data.startswith(PNG_SIGNATURE)
    requests = upstreams.captures.for_token(mark.token)
    assert [r.method for r in requests] == ["POST"]  # no polling needed
    assert requests[0].header("prefer").startswith("wait")


def test_replicate_sdk_raises_on_a_problem_body(upstreams):
    client = replicate_client(upstreams.urls["replicate"])
    with pytest.raises(replicate.exceptions.ReplicateError) as caught:
        client.predictions.create(model="black-forest-labs/flux-schnell",
                                  input={"prompt": f"x {marker('error-422')}"})
    assert caught.value.status == 422


@pytest.fixture
def replicate_with_unknown_status(tmp_path):
    yield from tampered_upstreams(tmp_path, "replicate", "prediction",
                                  '"status": "succeeded"', '"status": "success"')


def test_replicate_sdk_rejects_an_unknown_status(replicate_with_unknown_status):
    client = replicate_client(replicate_with_unknown_status.urls["replicate"])
    prediction = client.predictions.create(model="black-forest-labs/flux-schnell",
                                           input={"prompt": "an astronaut"})
    with pytest.raises(ValueError, match="status"):  # pydantic's ValidationError
        prediction.wait()


# -- strictness through the SDKs: each documented refusal as the SDK surfaces it ---------------


def test_dashscope_sdk_gets_invalid_parameter_for_n_outside_the_range(upstreams, dashscope_at):
    dashscope_at(upstreams.urls["dashscope"])
    answer = MultiModalConversation.call(
        model="qwen-image-2.0-pro", messages=[{"role": "user", "content": [{"text": "a poster"}]}], n=7)
    assert answer.status_code == 400
    assert answer.code == "InvalidParameter"
    assert answer.message == "Required parameter(s) missing or invalid, please check the request parameters."


def test_dashscope_sdk_gets_invalid_parameter_for_a_task_n_outside_the_range(upstreams, dashscope_at):
    dashscope_at(upstreams.urls["dashscope"])
    submitted = ImageSynthesis.async_call(model="wan2.2-t2i-flash", prompt="three puppies", n=5)
    assert submitted.status_code == 400
    assert submitted.code == "InvalidParameter"


def test_openai_sdk_raises_bad_request_for_response_format_on_gpt_image_2(upstreams):
    client = openai_client(upstreams.urls["openai"] + "/v1")
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="gpt-image-2", prompt="a sea otter", response_format="url")
    assert (caught.value.code, caught.value.param) == ("unknown_parameter", "response_format")
    assert caught.value.body["message"] == "Unknown parameter: 'response_format'."


def test_openai_sdk_raises_bad_request_for_a_size_outside_gpt_image_2_rules(upstreams):
    client = openai_client(upstreams.urls["openai"] + "/v1")
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="gpt-image-2", prompt="a sea otter", size="1000x1000")  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.param) == ("invalid_value", "size")


def test_replicate_sdk_raises_input_validation_failed(upstreams):
    client = replicate_client(upstreams.urls["replicate"])
    with pytest.raises(replicate.exceptions.ReplicateError) as caught:
        client.predictions.create(model="black-forest-labs/flux-schnell", input={"prompt": "x", "num_outputs": 9})
    assert caught.value.status == 422
    assert caught.value.title == "Input validation failed"
    assert caught.value.detail == "- input.num_outputs: 9 is greater than the maximum of 4\n"


# -- DashScope video (wan through the video-synthesis task route) ------------------------------

MP4_BRANDS = (b"ftypisom", b"ftypmp42", b"ftypiso2")


@pytest.mark.parametrize("kwargs", [
    {"model": "wan2.6-t2v", "prompt": "A kitten running in the moonlight", "size": "1280*720", "duration": 5,
     "prompt_extend": True, "seed": 1},
    {"model": "wan2.6-i2v", "prompt": "A cat running on the grass", "img_url": "https://cdn.example.invalid/cat.png",
     "resolution": "720P", "duration": 5, "seed": 7},
])
def test_dashscope_video_synthesis_reaches_succeeded_with_an_mp4(upstreams, dashscope_at, kwargs):
    from dashscope import VideoSynthesis

    dashscope_at(upstreams.urls["dashscope"])
    submitted = VideoSynthesis.async_call(**kwargs)
    assert submitted.status_code == 200, submitted
    assert submitted.output.task_status == "PENDING"

    done = VideoSynthesis.wait(submitted)

    assert done.output.task_status == "SUCCEEDED", done
    assert done.output.task_id == submitted.output.task_id
    assert fetch(done.output.video_url)[4:12] in MP4_BRANDS
    assert done.usage.video_count == 1


def test_dashscope_video_failed_task_comes_back_failed_with_its_code(upstreams, dashscope_at):
    from dashscope import VideoSynthesis

    dashscope_at(upstreams.urls["dashscope"])
    submitted = VideoSynthesis.async_call(model="wan2.6-t2v",
                                          prompt=f"A kitten {marker('video-failed')}")
    done = VideoSynthesis.wait(submitted)

    assert done.output.task_status == "FAILED"
    assert done.output.code == "DataInspectionFailed"


def test_dashscope_video_model_without_its_image_is_refused(upstreams, dashscope_at):
    from dashscope import VideoSynthesis

    dashscope_at(upstreams.urls["dashscope"])
    submitted = VideoSynthesis.async_call(model="wan2.6-i2v", prompt="no first frame")
    assert submitted.status_code == 400
    assert submitted.code == "InvalidParameter"


def test_dashscope_sdk_cancels_a_queued_video_task(upstreams, dashscope_at):
    from dashscope import VideoSynthesis

    dashscope_at(upstreams.urls["dashscope"])
    submitted = VideoSynthesis.async_call(model="wan2.6-t2v", prompt=f"A kitten {marker('video-queued')}")
    canceled = VideoSynthesis.cancel(submitted)
    assert canceled.status_code == 200, canceled
    assert VideoSynthesis.fetch(submitted).output.task_status == "CANCELED"
    assert VideoSynthesis.cancel(submitted).code == "UnsupportedOperation"
