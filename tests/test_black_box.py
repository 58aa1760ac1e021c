"""Black-box runs: no mocks of gwconf's own, live calls within a budget, exchanges on tape.

The "live" gateway here is the reference gateway on the mocks, started by the test and handed
to `gwconf run` as a black box (a profile with mode = "black-box" and no [start]); the mocks'
captures are the independent count of what really reached a provider.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer

from harness.gateway._budget import BudgetExhausted, Caps, Charge, Ledger, charge_for
from harness.gateway._session import Session, open_session
from harness.paths import CASSETTES_DIR, GATEWAYS_DIR, PROJECT_ROOT
from harness.reference.app import build_app

CLIENT_KEY = "gwk-blackbox-client-key-0123456789"
IMAGE_PATHS = ("/api/v1/services/aigc/multimodal-generation/generation",
               "/api/v1/services/aigc/text2image/image-synthesis", "/v1/images/generations", "/v1/images/edits",
               "/v1/models/black-forest-labs/flux-schnell/predictions")


# -- the budget, as pure data ------------------------------------------------------------------

def test_only_requests_that_can_generate_are_charged():
    prices = {"img": 0.04, "chat": 0.002}
    assert charge_for("POST", "/v1/images/generations?async=true", {"model": "img", "n": 3}, prices) == Charge(3, 0.12)
    assert charge_for("POST", "/v1/images/edits", {"model": "img", "n": "2"}, prices) == Charge(2, 0.08)
    assert charge_for("POST", "/v1/chat/completions", {"model": "chat"}, prices) == Charge(0, 0.002)
    assert charge_for("GET", "/v1/jobs/abc", None, prices) is None
    assert charge_for("GET", "/v1/models", None, prices) is None
    # an alias the profile does not price (a check's unknown model) costs the dearest price
    assert charge_for("POST", "/v1/images/generations", {"model": "nope"}, prices) == Charge(1, 0.04)


def test_the_ledger_refuses_at_the_cap_and_stays_shut(tmp_path):
    ledger = Ledger(tmp_path / "l.json", Caps(max_images=2))
    ledger.charge(Charge(1, 0))
    ledger.charge(Charge(1, 0))
    with pytest.raises(BudgetExhausted, match="live budget exhausted"):
        ledger.charge(Charge(1, 0))
    with pytest.raises(BudgetExhausted):  # shut: even a free-of-images request after the cap
        ledger.charge(Charge(0, 0))
    spend = ledger.spend()
    assert (spend.images, spend.requests, spend.refused, spend.exhausted) == (2, 2, 2, True)


def test_the_cost_cap_holds_under_concurrent_charges(tmp_path):
    ledger = Ledger(tmp_path / "l.json", Caps(max_cost=1.0))
    refused = []

    def spend() -> None:
        for _ in range(10):
            try:
                ledger.charge(Charge(1, 0.1))
            except BudgetExhausted:
                refused.append(1)

    threads = [threading.Thread(target=spend) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (ledger.spend().images, len(refused)) == (10, 50)


# -- a whole run against the reference, treated as a black box --------------------------------

@pytest.fixture
def reference(tmp_path: Path) -> Iterator[Session]:
    factory = lambda config: build_app(config).app  # noqa: E731
    with open_session(GATEWAYS_DIR / "reference.toml", CASSETTES_DIR, tmp_path / "ref",
                      environ={"GWCONF_REFERENCE_KEY": CLIENT_KEY, "GWCONF_REFERENCE_KEY_B": CLIENT_KEY + "b"},
                      app_factory=factory) as session:
        yield session


def black_box_profile(path: Path, gateway_url: str) -> Path:
    """The reference's own profile, as someone who does not host it would write it."""
    text = (GATEWAYS_DIR / "reference.toml").read_text()
    head, _, rest = text.partition("[start]")
    rest = rest[rest.index("[async]"):]  # no [start]: gwconf does not host it
    head = head.replace('base_url = "http://127.0.0.1:{port}"', f'base_url = "{gateway_url}"')
    head = head.replace("generate_keys = true\n", 'mode = "black-box"\n').replace('name = "reference"',
                                                                                 'name = "reference-black-box"')
    models, _, fallbacks = rest.partition("[[fallbacks]]")
    models = models.replace('capability = "image.generate"', 'capability = "image.generate"\nprice_usd = 0.04')
    path.write_text(head + models + "[[fallbacks]]" + fallbacks)
    return path


