"""Black-box runs: no mocks of gwconf's own, live calls within a budget, exchanges on tape.

The "live" gateway here is the reference gateway on the mocks, started by the test and handed
to `gwconf run` as a black box (a profile with mode = "black-box" and no [start]); the mocks'
captures are the independent count of what really reached a provider. In process, the same
gateway is judged normally and as a black box: the client-side verdicts must agree, and what
each check declares it observes must hold.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer

from harness.checks._judge import UNOBSERVED
from harness.checks._registry import CLIENT, OBSERVES, SCENARIOS, UPSTREAM, Check, check, load_suites
from harness.cli import app
from harness.config._profile import BLACK_BOX, GatewayProfile, load_profile
from harness.gateway._budget import ENV_VAR as LIVE_ENV_VAR
from harness.gateway._budget import BudgetExhausted, Caps, Charge, Ledger, LiveRun, charge_for, prices
from harness.gateway._env import RunEnv
from harness.gateway._session import Session, open_session
from harness.paths import CASSETTES_DIR, GATEWAYS_DIR, PROJECT_ROOT, SUITES_DIR
from harness.records._capture import CaptureLog
from harness.records._outcome import Outcome
from harness.records._recording import Recording
from harness.reference.app import build_app
from harness.runner._executor import Recorder, judge_recordings, load_recordings, save_facts
from harness.scenarios._driver import drive
from harness.scenarios._sizes import cheapest_size
from tests.test_mutation import FAST, TEMPLATE

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

    # NORM-001/005/006/007 judge the every-alias scenario (one request per alias) from the client's side.
    result = gwconf("--gateway", str(profile), "--out", str(out), "-k", "NORM", "--max-images", "3")

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
    # The checks that need the upstream skip with their reason, and their own scenarios sent nothing.
    unobserved = {o["check_id"] for o in outcomes if o["outcome"] == "skip" and o["message"] == UNOBSERVED}
    assert unobserved == {"NORM-002", "NORM-003", "NORM-004"}
    assert {o["check_id"] for o in outcomes if o["observes"] == "client"} == {"NORM-001", "NORM-005", "NORM-006",
                                                                             "NORM-007"}
    assert "Black box: client-side checks judged; 3 that need upstream observation skipped." in \
        (out / "report.md").read_text()
    # Judged again offline from its recordings, as a black box still: the same verdicts.
    assert CliRunner().invoke(app, ["judge", str(out), "-q"]).exit_code == 0
    again = {o["check_id"]: (o["outcome"], o["message"]) for o in json.loads((out / "run.json").read_text())["checks"]}
    assert {o["check_id"]: again[o["check_id"]] for o in outcomes} == {
        o["check_id"]: (o["outcome"], o["message"]) for o in outcomes}
    assert {v for k, v in again.items() if k.startswith("MAP")} == {("skip", UNOBSERVED)}  # MAP judges every-alias too
    assert sorted(p.stem for p in (out / "recordings").glob("*.json")) == ["every-alias", "run-facts"]


def test_the_budget_goes_to_checks_in_catalogue_order(reference, tmp_path):
    """suites/fuzz.py sorts before suites/map.py, but MAP-007 comes first in the catalogue: it
    gets the one image, and the fuzz campaign stops at its first paid case."""
    profile = black_box_profile(tmp_path / "bb.toml", reference.env.gateway_url)
    out = tmp_path / "out"

    gwconf("--gateway", str(profile), "--out", str(out), "-k", "FUZZ or MAP-007", "--max-images", "1")

    checks = {o["check_id"]: o for o in json.loads((out / "run.json").read_text())["checks"]}
    assert checks["MAP-007"]["outcome"] == "pass"
    fuzz = checks["FUZZ-001"]
    assert fuzz["outcome"] == "pass" and any("live budget exhausted" in n and "were not sent" in n
                                             for n in fuzz["evidence"]["notes"])
    assert json.loads((out / "budget.json").read_text())["spent"]["images"] == 1


def test_live_exchanges_are_taped_as_scrubbed_cassettes(reference, tmp_path):
    profile = black_box_profile(tmp_path / "bb.toml", reference.env.gateway_url)
    out = tmp_path / "out"

    gwconf("--gateway", str(profile), "--out", str(out), "-k", "NORM-001 or NORM-006", "--max-images", "5")

    # One tape per scenario: NORM-001 and NORM-006 both judge the `every-alias` scenario.
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


# -- the same gateway judged normally and as a black box -----------------------------------------

@dataclass
class NormalRun:
    session: Session
    outcomes: dict[str, Outcome]
    recordings: dict[str, Recording]
    store: Path  # the recordings on disk, as `gwconf run` keeps them


@pytest.fixture(scope="module")
def normal_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NormalRun]:
    """The reference on its mocks, in process behind the seam (no socket), judged on the whole
    catalogue once; the session stays open for the black-box runs of the same gateway."""
    tmp = tmp_path_factory.mktemp("normal")
    with open_session(GATEWAYS_DIR / "reference.toml", CASSETTES_DIR, tmp / "ref", environ={},
                      app_factory=lambda config: build_app(config).app, template_vars=TEMPLATE,
                      sockets=False) as session:
        recorder = Recorder(session.env, dataclasses.replace(session.profile, timeouts=FAST),
                            session.upstreams.captures, tmp / "run")
        save_facts(tmp / "run", recorder.facts)
        outcomes = {o.check_id: o for o in recorder.run(list(load_suites(SUITES_DIR).values()))}
        yield NormalRun(session, outcomes, recorder.recordings, tmp / "run")


def seen_as_black_box(session: Session, tmp_path: Path, caps: Caps) -> tuple[RunEnv, GatewayProfile, LiveRun]:
    """The same gateway through its client port only: no mock URL, no provider key, no egress
    log; every paid request charged to a live budget (set in the environment by the caller)."""
    path = black_box_profile(tmp_path / "bb.toml", session.env.gateway_url)
    profile = dataclasses.replace(load_profile(path), timeouts=FAST)
    env = dataclasses.replace(session.env, profile_path=str(path), upstream_urls={}, provider_keys={},
                              egress_url="", gateway_started=False)
    return env, profile, LiveRun(str(tmp_path / "ledger.json"), caps, prices(profile), str(tmp_path / "live"))


def test_black_box_verdicts_equal_a_normal_runs_on_the_client_side(normal_run, tmp_path, monkeypatch):
    """Judged as gwconf's own gateway, then again as a black box: no captures, no egress log,
    no mock asked to play anything."""
    checks = list(load_suites(SUITES_DIR).values())
    client = [c for c in checks if c.observes == CLIENT]
    normal = normal_run.outcomes
    env, profile, live = seen_as_black_box(normal_run.session, tmp_path, Caps(max_images=1000))
    monkeypatch.setenv(LIVE_ENV_VAR, live.to_json())

    recorder = Recorder(env, profile, CaptureLog())
    black_box = {o.check_id: o for o in recorder.run(checks)}

    assert {c.id: black_box[c.id].outcome for c in client} == {c.id: normal[c.id].outcome for c in client}
    assert all(normal[c.id].outcome == "pass" for c in client)  # judged, not skipped, in both runs
    assert {c.id: (black_box[c.id].outcome, black_box[c.id].message) for c in checks if c.observes != CLIENT} == {
        c.id: ("skip", UNOBSERVED) for c in checks if c.observes != CLIENT}
    # A scenario no client-side check judges was never driven: decided before any request.
    assert set(recorder.recordings) == {c.scenario for c in client}
    sent = [x for r in recorder.recordings.values() for x in r.exchanges]
    assert sent and not any(" scenario=" in x.request_body for x in sent)  # markers ask no mock to play
    # Every request that could make a provider generate was paid for, the fuzz campaign's too
    # (its cases were taped besides).
    paid = [x for x in sent if charge_for(x.method, x.path, None, {}, profile.dialect.submit_path) is not None]
    fuzzed = [x for x in recorder.recordings["fuzz-campaign"].exchanges if x in paid]
    assert fuzzed and Ledger(Path(live.ledger), live.caps).spend().requests == len(paid)
    assert [p.name.rsplit("-", 1)[0] for p in (tmp_path / "live").glob("fuzz-campaign-*.yaml")] == ["fuzz-campaign"]


# -- what each check observes --------------------------------------------------------------------
# The proof that the declarations are honest: the normal run's recordings, with everything the
# mocks saw taken out (captures, strays, egress, the provider keys and mock URLs of the run facts)
# and judged as a black-box run judges, give every client-side check the verdict the whole
# recording gave it, and every other check `skip` "needs upstream observation". A client-side
# check that reads the upstream, a mock's play or a mock's file errors there (the Judgement
# refuses the read), so a wrong declaration cannot pass; the second test shows that it does not.

def without_upstream(recording: Recording) -> Recording:
    """The recording as a black box would have made it: the client's side only."""
    recording = Recording.from_dict(recording.to_dict())
    recording.stray, recording.egress = [], []
    for step in recording.steps:
        step.upstream = []
    return recording


