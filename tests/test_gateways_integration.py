"""Real gateways started through their profiles: a few checks each, with the outcomes the audit found.

They need the gateways that gateways/install.sh puts in .gateways/ (.ci/run installs both); without
them each test is skipped with the command that installs it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.paths import GATEWAYS_DIR, PROJECT_ROOT
from harness.runner._runner import RunOptions, run

INSTALLED = PROJECT_ROOT / ".gateways"
LITELLM = INSTALLED / "litellm-venv" / "bin" / "litellm"
PORTKEY = INSTALLED / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"


def outcomes_of(profile: str, keyword: str, out: Path) -> dict[str, str]:
    document = run(RunOptions(profile=GATEWAYS_DIR / profile, out=out, keyword=keyword, quiet=True))
    outcomes = {c["check_id"]: c["outcome"] for c in document["checks"]}
    errors = {c["check_id"]: c["message"] for c in document["checks"] if c["outcome"] == "error"}
    assert not errors, f"the harness did not decide: {errors}"
    return outcomes


@pytest.mark.gateway("litellm")
@pytest.mark.skipif(not LITELLM.is_file(), reason=f"LiteLLM proxy not installed at {LITELLM}: "
                    "run gateways/install.sh litellm")
def test_litellm_routes_dashscope_and_keeps_translation_options(tmp_path: Path) -> None:
    outcomes = outcomes_of("litellm.toml", "MAP-001 or MAP-004 or MAP-009 or EXTRA-001 or ERR-001 or ERR-009",
                           tmp_path)
    assert outcomes == {"MAP-001": "pass", "MAP-009": "pass", "EXTRA-001": "pass",
                        "ERR-001": "fail",  # DashScope's and OpenAI's 400 surface; Replicate's 422 is never played
                        # (its Replicate alias answers 200 with empty data[] and calls no upstream)
                        "MAP-004": "fail",  # no DashScope image edits in 1.106.12
                        "ERR-009": "fail"}  # a malformed upstream body comes back as HTTP 200
    assert (tmp_path / "run.json").is_file() and (tmp_path / "gateway.log").is_file()


@pytest.mark.gateway("litellm")
@pytest.mark.skipif(not LITELLM.is_file(), reason=f"LiteLLM proxy not installed at {LITELLM}: "
                    "run gateways/install.sh litellm")
def test_litellm_as_deployed_sends_every_dashscope_image_to_singapore(tmp_path: Path) -> None:
    """With the documented region bases, LiteLLM keeps chat in its region but ignores a
    compatible-mode base for images and calls its default, the Singapore host."""
    outcomes = outcomes_of("litellm-deployed.toml", "MAP-009 or MAP-011 or MAP-012", tmp_path)
    assert outcomes == {"MAP-009": "pass", "MAP-011": "pass", "MAP-012": "fail"}
    crossings = json.loads((tmp_path / "crossings.json").read_text())
    image_hosts = {c["host"] for c in crossings if c["path"].endswith("/multimodal-generation/generation")}
    chat_hosts = {c["host"] for c in crossings if c["path"].endswith("/chat/completions")}
    assert image_hosts == {"dashscope-intl.aliyuncs.com"}
    assert chat_hosts == {"dashscope.aliyuncs.com", "dashscope-us.aliyuncs.com"}


@pytest.mark.gateway("portkey")
@pytest.mark.skipif(not PORTKEY.is_file() or shutil.which("node") is None,
                    reason=f"Portkey gateway (or node) not installed at {PORTKEY}: run gateways/install.sh portkey")
def test_portkey_routes_openai_but_drops_translation_options(tmp_path: Path) -> None:
    outcomes = outcomes_of("portkey.toml", "MAP-001 or MAP-005 or MAP-009 or EXTRA-001 or ERR-001", tmp_path)
    assert outcomes == {"MAP-005": "pass", "MAP-009": "pass",
                        "MAP-001": "fail",  # imageGenerate is not supported by dashscope
                        "EXTRA-001": "fail",  # translation_options dropped on the chat route
                        # the DashScope image request never reaches the upstream: MAP-001's defect
                        "ERR-001": "blocked"}
