"""The fuzz campaign behind the FUZZ checks: the spec, the bounds, determinism."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config._profile import BUILTIN_DIALECTS, GatewayProfile, Timeouts, load_profile
from harness.errors import ConfigError
from harness.gateway._budget import ENV_VAR as LIVE_ENV_VAR
from harness.gateway._budget import BudgetExhausted, Caps, Ledger, LiveRun
from harness.gateway._session import Session, open_session
from harness.paths import CASSETTES_DIR, GATEWAYS_DIR
from harness.records._outcome import Exchange
from harness.reference import build_app
from harness.scenarios import _fuzzing as fuzzing
from harness.scenarios._fuzzing import Campaign, FuzzCall

PROFILE = GATEWAYS_DIR / "reference.toml"
ALL_OPERATIONS = ["GET /v1/jobs/{id}", "POST /v1/chat/completions", "POST /v1/images/edits",
                  "POST /v1/images/generations"]


@pytest.fixture(scope="module")
def profile() -> GatewayProfile:
    return load_profile(PROFILE)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    with open_session(PROFILE, CASSETTES_DIR, tmp_path_factory.mktemp("fuzz"), environ={},
                      app_factory=lambda config: build_app(config).app) as session:
        yield session


def labels(profile: GatewayProfile) -> list[str]:
    return [op.label for op in fuzzing.operations(fuzzing.load_schema(profile))]


def test_spec_is_valid_openapi_3_1() -> None:
    import schemathesis  # here, not at collection: its import costs every xdist worker 0.4 s

    schema = schemathesis.openapi.from_path(fuzzing.SPEC_PATH)
    schema.validate()
    assert schema.raw_schema["openapi"].startswith("3.1")
    assert sorted(op.label for op in fuzzing.operations(schema)) == ALL_OPERATIONS


def test_profile_aliases_become_the_model_enum(profile: GatewayProfile) -> None:
    spec = fuzzing.gateway_spec(profile)
    models = spec["components"]["schemas"]["CreateImageRequest"]["properties"]["model"]["enum"]
    assert "qwen-image-2.0-pro" in models and "image-fallback" in models
    assert "qwen-plus" not in models
    chat = spec["components"]["schemas"]["CreateChatCompletionRequest"]["properties"]["model"]["enum"]
    assert chat == ["qwen-mt-turbo", "qwen-plus"]


def test_only_claimed_operations_are_fuzzed(profile: GatewayProfile) -> None:
    assert labels(profile) == ALL_OPERATIONS
    sync_no_edit = dataclasses.replace(profile, dialect=BUILTIN_DIALECTS["sync"],
                                       models=tuple(r for r in profile.models if r.capability != "image.edit"))
    assert labels(sync_no_edit) == ["POST /v1/chat/completions", "POST /v1/images/generations"]


def test_cases_per_operation_are_bounded(profile: GatewayProfile) -> None:
    for operation in fuzzing.operations(fuzzing.load_schema(profile)):
        cases = fuzzing.generate_cases(operation, 3)
        assert 1 <= len(cases) <= 6
        assert {c.method.upper() for c in cases} == {operation.method.upper()}


def test_coverage_cases_include_a_missing_prompt(profile: GatewayProfile) -> None:
    schema = fuzzing.load_schema(profile)
    generations = next(op for op in fuzzing.operations(schema) if op.path == "/v1/images/generations")
    cases = fuzzing.coverage_cases(generations, fuzzing.DEFAULT_EXAMPLES)
    missing = [c for c in cases if fuzzing.describe_case(c) == "Missing required property: prompt"]
    assert missing and "prompt" not in missing[0].body and missing[0].body["model"] in fuzzing.aliases_for(
        profile, "image.generate")


def test_generation_is_the_same_every_time(profile: GatewayProfile) -> None:
    def sample() -> list[tuple[str, str, str]]:
        schema = fuzzing.load_schema(profile)
        return [(op.label, fuzzing.describe_case(c), repr(c.body)) for op in fuzzing.operations(schema)
                for c in fuzzing.generate_cases(op, 4)]

    assert sample() == sample()


@pytest.mark.parametrize(("value", "expected"), [(None, fuzzing.DEFAULT_EXAMPLES), ("3", 3), (" 25 ", 25)])
def test_examples_per_operation_is_configurable(value: str | None, expected: int) -> None:
    environ = {} if value is None else {fuzzing.EXAMPLES_ENV: value}
    assert fuzzing.examples_per_operation(environ) == expected


@pytest.mark.parametrize("value", ["many", "0", "100000"])
def test_examples_per_operation_refuses_nonsense(value: str) -> None:
    with pytest.raises(ConfigError):
        fuzzing.examples_per_operation({fuzzing.EXAMPLES_ENV: value})


def call(status: int | None, elapsed: float = 0.01, body: object = None, timed_out: bool = False) -> FuzzCall:
    return FuzzCall("POST /v1/images/generations", "fuzzed", "curl ...", Exchange("POST", "http://gw", {}, ""),
                    status, body, elapsed, "timeout" if timed_out else None, timed_out)


def test_campaign_verdicts_are_plain_data() -> None:
    run = Campaign(bound=2.0, examples=1, calls=[
        call(400, body={"error": {"message": "bad"}}), call(500), call(404, elapsed=2.5),
        call(None, elapsed=2.0, timed_out=True)])
    assert [c.status for c in run.server_errors()] == [500]
    assert [c.status for c in run.client_errors()] == [400, 404]
    assert [c.status for c in run.slow()] == [404, None]
    assert len(run.answered()) == 3


def test_two_campaigns_against_the_reference_agree(reference: Session, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    profile = dataclasses.replace(reference.profile, timeouts=Timeouts(request=4))
    first = fuzzing.run_campaign(reference.env, profile, 4)
    second = fuzzing.run_campaign(reference.env, profile, 4)
    outcome = [(c.operation, c.description, c.status) for c in first.calls]
    assert outcome == [(c.operation, c.description, c.status) for c in second.calls]
    assert {c.operation for c in first.calls} == set(ALL_OPERATIONS)
    assert not first.server_errors() and not first.slow() and first.client_errors()
    assert not (tmp_path / ".hypothesis").exists(), "hypothesis wrote to the cwd"


def test_reproductions_never_carry_the_client_key(reference: Session) -> None:
    run = fuzzing.campaign(reference.env, reference.profile, 2)
    assert run is fuzzing.campaign(reference.env, reference.profile, 2), "the FUZZ checks share one campaign"
    for fuzz_call in run.calls:
        assert reference.env.api_key not in fuzz_call.curl
        assert "$GWCONF_API_KEY" in fuzz_call.curl
        assert reference.env.api_key not in str(fuzz_call.exchange)


def test_a_black_box_campaign_pays_for_each_case_and_stops_at_the_cap(reference: Session, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    live = LiveRun(str(tmp_path / "ledger.json"), Caps(max_images=3), {}, str(tmp_path / "live"))
    monkeypatch.setenv(LIVE_ENV_VAR, live.to_json())
    profile = dataclasses.replace(reference.profile, timeouts=Timeouts(request=4))

    run = fuzzing.run_campaign(reference.env, profile, 4)

    spent = Ledger(Path(live.ledger), live.caps).spend()
    paid = [c for c in run.calls if c.operation != "GET /v1/jobs/{id}"]  # a poll makes nothing
    assert spent.exhausted and spent.images <= 3 and spent.requests == len(paid)
    assert any("live budget exhausted" in note and "were not sent" in note for note in run.notes)
    tape = next((tmp_path / "live").glob("fuzz-campaign-*.yaml")).read_text()
    assert tape.count("- request:") == len(run.calls) and reference.env.api_key not in tape


def test_a_black_box_campaign_refused_at_once_sends_nothing(reference: Session, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Every case costs the one price (an alias without a price pays the dearest), and no cent is allowed.
    live = LiveRun(str(tmp_path / "ledger.json"), Caps(max_cost=0.0), {"any": 0.01}, str(tmp_path / "live"))
    monkeypatch.setenv(LIVE_ENV_VAR, live.to_json())
    only_paid = dataclasses.replace(reference.profile, dialect=BUILTIN_DIALECTS["sync"])  # no job to poll

    before = len(reference.upstreams.captures.all())

    with pytest.raises(BudgetExhausted):
        fuzzing.run_campaign(reference.env, only_paid, 2)
    assert not list((tmp_path / "live").glob("*.yaml"))
    assert len(reference.upstreams.captures.all()) == before