def judged_as_black_box(checks: Iterable[Check], store: Path) -> dict[str, Outcome]:
    facts, recordings = load_recordings(store)
    facts = dataclasses.replace(facts, upstream_urls={}, provider_key_marks=[], provider_key_names={})
    profile = dataclasses.replace(load_profile(GATEWAYS_DIR / "reference.toml"), mode=BLACK_BOX, timeouts=FAST)
    blind = {name: without_upstream(r) for name, r in recordings.items()}
    return {o.check_id: o for o in judge_recordings(checks, blind, profile, facts)}


def misjudged(checks: Iterable[Check], normal: dict[str, Outcome], blind: dict[str, Outcome]) -> list[str]:
    """Every check whose black-box verdict is not what its declaration promises."""
    wrong = []
    for item in checks:
        got, want = blind[item.id], normal[item.id]
        if item.observes == CLIENT and (got.outcome, got.message) != (want.outcome, want.message):
            wrong.append(f"{item.id}: {want.outcome} with the upstream, {got.outcome} without ({got.message[:160]})")
        if item.observes != CLIENT and (got.outcome, got.message) != ("skip", UNOBSERVED):
            wrong.append(f"{item.id}: {got.outcome} {got.message[:160]}")
    return wrong


def test_client_side_checks_judge_the_same_without_the_upstream(normal_run):
    checks = list(load_suites(SUITES_DIR).values())

    assert misjudged(checks, normal_run.outcomes, judged_as_black_box(checks, normal_run.store)) == []
    assert len([c for c in checks if c.observes == CLIENT]) >= 10


