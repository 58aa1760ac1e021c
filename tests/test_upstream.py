"""The mock upstreams, seen from the wire: httpx against the running `upstreams` fixture."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from harness.config._redact import KEY_PATTERNS
from harness.paths import CASSETTES_DIR
from harness.upstream._markers import Marker, new_token

TIMEOUT = httpx.Timeout(10.0)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MMG = "/api/v1/services/aigc/multimodal-generation/generation"
T2I = "/api/v1/services/aigc/text2image/image-synthesis"
ASYNC = {"X-DashScope-Async": "enable"}
SECRET = "sk-secret-0123456789abcdefSECRET"


def marker(scenario: str | None = None, check: str = "TEST-001") -> Marker:
    return Marker(check, new_token(), scenario)


def ds_image_body(prompt: str, model: str = "qwen-image-2.0-pro") -> dict:
    return {"model": model,
            "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
            "parameters": {"size": "1328*1328", "n": 1}}


def ds_async_body(prompt: str, model: str = "qwen-image-plus") -> dict:
    return {"model": model, "input": {"prompt": prompt}, "parameters": {"size": "1328*1328"}}


@pytest.fixture(scope="module")
def ds(upstreams):
    with httpx.Client(base_url=upstreams.urls["dashscope"], timeout=TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def oa(upstreams):
    with httpx.Client(base_url=upstreams.urls["openai"], timeout=TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def rp(upstreams):
    with httpx.Client(base_url=upstreams.urls["replicate"], timeout=TIMEOUT) as client:
        yield client


def image_urls(answer: dict) -> list[str]:
    content = answer["output"]["choices"][0]["message"]["content"]
    return [part["image"] for part in content if "image" in part]


# -- scenario choice ------------------------------------------------------------------------


def test_marker_chooses_the_scenario(ds):
    reply = ds.post(MMG, json=ds_image_body(f"two puppies {marker('image-sync-n2')}"))
    assert reply.status_code == 200
    assert len(image_urls(reply.json())) == 2
    assert reply.json()["usage"]["image_count"] == 2


def test_without_marker_the_default_scenario_answers_with_served_bytes(ds, upstreams):
    reply = ds.post(MMG, json=ds_image_body("a puppy"))
    assert reply.status_code == 200
    (url,) = image_urls(reply.json())
    assert url.startswith(upstreams.urls["dashscope"] + "/files/")
    assert ds.get(url).content.startswith(PNG_SIGNATURE)


def test_default_depends_on_the_model(ds):
    edit = ds_image_body("make it snow", model="qwen-image-edit-plus")
    edit["input"]["messages"][0]["content"].insert(0, {"image": "data:image/png;base64,iVBORw0KGgo="})
    (url,) = image_urls(ds.post(MMG, json=edit).json())
    assert url.endswith("/files/dashscope-edit-1.png")


@pytest.mark.parametrize(("provider", "path", "body"), [
    ("dashscope", MMG, ds_image_body("{m}")),
    ("openai", "/v1/images/generations", {"model": "gpt-image-2", "prompt": "{m}"}),
    ("replicate", "/v1/models/black-forest-labs/flux-schnell/predictions",
     {"input": {"prompt": "{m}"}}),
])
def test_unknown_scenario_gives_a_provider_error_naming_it(upstreams, provider, path, body):
    text = json.dumps(body).replace("{m}", str(marker("no-such-scenario")))
    reply = httpx.post(upstreams.urls[provider] + path, content=text, timeout=TIMEOUT,
                       headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    answer = reply.json()
    message = {"dashscope": lambda a: a["message"], "openai": lambda a: a["error"]["message"],
               "replicate": lambda a: a["detail"]}[provider](answer)
    assert "no-such-scenario" in message


def test_unknown_model_gives_the_providers_model_error(ds, oa):
    native = ds.post(MMG, json=ds_image_body("x", model="qwen-image-9"))
    assert native.status_code == 400
    assert native.json()["code"] == "InvalidParameter"
    assert native.json()["message"] == "Model not exist."

    compatible = ds.post("/compatible-mode/v1/chat/completions",
                         json={"model": "qwen-image-2.0-pro",
                               "messages": [{"role": "user", "content": "x"}]})
    assert compatible.status_code == 404
    assert compatible.json()["error"]["code"] == "model_not_supported"

    openai = oa.post("/v1/images/generations", json={"model": "dall-e-9", "prompt": "x"})
    assert openai.status_code == 404
    assert openai.json()["error"]["code"] == "model_not_found"


def test_dashscope_async_path_without_async_header_is_access_denied(ds):
    reply = ds.post(T2I, json=ds_async_body("x"))
    assert reply.status_code == 403
    assert reply.json()["code"] == "AccessDenied"


def test_dashscope_business_error_comes_as_http_200(ds):
    reply = ds.post(MMG, json=ds_image_body(f"x {marker('image-sync-business-error')}"))
    assert reply.status_code == 200
    assert reply.json()["code"] == "InvalidParameter"
    assert "output" not in reply.json()


def test_openai_429_keeps_retry_after(oa):
    reply = oa.post("/v1/images/generations",
                    json={"model": "gpt-image-2", "prompt": f"x {marker('error-429')}"})
    assert reply.status_code == 429
    assert reply.headers["retry-after"] == "7"
    assert reply.json()["error"]["code"] == "rate_limit_exceeded"


# -- async tasks ------------------------------------------------------------------------------


def submit(client: httpx.Client, prompt: str) -> str:
    reply = client.post(T2I, json=ds_async_body(prompt), headers=ASYNC)
    assert reply.status_code == 200, reply.text
    assert reply.json()["output"]["task_status"] == "PENDING"
    return reply.json()["output"]["task_id"]


def poll(client: httpx.Client, task_id: str) -> dict:
    reply = client.get(f"/api/v1/tasks/{task_id}")
    assert reply.status_code == 200, reply.text
    assert reply.json()["output"]["task_id"] == task_id
    return reply.json()["output"]


def test_task_advances_one_step_per_poll(ds):
    task_id = submit(ds, "three puppies")
    statuses = [poll(ds, task_id)["task_status"] for _ in range(5)]
    assert statuses == ["PENDING", "RUNNING", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]


def test_never_finishing_task_stays_running(ds):
    task_id = submit(ds, f"x {marker('image-async-never')}")
    statuses = [poll(ds, task_id)["task_status"] for _ in range(25)]
    assert statuses[0] == "PENDING"
    assert set(statuses[1:]) == {"RUNNING"}


def test_poll_error_scenario_answers_500_on_every_poll(ds):
    task_id = submit(ds, f"x {marker('image-async-poll-error')}")
    for _ in range(3):
        reply = ds.get(f"/api/v1/tasks/{task_id}")
        assert reply.status_code == 500
        assert reply.json()["code"] == "InternalError"


def test_unknown_task_is_http_200_unknown(ds):
    assert poll(ds, "0385dc79-0000-0000-0000-000000000000")["task_status"] == "UNKNOWN"


def test_fifty_concurrent_submits_get_their_own_tasks(upstreams):
    def lifecycle(i: int) -> tuple[str, str, str]:
        scenario = "image-async-failed" if i % 2 else "image-async"
        with httpx.Client(base_url=upstreams.urls["dashscope"], timeout=TIMEOUT) as client:
            task_id = submit(client, f"job {i} {marker(scenario)}")
            for _ in range(10):
                output = poll(client, task_id)
                if output["task_status"] in {"SUCCEEDED", "FAILED"}:
                    return task_id, scenario, output["task_status"]
        raise AssertionError(f"task {task_id} never finished")

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lifecycle, range(50)))

    assert len({task_id for task_id, _, _ in results}) == 50
    expected = {"image-async": "SUCCEEDED", "image-async-failed": "FAILED"}
    assert all(final == expected[scenario] for _, scenario, final in results)


def test_openai_videos_api_answers_as_gone_on_every_route(oa):
    for method, path in [("POST", "/v1/videos"), ("GET", "/v1/videos/video_68d7512d07848190"),
                         ("GET", "/v1/videos/video_68d7512d07848190/content")]:
        reply = oa.request(method, path, json={"model": "sora-2", "prompt": "a cat"} if method == "POST" else None)
        assert reply.status_code == 404, path
        assert reply.json() == {"error": {"message": f"Invalid URL ({method} {path})",
                                          "type": "invalid_request_error", "param": None,
                                          "code": "unknown_url"}}


def test_replicate_prediction_polls_through_rewritten_urls(rp, upstreams):
    created = rp.post("/v1/models/black-forest-labs/flux-schnell/predictions",
                      json={"input": {"prompt": "a rocket"}})
    assert created.status_code == 201
    prediction = created.json()
    assert prediction["status"] == "starting"
    get_url = prediction["urls"]["get"]
    assert get_url == f"{upstreams.urls['replicate']}/v1/predictions/{prediction['id']}"
    statuses = [rp.get(get_url).json()["status"] for _ in range(2)]
    assert statuses == ["processing", "succeeded"]


def test_replicate_prefer_wait_answers_the_finished_prediction_with_its_own_id(rp):
    reply = rp.post("/v1/models/black-forest-labs/flux-schnell/predictions",
                    json={"input": {"prompt": "a rocket"}}, headers={"Prefer": "wait"})
    assert reply.status_code == 201
    prediction = reply.json()
    assert prediction["status"] == "succeeded"
    assert prediction["id"] != "gm3qorzdhgbfurvjtvhg6dckh1"
    assert prediction["id"] in prediction["urls"]["get"]
    assert rp.get(prediction["output"][0]).content.startswith(PNG_SIGNATURE)


# -- faults -----------------------------------------------------------------------------------


def test_fault_drop_cuts_the_connection(ds):
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        ds.post(MMG, json=ds_image_body(f"x {marker('fault-drop')}"))


def test_fault_malformed_body_is_not_json(oa):
    reply = oa.post("/v1/images/generations",
                    json={"model": "gpt-image-2", "prompt": f"x {marker('fault-malformed')}"})
    assert reply.status_code == 200
    with pytest.raises(ValueError):
        json.loads(reply.content)


def test_fault_hang_outlasts_a_short_client_timeout(upstreams):
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(upstreams.urls["dashscope"] + MMG,
                   json=ds_image_body(f"x {marker('fault-hang')}"),
                   timeout=httpx.Timeout(10.0, read=0.3))


# -- captures ---------------------------------------------------------------------------------


def test_captures_filter_by_run_token(ds):
    mine, other = marker(), marker()
    ds.post(MMG, json=ds_image_body(f"first {mine}"))
    ds.post(MMG, json=ds_image_body(f"second {other}"))
    task_id = submit(ds, f"third {mine}")
    poll(ds, task_id)

    records = ds.get("/__gwconf/captures", params={"run": mine.token}).json()

    assert [(r["method"], r["path"]) for r in records] == [
        ("POST", MMG), ("POST", T2I), ("GET", f"/api/v1/tasks/{task_id}")]
    assert all(r["token"] == mine.token for r in records)


def test_captures_never_hold_the_key(upstreams):
    token = marker()
    url = upstreams.urls["dashscope"] + MMG
    httpx.post(url, params={"api_key": SECRET}, timeout=TIMEOUT,
               json={**ds_image_body(f"x {token}"), "api_key": SECRET},
               headers={"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET})
    httpx.post(upstreams.urls["openai"] + "/v1/images/edits", timeout=TIMEOUT,
               headers={"Authorization": f"Bearer {SECRET}"},
               data={"model": "gpt-image-2", "prompt": f"x {token}", "user": SECRET},
               files={"image": ("in.png", PNG_SIGNATURE, "image/png")})

    served = httpx.get(upstreams.urls["dashscope"] + "/__gwconf/captures",
                       params={"run": token.token}, timeout=TIMEOUT).text
    dumped = upstreams.captures.dump_json()
    records = upstreams.captures.for_token(token.token)

    assert len(records) == 2
    assert records[0].header("authorization").startswith("[REDACTED sha256:")
    for text in (served, dumped):
        assert SECRET not in text
        assert "sk-secret" not in text


def test_no_cassette_holds_a_bearer_token_or_a_key():
    for path in sorted(CASSETTES_DIR.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert "Bearer " not in text, path
        assert not any(p.search(text) for p in KEY_PATTERNS), path


# -- strictness: every documented refusal, in the provider's own shape --------------------------

QWEN_PRO = "qwen-image-2.0-pro"
REFUSED = "Required parameter(s) missing or invalid, please check the request parameters."


def ds_refusal(reply: httpx.Response, code: str = "InvalidParameter", message: str = REFUSED) -> None:
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert set(body) == {"code", "message", "request_id"}
    assert (body["code"], body["message"]) == (code, message)


def openai_refusal(reply: httpx.Response, status: int, code: str, param: str | None, message: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.json() == {"error": {"message": message, "type": "invalid_request_error", "param": param,
                                      "code": code}}


def captured(upstreams, mark: Marker):
    (record,) = upstreams.captures.for_token(mark.token)
    return record


def test_multimodal_route_refuses_the_legacy_prompt_body(ds, upstreams):
    mark = marker()
    reply = ds.post(MMG, json={"model": QWEN_PRO, "input": {"prompt": f"a fox {mark}"}})
    ds_refusal(reply)
    record = captured(upstreams, mark)
    assert record.answered == 400 and record.scenario is None
    assert any("'messages' is a required property" in note for note in record.notes)


@pytest.mark.parametrize(("body", "code", "message"), [
    ({"input": {"messages": [{"role": "user", "content": [{"text": "x"}]}]}},
     "BadRequest.EmptyModel", 'Required parameter "model" missing from request.'),
    ({"model": QWEN_PRO, "garbage": 1}, "BadRequest.EmptyInput", 'Required parameter "input" missing from request.'),
])
def test_dashscope_empty_model_or_input_has_its_own_code(ds, body, code, message):
    ds_refusal(ds.post(MMG, json=body), code, message)


@pytest.mark.parametrize(("model", "parameters"), [
    (QWEN_PRO, {"n": 7}),                      # qwen-image-2.0: n 1-6
    (QWEN_PRO, {"n": 0}),
    (QWEN_PRO, {"size": "256*256"}),           # fewer pixels than 512*512
    (QWEN_PRO, {"size": "4096*4096"}),         # more than 2048*2048
    ("qwen-image-max", {"n": 2}),              # fixed at 1
    ("qwen-image-max", {"size": "1024*1024"}),  # not one of the fixed sizes
    (QWEN_PRO, {"size": "1024x1024"}),         # OpenAI's separator
])
def test_dashscope_refuses_parameters_outside_the_models_range(ds, model, parameters):
    body = ds_image_body("x", model=model)
    body["parameters"] = parameters
    ds_refusal(ds.post(MMG, json=body))


def test_dashscope_generation_takes_exactly_one_user_text(ds):
    body = ds_image_body("x")
    body["input"]["messages"][0]["content"].append({"text": "y"})
    ds_refusal(ds.post(MMG, json=body))
    body = ds_image_body("x")
    body["input"]["messages"][0]["role"] = "system"
    ds_refusal(ds.post(MMG, json=body))


def test_dashscope_edit_needs_an_image(ds):
    ds_refusal(ds.post(MMG, json=ds_image_body("make it snow", model="qwen-image-edit-plus")))


def test_dashscope_task_route_refuses_messages_and_out_of_range_n(ds):
    messages = {"model": "wan2.2-t2i-flash", "input": {"messages": [{"role": "user", "content": [{"text": "x"}]}]}}
    ds_refusal(ds.post(T2I, json=messages, headers=ASYNC))
    too_many = {"model": "wan2.2-t2i-flash", "input": {"prompt": "x"}, "parameters": {"n": 5}}
    ds_refusal(ds.post(T2I, json=too_many, headers=ASYNC))
    too_big = {"model": "wan2.2-t2i-flash", "input": {"prompt": "x"}, "parameters": {"size": "2048*2048"}}
    ds_refusal(ds.post(T2I, json=too_big, headers=ASYNC))


def test_dashscope_sync_route_refuses_the_async_header(ds):
    reply = ds.post(MMG, json=ds_image_body("x"), headers=ASYNC)
    assert reply.status_code == 403
    assert reply.json()["code"] == "AccessDenied"
    assert reply.json()["message"] == "Current user api does not support asynchronous calls."


def test_dashscope_model_on_a_route_that_does_not_serve_it_is_a_url_error(ds):
    reply = ds.post(MMG, json=ds_image_body("x", model="wan2.2-t2i-flash"))
    ds_refusal(reply, message="url error, please check url!")


def test_dashscope_compatible_mode_refuses_in_openai_envelope(ds):
    reply = ds.post("/compatible-mode/v1/chat/completions",
                    json={"model": "qwen-mt-turbo", "messages": [{"role": "system", "content": "be brief"},
                                                                 {"role": "user", "content": "你好"}]})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["code"], error["type"]) == ("invalid_parameter_error", "invalid_request_error")


def test_conflicting_docs_are_accepted_with_a_note(ds, upstreams):
    mark = marker()
    body = ds_image_body(f"x {mark}", model="qwen-image-max")
    body["parameters"] = {"size": "1472*1140", "n": 1}  # launch-era size: the docs conflict ([?])
    assert ds.post(MMG, json=body).status_code == 200
    assert any("unconfirmed" in note and "1472*1140" in note for note in captured(upstreams, mark).notes)


@pytest.mark.parametrize("model", ["dall-e-3", "dall-e-2", "gpt-image-1"])
def test_retired_openai_model_is_gone(oa, model):
    openai_refusal(oa.post("/v1/images/generations", json={"model": model, "prompt": "x"}), 404, "model_not_found",
                   None, f"The model `{model}` does not exist or you do not have access to it.")


def test_openai_request_without_model_reaches_the_retired_default(oa):
    openai_refusal(oa.post("/v1/images/generations", json={"prompt": "x"}), 404, "model_not_found", None,
                   "The model `dall-e-2` does not exist or you do not have access to it.")


def test_gpt_image_2_answers_b64_json(oa):
    reply = oa.post("/v1/images/generations", json={"model": "gpt-image-2", "prompt": "x", "size": "1536x1024"})
    assert reply.status_code == 200
    (item,) = reply.json()["data"]
    assert set(item) == {"b64_json"}


def test_gpt_image_2_refuses_response_format(oa):
    for value in ("url", "b64_json"):
        reply = oa.post("/v1/images/generations",
                        json={"model": "gpt-image-2", "prompt": "x", "response_format": value})
        openai_refusal(reply, 400, "unknown_parameter", "response_format", "Unknown parameter: 'response_format'.")


@pytest.mark.parametrize("size", ["1000x1000", "4000x1000", "3840x3840", "512x2048", "1024*1024"])
def test_gpt_image_2_refuses_sizes_outside_its_rules(oa, size):
    reply = oa.post("/v1/images/generations", json={"model": "gpt-image-2", "prompt": "x", "size": size})
    assert reply.status_code == 400
    assert (reply.json()["error"]["code"], reply.json()["error"]["param"]) == ("invalid_value", "size")


@pytest.mark.parametrize("size", ["auto", "1024x1024", "3840x2160", "1280x3840", "2048x1152"])
def test_gpt_image_2_takes_any_size_within_its_rules(oa, size):
    reply = oa.post("/v1/images/generations", json={"model": "gpt-image-2", "prompt": "x", "size": size})
    assert reply.status_code == 200


def test_openai_missing_prompt_names_the_parameter(oa):
    openai_refusal(oa.post("/v1/images/generations", json={"model": "gpt-image-2"}), 400,
                   "missing_required_parameter", "prompt", "Missing required parameter: 'prompt'.")


def test_gpt_image_2_edit_refuses_response_format(oa):
    reply = oa.post("/v1/images/edits", data={"model": "gpt-image-2", "prompt": "x", "response_format": "url"},
                    files={"image": ("in.png", (CASSETTES_DIR / "files" / "input-1.png").read_bytes(), "image/png")})
    openai_refusal(reply, 400, "unknown_parameter", "response_format", "Unknown parameter: 'response_format'.")


@pytest.mark.parametrize(("path", "body", "field", "description"), [
    ("/v1/models/black-forest-labs/flux-schnell/predictions", {}, "(root)", "input is required"),
    ("/v1/models/black-forest-labs/flux-schnell/predictions", {"input": {}}, "input", "prompt is required"),
    ("/v1/models/black-forest-labs/flux-schnell/predictions", {"input": {"prompt": "x", "num_outputs": 9}},
     "input.num_outputs", "9 is greater than the maximum of 4"),
    ("/v1/predictions", {"input": {"prompt": "x"}}, "(root)", "version is required"),
])
def test_replicate_refuses_invalid_input_with_422(rp, path, body, field, description):
    reply = rp.post(path, json=body)
    assert reply.status_code == 422
    assert reply.headers["content-type"].startswith("application/problem+json")
    problem = reply.json()
    assert problem["title"] == "Input validation failed" and problem["status"] == 422
    assert problem["detail"] == f"- {field}: {description}\n"
    assert problem["invalid_fields"][0]["field"] == field
    assert problem["invalid_fields"][0]["description"] == description


# -- no invented successes ---------------------------------------------------------------------


def test_a_request_no_cassette_answers_is_a_loud_error_and_flagged(oa, upstreams):
    mark = marker()
    # gpt-image-1-mini is live in the catalogue, but no cassette plays it.
    reply = oa.post("/v1/images/generations", json={"model": "gpt-image-1-mini", "prompt": f"x {mark}"})
    assert reply.status_code == 500
    assert reply.json()["error"]["code"] == "gwconf_no_cassette"
    record = captured(upstreams, mark)
    assert record.flag == "no-cassette"


def test_a_marker_whose_cassette_lacks_the_model_is_ignored_with_a_note(ds, upstreams):
    mark = marker("image-async-failed")  # a task-route scenario; qwen-image-2.0-pro is sync only
    reply = ds.post(MMG, json=ds_image_body(f"x {mark}"))
    assert reply.status_code == 200
    record = captured(upstreams, mark)
    assert record.scenario == "image-sync"
    assert any("marker scenario 'image-async-failed' ignored" in note for note in record.notes)


def test_notes_and_flags_travel_with_the_captures_over_http(upstreams):
    mark = marker()
    httpx.post(upstreams.urls["openai"] + "/v1/images/generations",
               json={"model": "gpt-image-1-mini", "prompt": f"x {mark}"}, timeout=TIMEOUT)
    (record,) = httpx.get(upstreams.urls["openai"] + "/__gwconf/captures", params={"run": mark.token},
                          timeout=TIMEOUT).json()
    assert record["flag"] == "no-cassette" and record["notes"]


# -- `gwconf upstreams`, as an operator starts it ----------------------------------------------


@pytest.fixture(scope="module")
def served_upstreams() -> Iterator[dict[str, str]]:
    """`gwconf upstreams` in its own process; the URLs it prints, by mock name."""
    command = [sys.executable, "-m", "harness.cli", "upstreams"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=CASSETTES_DIR.parent)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    urls: dict[str, str] = {}
    deadline = time.monotonic() + 30
    try:
        while len(urls) < 5 and time.monotonic() < deadline:  # bounded, even if it prints nothing
            try:
                name, _, url = lines.get(timeout=0.5).strip().partition("=")
            except queue.Empty:
                continue
            urls[name] = url
        assert len(urls) == 5, f"gwconf upstreams printed {urls} (exit {process.poll()})"
        yield urls
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_gwconf_upstreams_answers_as_the_providers_do(served_upstreams):
    ds_url, oa_url, rp_url = (served_upstreams[f"GWCONF_{n}_URL"] for n in ("DASHSCOPE", "OPENAI", "REPLICATE"))
    with httpx.Client(timeout=TIMEOUT) as client:
        no_messages = client.post(ds_url + MMG, json={"model": QWEN_PRO, "input": {"prompt": "x"}})
        assert (no_messages.status_code, no_messages.json()["code"]) == (400, "InvalidParameter")
        out_of_range = client.post(ds_url + MMG, json={**ds_image_body("x"), "parameters": {"n": 99}})
        assert out_of_range.status_code == 400
        for model in ("dall-e-3", "gpt-image-1"):
            gone = client.post(oa_url + "/v1/images/generations", json={"model": model, "prompt": "x"})
            assert 400 <= gone.status_code < 500
            assert gone.json()["error"]["code"] == "model_not_found"
        live = client.post(oa_url + "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "x"})
        assert live.status_code == 200 and live.json()["data"][0]["b64_json"]
        no_input = client.post(rp_url + "/v1/models/black-forest-labs/flux-schnell/predictions", json={})
        assert no_input.status_code == 422


@pytest.mark.parametrize("field", ["image", "image[]"])
def test_gpt_image_2_edit_takes_one_image_part_under_either_name(oa, field):
    png = (CASSETTES_DIR / "files" / "input-1.png").read_bytes()
    reply = oa.post("/v1/images/edits", data={"model": "gpt-image-2", "prompt": "x"},
                    files={field: ("image.png", png, "image/png")})
    assert reply.status_code == 200, reply.text


VIDEO = "/api/v1/services/aigc/video-generation/video-synthesis"


def submit_video(client: httpx.Client, play: str) -> str:
    body = {"model": "wan2.6-t2v", "input": {"prompt": f"a kitten {marker(play)}"}, "parameters": {"duration": 5}}
    reply = client.post(VIDEO, json=body, headers=ASYNC)
    assert reply.status_code == 200, reply.text
    return reply.json()["output"]["task_id"]


def test_dashscope_cancels_a_task_only_while_it_is_pending(ds, upstreams):
    queued = submit_video(ds, "video-queued")
    assert poll(ds, queued)["task_status"] == "PENDING"
    reply = ds.post(f"/api/v1/tasks/{queued}/cancel")
    assert reply.status_code == 200 and set(reply.json()) == {"request_id"}
    assert poll(ds, queued)["task_status"] == "CANCELED"
    assert ds.post(f"/api/v1/tasks/{queued}/cancel").json()["code"] == "UnsupportedOperation"

    running = submit_video(ds, "video-never")
    assert [poll(ds, running)["task_status"] for _ in range(2)] == ["PENDING", "RUNNING"]
    refused = ds.post(f"/api/v1/tasks/{running}/cancel")
    assert refused.status_code == 400 and refused.json()["code"] == "UnsupportedOperation"
    # The cancel is captured like any request of the task, under the task's token.
    cancels = [r for r in upstreams.captures.all() if r.path.endswith("/cancel")]
    assert {r.task for r in cancels} >= {queued, running}


def test_methods_the_replay_does_not_take_get_405_and_the_mocks_own_routes_still_answer(ds):
    """The replay is raw ASGI now: it answers what Starlette's catch-all route answered before."""
    refused = ds.request("OPTIONS", "/api/v1/tasks/x")
    assert (refused.status_code, refused.headers["allow"]) == (405, "DELETE, GET, HEAD, PATCH, POST, PUT")
    assert ds.get("/__gwconf/health").json()["provider"] == "dashscope"
    assert ds.post("/__gwconf/health").json()["code"] == "NotFound"  # a POST there is provider traffic


def test_a_multipart_body_without_a_boundary_is_a_400_not_a_crash(oa):
    reply = oa.post("/v1/images/edits", content=b"--x\r\n", headers={"content-type": "multipart/form-data"})
    assert reply.status_code == 400
    assert "boundary" in reply.text.lower()


def test_a_started_gateways_port_is_outside_the_kernels_ephemeral_range():
    """Between gwconf's check and the gateway's own bind, no bind to port 0 and no outgoing
    connection of the run can take it."""
    import socket

    from harness.upstream.server import GATEWAY_PORTS, free_port

    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    port = free_port()
    assert port in GATEWAY_PORTS and not low <= port <= high
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
