"""Async dialects: a profile can describe its gateway's job API instead of the built-in ones."""

from __future__ import annotations

from pathlib import Path

from harness.checks._registry import load_suites
from harness.paths import GATEWAYS_DIR, SUITES_DIR
from harness.reference import build_app
from harness.runner._inprocess import run_in_process
from tests.test_mutation import FAST, TEMPLATE

CUSTOM = """
[async]
dialect = "custom"
submit_path = "/v1/images/generations"
submit_query = { async = "true" }
poll_path = "/v1/jobs/{id}"
id_field = "id"
status_field = "status"
result_field = "result"
statuses = { queued = "queued", in_progress = "running", succeeded = "succeeded", failed = "failed" }
"""


def test_custom_dialect_describing_the_jobs_api_passes_the_async_checks(tmp_path: Path) -> None:
    text = (GATEWAYS_DIR / "reference.toml").read_text()
    text = text.replace('[async]\ndialect = "jobs"\n', CUSTOM)
    assert 'dialect = "custom"' in text
    profile = tmp_path / "reference.toml"
    profile.write_text(text)
    (tmp_path / "reference.config.json.j2").write_text((GATEWAYS_DIR / "reference.config.json.j2").read_text())
    checks = [c for c in load_suites(SUITES_DIR).values() if c.category == "ASYNC"]
    outcomes = run_in_process(profile, lambda config: build_app(config).app, checks, FAST,
                              template_vars=TEMPLATE)
    assert {o.check_id: o.outcome for o in outcomes} == {c.id: "pass" for c in checks}


def test_reference_in_sync_dialect_passes_or_skips_everything(tmp_path: Path) -> None:
    text = (GATEWAYS_DIR / "reference.toml").read_text().replace('dialect = "jobs"', 'dialect = "sync"')
    profile = tmp_path / "reference.toml"
    profile.write_text(text)
    (tmp_path / "reference.config.json.j2").write_text((GATEWAYS_DIR / "reference.config.json.j2").read_text())
    outcomes = run_in_process(profile, lambda config: build_app(config).app, timeouts=FAST, template_vars=TEMPLATE)
    assert {o.check_id: o.message for o in outcomes if o.outcome not in ("pass", "skip")} == {}
    # Only the checks about jobs themselves have nothing to look at in a sync gateway.
    assert {o.check_id for o in outcomes if o.outcome == "skip"} == {"ASYNC-006", "ERR-015", "SEC-001", "SEC-003",
                                                                     "VIDEO-012"}


def test_unimplemented_dialects_are_refused_at_load_time(tmp_path: Path) -> None:
    import pytest

    from harness.config._profile import load_profile
    from harness.errors import ConfigError

    profile = tmp_path / "passthrough.toml"
    profile.write_text((GATEWAYS_DIR / "reference.toml").read_text().replace('"jobs"', '"passthrough"'))
    with pytest.raises(ConfigError, match="not implemented yet"):
        load_profile(profile)


def test_openai_videos_dialect_loads_and_runs(tmp_path: Path) -> None:
    """OpenAI's Videos API shape (POST /v1/videos, GET /v1/videos/{id}, .../content): video jobs
    pass every VIDEO check but cancel (the shape has none); images are plain OpenAI requests."""
    from harness.config._profile import load_profile

    text = (GATEWAYS_DIR / "reference.toml").read_text().replace('dialect = "jobs"', 'dialect = "openai-videos"')
    profile = tmp_path / "reference.toml"
    profile.write_text(text)
    (tmp_path / "reference.config.json.j2").write_text((GATEWAYS_DIR / "reference.config.json.j2").read_text())
    dialect = load_profile(profile).dialect
    assert (dialect.video_path, dialect.poll_path, dialect.content_path) == (
        "/v1/videos", "/v1/videos/{id}", "/v1/videos/{id}/content")
    outcomes = run_in_process(profile, lambda config: build_app(config).app, timeouts=FAST, template_vars=TEMPLATE)
    assert {o.check_id: o.message for o in outcomes if o.outcome not in ("pass", "skip")} == {}
    video = {o.check_id: o.outcome for o in outcomes if o.category == "VIDEO"}
    assert video == {**{f"VIDEO-{n:03d}": "pass" for n in range(1, 12)}, "VIDEO-012": "skip"}
    assert {o.check_id for o in outcomes if o.outcome == "skip"} == {
        "ASYNC-006", "ERR-015", "SEC-001", "SEC-003", "VIDEO-012"}
