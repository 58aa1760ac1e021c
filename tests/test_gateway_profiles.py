"""The LiteLLM and Portkey profiles, and the harness fixes the real-gateway audits called for.

These need no gateway installed: they render the profiles' configs and headers, and pin the two
places where the audits showed the harness judging the wrong thing.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from harness.checks._registry import load_suites
from harness.config import _schemas as schemas
from harness.config._profile import load_profile
from harness.gateway.driver import render, render_template
from harness.paths import GATEWAYS_DIR, SUITES_DIR
from harness.reference.errors import GatewayError
from harness.reference.gateway import ImageRequest, ReferenceGateway, Route
from harness.runner._inprocess import run_in_process
from harness.upstream._intercept import real_urls
from tests.mutants import Mutant
from tests.test_mutation import FAST, PROFILE, TEMPLATE

VALUES = {"port": "4000", "api_key": "gwk-client", "api_key_b": "",
          **{f"{name}_url": f"http://127.0.0.1:1{i}00" for i, name in enumerate(
              ("dashscope", "dashscope_intl", "dashscope_us", "openai", "replicate"))},
          **{f"{name}_key": f"sk-{name}" for name in
             ("dashscope", "dashscope_intl", "dashscope_us", "openai", "replicate")}}


def test_litellm_config_has_a_deployment_per_alias_on_the_mocks() -> None:
    profile = load_profile(GATEWAYS_DIR / "litellm.toml")
    assert profile.start is not None and profile.start.config_template is not None
    config = yaml.safe_load(render_template(profile.start.config_template, {**VALUES, "profile": profile}))
    deployments = {d["model_name"]: d["litellm_params"] for d in config["model_list"]}
    assert set(deployments) >= {r.alias for r in profile.models} | {"image-fallback"}
    assert all(d["api_base"].startswith("http://127.0.0.1:") for d in deployments.values())
    assert deployments["dashscope/qwen-mt-turbo"]["api_base"] == "http://127.0.0.1:1000/compatible-mode/v1"
    assert deployments["dashscope-intl/qwen-image-2.0-pro"]["api_key"] == "sk-dashscope_intl"
    assert config["router_settings"]["disable_cooldowns"] is True
    assert config["router_settings"]["fallbacks"] == [{"image-fallback": ["image-fallback-2"]}]
    assert config["general_settings"]["master_key"] == "gwk-client"


def test_litellm_deployed_config_names_the_real_hosts_as_the_docs_do() -> None:
    profile = load_profile(GATEWAYS_DIR / "litellm-deployed.toml")
    assert profile.mode == "as-deployed" and profile.start and profile.start.config_template
    values = {**VALUES, **{f"{name.replace('-', '_')}_url": url for name, url in real_urls().items()}}
    config = yaml.safe_load(render_template(profile.start.config_template, {**values, "profile": profile}))
    deployments = {d["model_name"]: d["litellm_params"] for d in config["model_list"]}
    assert set(deployments) >= {r.alias for r in profile.models} | {"image-fallback"}
    assert deployments["dashscope/qwen-image-2.0-pro"]["api_base"] == "https://dashscope.aliyuncs.com/compatible-mode/v1"
    assert deployments["dashscope-intl/qwen-image-2.0-pro"] == {
        "model": "dashscope/qwen-image-2.0-pro", "api_base": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "api_key": "sk-dashscope_intl"}
    assert deployments["dashscope-us/qwen-plus"]["api_base"] == "https://dashscope-us.aliyuncs.com/compatible-mode/v1"
    assert "api_base" not in deployments["openai/gpt-image-2"]  # LiteLLM's default, api.openai.com
    assert "api_base" not in deployments["replicate/black-forest-labs/flux-schnell"]


def test_portkey_headers_render_to_configs_on_the_mocks() -> None:
    profile = load_profile(GATEWAYS_DIR / "portkey.toml")
    configs = [json.loads(render(r.headers["x-portkey-config"], VALUES)) for r in profile.models]
    configs += [json.loads(render(profile.headers["x-portkey-config"], VALUES))]
    for config in configs:
        hosts = [config.get("custom_host")] + [t["custom_host"] for t in config.get("targets", [])]
        assert all(h and h.startswith("http://127.0.0.1:") for h in hosts if h is not None), config
        assert config["request_timeout"] == 5000
    fallback = json.loads(render(profile.fallbacks[0].headers["x-portkey-config"], VALUES))
    assert [t["provider"] for t in fallback["targets"]] == ["openai", "dashscope"]


def test_images_response_accepts_the_sdks_optional_nulls() -> None:
    """LiteLLM answers background, output_format, quality, size and usage.output_tokens_details as
    null; the OpenAI SDK types them Optional, so a schema that refused null failed NORM-001 on a
    shape every SDK client reads."""
    body = {"created": 1795597133, "background": None, "output_format": None, "quality": None, "size": None,
            "data": [{"url": "http://127.0.0.1:1/files/a.png", "b64_json": None, "revised_prompt": None}],
            "usage": {"total_tokens": 0, "input_tokens": 0, "output_tokens": 0, "output_tokens_details": None,
                      "input_tokens_details": {"image_tokens": 0, "text_tokens": 0}}}
    assert schemas.errors("openai/images-response", body) == []
    assert schemas.errors("openai/images-response", {**body, "quality": "ultra"}) != []


class RefusesDashScopeImages(ReferenceGateway):
    """Cannot route DashScope images at all (Portkey 1.15.2): answers without calling DashScope."""

    async def dashscope_generate(self, route: Route, req: ImageRequest) -> list[str]:
        raise GatewayError(500, "unsupported", "imageGenerate is not supported by dashscope")


def test_error_checks_say_when_the_fault_never_reached_the_upstream() -> None:
    """An ERR check must not blame the envelope of an answer the upstream fault had no part in."""
    checks = [c for i, c in load_suites(SUITES_DIR).items() if i in ("ERR-001", "ERR-005")]
    outcomes = run_in_process(Path(PROFILE), Mutant("refuses", RefusesDashScopeImages).factory(), checks,
                              timeouts=FAST, template_vars=TEMPLATE)
    for outcome in outcomes:
        assert outcome.outcome == "fail", outcome
        assert "must reach the provider" in outcome.message, outcome.message
        assert "not supported" in outcome.message