def gwconf(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GWCONF_REFERENCE_KEY": CLIENT_KEY, "GWCONF_REFERENCE_KEY_B": CLIENT_KEY + "b"}
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", *args, "-q"], capture_output=True,
                          text=True, timeout=300, cwd=PROJECT_ROOT, env=env)


def paid_upstream_requests(session: Session) -> list[str]:
    return [f"{r.method} {r.path}" for r in session.upstreams.captures.all()
            if r.method == "POST" and r.path in IMAGE_PATHS]


def test_the_live_budget_stops_the_run_at_the_cap(reference, tmp_path):
    profile = black_box_profile(tmp_path / "bb.toml", reference.env.gateway_url)
    out = tmp_path / "out"

    result = gwconf("--gateway", str(profile), "--out", str(out), "-k", "MAP", "--max-images", "3")

    assert result.returncode in (0, 1), result.stderr
    spent = json.loads((out / "budget.json").read_text())
    assert spent["caps"] == {"max_images": 3, "max_cost": None}
    assert spent["spent"]["images"] == 3 and spent["spent"]["exhausted"] and spent["spent"]["refused"] >= 1
    # what really reached a provider: three image requests, not one more
    assert len(paid_upstream_requests(reference)) == 3
    document = json.loads((out / "run.json").read_text())
    assert document["gateway"]["mode"] == "black-box"
    outcomes = document["checks"]
    stopped = [o["check_id"] for o in outcomes if "live budget exhausted" in o.get("message", "")]
    assert stopped and all(o["outcome"] == "skip" for o in outcomes if o["check_id"] in stopped)


def test_live_exchanges_are_taped_as_scrubbed_cassettes(reference, tmp_path):
    profile = black_box_profile(tmp_path / "bb.toml", reference.env.gateway_url)
    out = tmp_path / "out"

    gwconf("--gateway", str(profile), "--out", str(out), "-k", "MAP-001 or MAP-009", "--max-images", "5")

    # One tape per scenario: MAP-001 and MAP-009 both judge the `every-alias` scenario.
    tapes = sorted((out / "live").glob("*.yaml"))
    assert [t.name.rsplit("-", 1)[0] for t in tapes] == ["every-alias"]
    for tape in tapes:
        text = tape.read_text()
        assert CLIENT_KEY not in text and "[REDACTED sha256:" in text
        requests, responses, metadata = deserialize(text, yamlserializer)
        assert requests and len(requests) == len(responses)
        assert metadata["gwconf"]["provenance"]["kind"] == "live-recording"
        assert all(r.uri.startswith(reference.env.gateway_url) for r in requests)
    # every-alias asks one image of each image alias until the cap; chat is free of images
    spent = json.loads((out / "budget.json").read_text())["spent"]
    assert spent["images"] == 5 and spent["exhausted"]


def test_a_black_box_run_without_a_budget_is_refused(reference, tmp_path):
    profile = black_box_profile(tmp_path / "bb.toml", reference.env.gateway_url)

    result = gwconf("--gateway", str(profile), "--out", str(tmp_path / "out"))

    assert result.returncode == 2
    assert result.stderr.strip().endswith("a black-box run calls live providers; give --max-images and/or --max-cost")
    assert paid_upstream_requests(reference) == []


def test_a_cost_cap_needs_every_price(reference, tmp_path):
    profile = black_box_profile(tmp_path / "bb.toml", reference.env.gateway_url)  # chat aliases have no price

    result = gwconf("--gateway", str(profile), "--out", str(tmp_path / "out"), "--max-cost", "1")

    assert result.returncode == 2
    assert "--max-cost needs price_usd on every model; missing on " in result.stderr
    assert "qwen-mt-turbo, qwen-plus" in result.stderr  # the chat aliases (the edits have no price either)


def test_a_black_box_profile_may_not_be_started(tmp_path):
    profile = tmp_path / "bb.toml"
    profile.write_text(textwrap.dedent("""\
        name = "bb"
        mode = "black-box"
        base_url = "http://127.0.0.1:{port}"
        api_key_env = "GWCONF_REFERENCE_KEY"
        [start]
        command = ["true"]
        [[models]]
        alias = "m"
        provider = "openai"
        upstream_model = "gpt-image-2"
        capability = "image.generate"
        """))
    result = gwconf("--gateway", str(profile), "--out", str(tmp_path / "out"), "--max-images", "1")
    assert result.returncode == 2
    assert "a black-box profile describes a gateway gwconf does not host; remove [start]" in result.stderr
