"""AUTH and COST beyond the mutation proof: a profile that declares no client authentication,
the placeholder scan on scrubbed captures, and the profile keys' validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks._checklib import placeholder_credential
from harness.checks._registry import load_suites
from harness.config._profile import load_profile
from harness.config._redact import redact_headers
from harness.errors import ConfigError
from harness.paths import GATEWAYS_DIR, SUITES_DIR
from harness.records._capture import CapturedRequest
from harness.runner._inprocess import run_in_process
from tests.mutants import MUTANTS
from tests.test_mutation import FAST, PROFILE, TEMPLATE


def profile_copy(folder: Path, edit: str) -> Path:
    text = PROFILE.read_text().replace('client_auth = "keys"', edit)
    (folder / "reference.toml").write_text(text)
    (folder / "reference.config.json.j2").write_text((GATEWAYS_DIR / "reference.config.json.j2").read_text())
    return folder / "reference.toml"


def auth_checks() -> list:
    return [c for c in load_suites(SUITES_DIR).values() if c.category == "AUTH"]


def test_no_client_auth_skips_the_refusals_and_still_scans_forwarding(tmp_path: Path) -> None:
    """client_auth = "none": AUTH-001..006 skip with the reason; AUTH-007 still judges, and still
    catches a gateway that forwards a placeholder when the client sends no key."""
    profile = profile_copy(tmp_path, 'client_auth = "none"')
    mutant, _ = MUTANTS["forwards-placeholder-when-keyless"]
    outcomes = {o.check_id: o for o in run_in_process(profile, mutant.factory(), checks=auth_checks(),
                                                       timeouts=FAST, template_vars=TEMPLATE)}
    refusals = [f"AUTH-00{n}" for n in range(1, 7)]
    assert {outcomes[c].outcome for c in refusals} == {"skip"}
    assert all('client_auth = "none"' in outcomes[c].message for c in refusals)
    assert outcomes["AUTH-007"].outcome == "fail"
    assert "undefined" in outcomes["AUTH-007"].message


@pytest.mark.parametrize(("sent", "placeholder"), [
    ("Bearer undefined", True), ("Bearer", True), ("Bearer null", True), ("Token None", True), ("", True),
    ("Bearer sk-gwconf-real-provider-key-123", False), ("Bearer r8_realreplicatekey1234", False)])
def test_placeholders_are_found_in_scrubbed_captures(sent: str, placeholder: bool) -> None:
    record = CapturedRequest(seq=1, provider="dashscope", method="POST", path="/x", query={},
                             headers=redact_headers({"Authorization": sent}), body="")
    assert (placeholder_credential(record) is not None) == placeholder


def test_bad_auth_and_cost_keys_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"reference\.toml"):
        load_profile(profile_copy(tmp_path, 'client_auth = "sometimes"'))
    text = PROFILE.read_text().replace('budgets = true', 'budgets = true\nper_request = 1')
    (tmp_path / "reference.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"reference\.toml"):
        load_profile(tmp_path / "reference.toml")
