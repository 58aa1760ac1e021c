"""Mocks started for a run know their provider keys, per region, and refuse any other key."""

from __future__ import annotations

import httpx

from harness.config._cassette import load_cassettes
from harness.paths import CASSETTES_DIR
from harness.upstream import start_upstreams

KEYS = {"dashscope": "sk-gwconf-dashscope-aaaaaaaaaaaaaaaa", "dashscope-intl": "sk-gwconf-dashscope-intl-bbbbbbbbbbbb",
        "openai": "sk-gwconf-openai-cccccccccccccccc", "replicate": "sk-gwconf-replicate-dddddddddddd"}
BODY = {"model": "qwen-image-2.0-pro", "input": {"messages": [{"role": "user", "content": [{"text": "x"}]}]},
        "parameters": {}}
PATH = "/api/v1/services/aigc/multimodal-generation/generation"


def test_each_region_accepts_only_its_own_key() -> None:
    with start_upstreams(load_cassettes(CASSETTES_DIR), CASSETTES_DIR / "files", keys=KEYS) as up:
        beijing, singapore = up.urls["dashscope"], up.urls["dashscope-intl"]

        def call(url: str, key: str) -> httpx.Response:
            return httpx.post(url + PATH, json=BODY, headers={"Authorization": f"Bearer {key}"}, timeout=5)

        assert call(beijing, KEYS["dashscope"]).status_code == 200
        assert call(singapore, KEYS["dashscope-intl"]).status_code == 200
        wrong_region = call(beijing, KEYS["dashscope-intl"])
        assert wrong_region.status_code == 401
        assert wrong_region.json()["code"] == "InvalidApiKey"
        assert httpx.post(up.urls["openai"] + "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "x"},
                          timeout=5).json()["error"]["code"] == "invalid_api_key"


def test_mocks_without_keys_accept_any_key(upstreams) -> None:
    response = httpx.post(upstreams.urls["dashscope"] + PATH, json=BODY, headers={"Authorization": "Bearer whatever"},
                          timeout=5)
    assert response.status_code == 200


def test_a_canceled_task_polls_as_canceled(upstreams) -> None:
    base = upstreams.urls["dashscope"]
    body = {"model": "qwen-image-plus", "input": {"prompt": "x"}, "parameters": {}}
    task = httpx.post(base + "/api/v1/services/aigc/text2image/image-synthesis", json=body,
                      headers={"X-DashScope-Async": "enable"}, timeout=5).json()["output"]["task_id"]
    assert httpx.post(f"{base}/api/v1/tasks/{task}/cancel", timeout=5).status_code == 200
    polled = [httpx.get(f"{base}/api/v1/tasks/{task}", timeout=5).json()["output"] for _ in range(4)]
    assert {p["task_status"] for p in polled} == {"CANCELED"}
    assert not any("results" in p for p in polled)
