"""As-deployed runs: a gateway configured with the providers' real hosts, through the intercept.

The stray-region gateway sends every Qwen-Image generation to DashScope's Singapore host,
ignoring the base its config names; the reference gateway (the control) follows its config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import pytest

from harness.checks._registry import load_suites
from harness.config._profile import Timeouts
from harness.gateway._session import Session, open_session
from harness.paths import CASSETTES_DIR, SUITES_DIR
from harness.records._outcome import Outcome
from harness.runner._executor import Recorder

PROFILE = Path(__file__).parent / "gateways" / "stray-region-deployed.toml"
FAST = Timeouts(request=8, job=8, poll_interval=0.05, startup=20)
MAP_CHECKS = ("MAP-001", "MAP-002", "MAP-004", "MAP-005", "MAP-009", "MAP-011", "MAP-012")


def run_checks(session: Session, ids: Iterable[str]) -> dict[str, Outcome]:
    catalogue = load_suites(SUITES_DIR)
    profile = dataclasses.replace(session.profile, timeouts=FAST)
    recorder = Recorder(session.env, profile, session.upstreams.captures)
    return {o.check_id: o for o in recorder.run([catalogue[i] for i in ids])}


@pytest.fixture
def control_profile(tmp_path: Path) -> Path:
    """The same profile, started with the reference gateway (paths made absolute)."""
    root = PROFILE.parent.parent.parent
    text = (PROFILE.read_text().replace("tests.gateways.stray_region", "harness.reference")
            .replace('"../../gateways/', f'"{root}/gateways/').replace('cwd = "../.."', f'cwd = "{root}"'))
    path = tmp_path / "reference-deployed.toml"
    path.write_text(text)
    return path


def test_stray_gateway_calls_are_recorded_with_host_method_and_path_and_fail_map_012(tmp_path):
    with open_session(PROFILE, CASSETTES_DIR, tmp_path, environ={}) as session:
        outcomes = run_checks(session, MAP_CHECKS)
        assert session.intercept is not None
        crossings = session.intercept.crossings

    image_path = "/api/v1/services/aigc/multimodal-generation/generation"
    by_host = {(c.method, c.host, c.path) for c in crossings}
    assert ("POST", "dashscope-intl.aliyuncs.com", image_path) in by_host
    # no image generation reached the Beijing or Virginia hosts the aliases are configured with
    assert not {c for c in crossings if c.path == image_path and c.host != "dashscope-intl.aliyuncs.com"}
    assert {"dashscope.aliyuncs.com", "api.openai.com"} <= {c.host for c in crossings}  # chat, OpenAI as configured

    # the edit went to a DashScope host no mock serves: refused, recorded with its full path
    refused = outcomes["MAP-011"]
    assert refused.outcome == "fail"
    assert f"POST cn-hongkong.dashscope.aliyuncs.com:443{image_path}" in refused.message
    assert outcomes["MAP-004"].outcome == "fail"  # and the edit never reached the DashScope mock

    assert outcomes["MAP-012"].outcome == "fail"
    assert ("qwen-image-2.0-pro-us reached dashscope ap-southeast-1 (dashscope-intl.aliyuncs.com), "
            "not dashscope us-east-1") in outcomes["MAP-012"].message
    # The Beijing alias (bound to no region) went to Singapore too: MAP-012 names it, and MAP-001's
    # refusal (Singapore's 401 for a Beijing key) is that defect, so MAP-001 is blocked by it.
    assert ("qwen-image-2.0-pro reached dashscope ap-southeast-1 (dashscope-intl.aliyuncs.com), "
            "not dashscope cn-beijing (dashscope.aliyuncs.com)") in outcomes["MAP-012"].message
    assert (outcomes["MAP-001"].outcome, outcomes["MAP-001"].blocked_by) == ("blocked", ["MAP-012"])
    assert {i: outcomes[i].outcome for i in ("MAP-002", "MAP-005", "MAP-009")} == dict.fromkeys(
        ("MAP-002", "MAP-005", "MAP-009"), "pass")


def test_the_reference_as_deployed_reaches_every_real_host_and_passes(tmp_path, control_profile):
    with open_session(control_profile, CASSETTES_DIR, tmp_path / "work", environ={}) as session:
        outcomes = run_checks(session, MAP_CHECKS)
        assert session.intercept is not None
        hosts = {(c.host, c.mock) for c in session.intercept.crossings}
        refused = session.egress.log.since() if session.egress else []

    assert {o.check_id: o.outcome for o in outcomes.values()} == dict.fromkeys(MAP_CHECKS, "pass"), [
        o.message for o in outcomes.values() if o.outcome != "pass"]
    assert {("dashscope.aliyuncs.com", "dashscope"), ("dashscope-intl.aliyuncs.com", "dashscope-intl"),
            ("dashscope-us.aliyuncs.com", "dashscope-us"), ("api.openai.com", "openai")} <= hosts
    assert refused == []
