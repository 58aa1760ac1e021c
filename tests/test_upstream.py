"""The mock upstreams, seen from the wire: httpx against the running `upstreams` fixture."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

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
    (url,) = image_urls(ds.post(MMG, json=edit).json())
    assert url.endswith("/files/dashscope-edit-1.png")


@pytest.mark.parametrize(("provider", "path", "body"), [
    ("dashscope", MMG, ds_image_body("{m}")),
    ("openai", "/v1/images/generations", {"model": "gpt-image-1", "prompt": "{m}"}),
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
                    json={"model": "gpt-image-1", "prompt": f"x {marker('error-429')}"})
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


def test_openai_video_lifecycle_with_fresh_ids(oa):
    created = oa.post("/v1/videos", json={"model": "sora-2", "prompt": "a cat"}).json()
    assert re.fullmatch(r"video_[0-9a-f]+", created["id"])
    assert created["id"] != "video_68d7512d07848190b3e45da0ecbebcd1"
    assert created["status"] == "queued"
    polled = [oa.get(f"/v1/videos/{created['id']}").json() for _ in range(2)]
    assert [v["status"] for v in polled] == ["in_progress", "completed"]
    assert all(v["id"] == created["id"] for v in polled)
    assert oa.get(f"/v1/videos/{created['id']}/content").status_code == 200


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
                    json={"model": "gpt-image-1", "prompt": f"x {marker('fault-malformed')}"})
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
               data={"model": "gpt-image-1", "prompt": f"x {token}", "user": SECRET},
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
