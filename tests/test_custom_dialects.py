"""The custom dialect describes job APIs unlike the built-in ones: two small gateways
(tests/gateways/), each with a broken variant, run through the example profiles of the README
(read from it, so the README cannot drift from what is tested)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness.config._profile import load_profile
from harness.paths import GATEWAYS_DIR, PROJECT_ROOT
from harness.reference import build_app
from harness.runner._inprocess import run_in_process
from tests.gateways import lro, prefer_wait
from tests.test_mutation import FAST, TEMPLATE


def readme_example(name: str) -> str:
    """The README's ```toml block that starts with `# example: NAME`."""
    blocks = re.findall(r"```toml\n(# example: [^\n]*\n.*?)```", (PROJECT_ROOT / "README.md").read_text(), re.S)
    found = [b for b in blocks if b.startswith(f"# example: {name}")]
    assert len(found) == 1, f"README has no single example {name!r}"
    return found[0].split("\n", 1)[1]


GATEWAYS = {
    "long-running operations": (lro.OperationsGateway, lro.BrokenOperationsGateway),
    "Prefer wait": (prefer_wait.PredictionsGateway, prefer_wait.BrokenPredictionsGateway),
}


def profile_with(tmp_path: Path, section: str) -> Path:
    # These gateways have no video surface: their profiles claim images and chat only.
    text = (GATEWAYS_DIR / "reference.toml").read_text().replace('capability = "video.generate"', 'capability = "x"')
    text = "\n[[models]]".join(b for b in text.split("\n[[models]]") if 'capability = "x"' not in b)
    assert '[async]\ndialect = "jobs"\n' in text
    profile = tmp_path / "reference.toml"
    profile.write_text(text.replace('[async]\ndialect = "jobs"\n', section))
    (tmp_path / "reference.config.json.j2").write_text((GATEWAYS_DIR / "reference.config.json.j2").read_text())
    return profile


def run(profile: Path, app_cls: Any) -> dict[str, str]:
    outcomes = run_in_process(profile, lambda config: build_app(config, app_cls=app_cls).app, timeouts=FAST,
                              template_vars=TEMPLATE)
    return {o.check_id: f"{o.outcome}: {o.message}" for o in outcomes}


@pytest.mark.parametrize("name", sorted(GATEWAYS))
def test_custom_dialect_gateway_has_no_must_failure(name: str, tmp_path: Path) -> None:
    good, _ = GATEWAYS[name]
    profile = profile_with(tmp_path, readme_example(name))
    assert load_profile(profile).dialect.name == "custom"
    verdicts = run(profile, good)
    assert {k: v for k, v in verdicts.items() if not v.startswith(("pass", "skip"))} == {}
    assert verdicts["ASYNC-002"].startswith("pass") and verdicts["ASYNC-006"].startswith("pass")


@pytest.mark.parametrize("name", sorted(GATEWAYS))
def test_broken_variant_fails_the_async_checks(name: str, tmp_path: Path) -> None:
    _, broken = GATEWAYS[name]
    verdicts = run(profile_with(tmp_path, readme_example(name)), broken)
    failed = {k for k, v in verdicts.items() if v.startswith("fail") and k.startswith("ASYNC")}
    assert {"ASYNC-003"} <= failed, verdicts
