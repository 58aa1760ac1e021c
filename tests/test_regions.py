"""DashScope regions: one mock per region, profiles bind aliases to a region, MAP-012 judges it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx

from harness.checks._registry import load_suites
from harness.config._profile import Timeouts
from harness.config._redact import redacted
from harness.gateway._env import HttpCaptures
from harness.gateway._session import open_session
from harness.paths import CASSETTES_DIR, GATEWAYS_DIR, SUITES_DIR
from harness.reference import build_app
from harness.runner._executor import Recorder
from harness.runner._inprocess import run_in_process
from harness.upstream._markers import Marker, new_token
from harness.upstream.server import DASHSCOPE_REGIONS
from tests.mutants import MUTANTS

PROFILE = GATEWAYS_DIR / "reference.toml"
FAST = Timeouts(request=4, job=3, poll_interval=0.02, startup=10)
MMG = "/api/v1/services/aigc/multimodal-generation/generation"


def test_each_region_has_its_own_dashscope_mock(upstreams):
    for name, region in DASHSCOPE_REGIONS.items():
        health = httpx.get(upstreams.urls[name] + "/__gwconf/health", timeout=5).json()
        assert health == {"provider": "dashscope", "region": region}
    assert len({upstreams.urls[name] for name in DASHSCOPE_REGIONS}) == 3


def test_captures_carry_the_region_and_are_read_once(upstreams):
    token = new_token()
    body = {"model": "qwen-image-2.0-pro",
            "input": {"messages": [{"role": "user", "content": [{"text": f"x {Marker('TEST-001', token)}"}]}]},
            "parameters": {"n": 1}}
    assert httpx.post(upstreams.urls["dashscope-intl"] + MMG, json=body, timeout=5).status_code == 200

    [record] = HttpCaptures(upstreams.urls).for_token(token)  # asks all five mocks
    assert (record.provider, record.region) == ("dashscope", "ap-southeast-1")


def test_profiles_and_configs_get_every_region(tmp_path: Path):
    configs: list[dict] = []

    def factory(config: dict):
        configs.append(config)
        return build_app(config).app

    with open_session(PROFILE, CASSETTES_DIR, tmp_path, environ={}, app_factory=factory) as session:
        urls, keys = session.env.upstream_urls, session.env.provider_keys
    [config] = configs

    assert config["upstreams"]["dashscope-intl"] == urls["dashscope-intl"]
    assert config["upstreams"]["dashscope-us"] == urls["dashscope-us"]
    assert keys["dashscope-intl"].startswith("sk-gwconf-dashscope-intl-")
    assert config["provider_keys"]["dashscope-us"] == keys["dashscope-us"]
    regions = {m["alias"]: m["region"] for m in config["models"]}
    assert regions["qwen-image-2.0-pro-intl"] == "ap-southeast-1"
    assert regions["qwen-image-2.0-pro"] is None


def test_reference_reaches_the_bound_region_with_that_regions_key(tmp_path: Path):
    check = load_suites(SUITES_DIR)["MAP-012"]
    with open_session(PROFILE, CASSETTES_DIR, tmp_path, environ={},
                      app_factory=lambda c: build_app(c).app) as session:
        outcome = Recorder(session.env, session.profile, session.upstreams.captures).outcome(check)
        intl_key = session.env.provider_keys["dashscope-intl"]
        records = session.upstreams.captures.all()

    assert outcome.outcome == "pass", outcome.message
    # MAP-012 judges the every-alias scenario: one request per alias, one of them region-bound.
    [record] = [r for r in records if r.provider == "dashscope" and r.region != "cn-beijing"]
    assert record.region == "ap-southeast-1"
    assert record.header("authorization") == redacted(intl_key)


def test_gateway_ignoring_the_region_fails_map_012():
    mutant, expected = MUTANTS["region-ignored"]
    [outcome] = run_in_process(PROFILE, mutant.factory(), [load_suites(SUITES_DIR)["MAP-012"]], FAST)

    assert expected == {"MAP-012"}
    assert outcome.outcome == "fail"
    assert ("qwen-image-2.0-pro-intl reached dashscope cn-beijing (dashscope.aliyuncs.com), "
            "not dashscope ap-southeast-1 (dashscope-intl.aliyuncs.com)") in outcome.message


def test_map_012_judges_an_alias_bound_to_no_region_as_beijing(tmp_path: Path):
    """With the regions taken out of the profile, every alias is Beijing's: the one the gateway
    still sends to Singapore fails, naming the host it reached."""
    check = load_suites(SUITES_DIR)["MAP-012"]
    with open_session(PROFILE, CASSETTES_DIR, tmp_path, environ={},
                      app_factory=lambda c: build_app(c).app) as session:
        plain = dataclasses.replace(session.profile, models=tuple(
            dataclasses.replace(m, region=None) for m in session.profile.models))
        outcome = Recorder(session.env, plain, session.upstreams.captures).outcome(check)

    assert outcome.outcome == "fail"
    assert ("qwen-image-2.0-pro-intl reached dashscope ap-southeast-1 (dashscope-intl.aliyuncs.com), "
            "not dashscope cn-beijing (dashscope.aliyuncs.com)") in outcome.message