def test_a_check_declared_client_side_wrongly_is_caught(normal_run):
    catalogue = load_suites(SUITES_DIR)
    # MAP-008 passes on no capture at all (an unknown model must reach no provider), NORM-002
    # compares with the mock's file, ERR-001 needs the mock to play a 400: none is client-side.
    wrong = [dataclasses.replace(catalogue[c], observes=CLIENT) for c in ("MAP-008", "NORM-002", "ERR-001")]

    found = misjudged(wrong, normal_run.outcomes, judged_as_black_box(wrong, normal_run.store))

    assert [line.split(":")[0] for line in found] == ["MAP-008", "NORM-002", "ERR-001"]
    assert all("is declared client-side but reads" in line for line in found)


def test_every_check_declares_what_it_observes():
    catalogue = load_suites(SUITES_DIR)
    assert {c.observes for c in catalogue.values()} == set(OBSERVES)
    assert check.__kwdefaults__["observes"] == UPSTREAM  # the safe default: a black box skips it
    with pytest.raises(ValueError, match="observes must be one of"):
        check("MAP-999", "MUST", needs="any", spec="", scenario="every-alias", observes="both")
    listed = json.loads(CliRunner().invoke(app, ["checks", "--json"]).output)
    assert {c["id"]: c["observes"] for c in listed} == {c.id: c.observes for c in catalogue.values()}


# -- cheapest sizes -------------------------------------------------------------------------------

def test_the_cheapest_size_comes_from_the_catalogue():
    def cheapest(provider: str, model: str, capability: str = "image.generate") -> str | None:
        return cheapest_size(CASSETTES_DIR, provider, model, capability)

    assert cheapest("dashscope", "qwen-image-2.0-pro") == "512x512"  # a range of areas: its lower bound
    assert cheapest("dashscope", "qwen-image-plus") == "1664x928"  # a list of sizes: the smallest area
    assert cheapest("dashscope", "wan2.2-t2i-flash") == "512x512"  # sides 512..1440
    assert cheapest("dashscope", "qwen-image-edit-plus", "image.edit") == "512x512"
    assert cheapest("openai", "gpt-image-2") == "1024x1024"  # no lower bound: the smallest OpenAI documents
    assert cheapest("dashscope", "wan2.6-t2v", "video.generate") is None  # none bounded: the scenario's own
    assert cheapest("openai", "no-such-model") is None


def test_a_black_box_run_asks_for_the_cheapest_size_where_a_scenario_picks_one(normal_run, tmp_path, monkeypatch):
    env, profile, live = seen_as_black_box(normal_run.session, tmp_path, Caps(max_images=20))
    monkeypatch.setenv(LIVE_ENV_VAR, live.to_json())
    name = "dashscope-image-parameters"  # asks qwen-image-2.0-pro for 1024x1024 in its step "size"

    recording = drive(SCENARIOS[name], env, profile, CaptureLog())

    step = recording.step("size")
    assert step is not None and json.loads(step.exchanges[0].request_body)["size"] == "512x512"
    assert "qwen-image-2.0-pro: size 1024x1024 asked as 512x512, the cheapest qwen-image-2.0-pro allows (black box)" \
        in recording.notes
    others = [json.loads(x.request_body) for s in recording.steps if s.name != "size" for x in s.exchanges
              if x.method == "POST"]
    assert others and not any("size" in body for body in others)  # a size nobody picked stays the provider's
    mocked = normal_run.recordings[name].step("size")
    assert mocked is not None and json.loads(mocked.exchanges[0].request_body)["size"] == "1024x1024"
