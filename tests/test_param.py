"""PARAM: a fate for every documented parameter, generated from the request schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.checks._fates import ClientView, classify
from harness.checks._params import ENDPOINT_BY_CHECK, ENDPOINTS, plan, request_schema, routes_of, subschemas
from harness.checks._registry import load_suites
from harness.cli import app
from harness.config import _schemas as schemas
from harness.config._profile import ModelRoute, load_profile
from harness.paths import SUITES_DIR
from harness.records._capture import CapturedRequest
from harness.reference import build_app
from harness.report.fates import fate_matrix, fate_tables
from harness.report.markdown import render_markdown
from harness.report.matrix import render_matrix_markdown
from harness.report.runjson import build_run, now_iso, write_run
from harness.runner._inprocess import run_in_process
from tests.mutants import MUTANTS
from tests.test_mutation import FAST, PROFILE, TEMPLATE
from tests.test_report_render import sample_run

DIGEST = "sha256:" + "0" * 64
GATEWAY = {"name": "reference", "base_url": "http://127.0.0.1:1", "profile": str(PROFILE),
           "profile_digest": DIGEST, "dialect": "jobs"}
# What the issue names, at least: every one must be a judged parameter of its endpoint.
REQUIRED = {
    "PARAM-001": {"background", "output_format", "output_compression", "moderation", "quality", "size", "n", "user"},
    "PARAM-002": {"input_fidelity", "background", "output_format", "output_compression", "quality", "size", "n"},
    "PARAM-003": {"size", "n", "seed", "negative_prompt", "prompt_extend", "watermark"},
    "PARAM-004": {"size", "n", "seed", "negative_prompt", "prompt_extend", "watermark"},
    "PARAM-005": {"size", "n", "seed", "negative_prompt", "prompt_extend", "watermark"},
    "PARAM-006": {"translation_options"} | {f"translation_options.{m}" for m in
                                            ("source_lang", "target_lang", "terms", "tm_list", "domains")},
    "PARAM-007": {"num_outputs", "output_format", "seed", "aspect_ratio", "output_quality", "num_inference_steps"},
}


def param_checks() -> list[Any]:
    return [c for i, c in load_suites(SUITES_DIR).items() if i.startswith("PARAM-")]


def run_param(factory: Any, store: Path | None = None) -> list[Any]:
    return run_in_process(PROFILE, factory, checks=param_checks(), timeouts=FAST, template_vars=TEMPLATE,
                          store=store)


def test_checks_json_lists_one_param_check_per_endpoint() -> None:
    result = CliRunner().invoke(app, ["checks", "--json"])
    assert result.exit_code == 0, result.output
    listed = {c["id"]: c for c in json.loads(result.output) if c["id"].startswith("PARAM-")}
    assert set(listed) == set(ENDPOINT_BY_CHECK) == set(REQUIRED)
    assert {c["level"] for c in listed.values()} == {"MUST"}


def test_every_planned_value_is_valid_and_not_the_default() -> None:
    """The values come from the schemas the mocks validate with, and the mocks accept them."""
    profile = load_profile(PROFILE)
    for endpoint in ENDPOINTS:
        routes = routes_of(endpoint, profile.models)
        assert routes, f"the reference profile has no alias for {endpoint.name}"
        for route in routes:
            names = {p.name for p in plan(endpoint, route).parameters}
            assert REQUIRED[endpoint.check_id] <= names, (endpoint.check_id, route.alias, names)
            schema = request_schema(endpoint, route.upstream_model)
            assert schema is not None
            for param in plan(endpoint, route).parameters:
                for part in subschemas(schema, next(iter(endpoint.roots.values())) + param.path):
                    assert "default" not in part or part["default"] != param.value, (param.name, param.value)


def test_reference_forwards_or_maps_every_parameter_and_judge_rebuilds_the_fates(tmp_path: Path) -> None:
    outcomes = run_param(lambda config: build_app(config).app, store=tmp_path)
    assert {o.check_id: o.outcome for o in outcomes} == dict.fromkeys(REQUIRED, "pass")
    document = build_run(outcomes, run_id="test", started_at=now_iso(), finished_at=now_iso(),
                         gateway=GATEWAY, cassettes={"digest": DIGEST, "count": 0})
    assert not schemas.errors("report", document)
    fates = document["parameter_fates"]
    assert {f["fate"] for f in fates} == {"forwarded", "mapped"}
    judged = {(f["check_id"], f["parameter"]) for f in fates}
    assert {(c, p) for c, names in REQUIRED.items() for p in names} <= judged
    assert {f["alias"] for f in fates if f["check_id"] == "PARAM-003"} == {"qwen-image-2.0-pro",
                                                                          "qwen-image-2.0-pro-intl"}
    mapped = {(f["provider"], f["parameter"]) for f in fates if f["fate"] == "mapped"}
    assert mapped == {("dashscope", "size"), ("replicate", "num_outputs")}
    assert all(f["arrived_as"] for f in fates)

    write_run(document, tmp_path / "run.json")
    result = CliRunner().invoke(app, ["judge", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run.json").read_text())["parameter_fates"] == fates
    markdown = (tmp_path / "report.md").read_text()
    assert "### Parameter fates" in markdown and "`translation_options.tm_list`" in markdown
    assert "Parameter fates" in (tmp_path / "report.html").read_text()


def test_a_loud_refusal_is_refused_not_a_failure() -> None:
    outcomes = run_param(MUTANTS["input-fidelity-refused-loudly"][0].factory())
    assert {o.check_id: o.outcome for o in outcomes} == dict.fromkeys(REQUIRED, "pass")
    edit = next(o for o in outcomes if o.check_id == "PARAM-002")
    fate = next(f for f in edit.fates if f["parameter"] == "input_fidelity")
    assert fate["fate"] == "refused" and "nothing upstream" in fate["arrived_as"]


@pytest.mark.parametrize(("name", "check", "parameter", "fate"), [
    ("openai-background-dropped", "PARAM-001", "background", "dropped"),
    ("dashscope-seed-nested", "PARAM-003", "seed", "altered"),
    ("replicate-n-ignored", "PARAM-007", "num_outputs", "altered"),
])
def test_each_broken_fate_is_named_with_its_evidence(name: str, check: str, parameter: str, fate: str) -> None:
    outcomes = run_param(MUTANTS[name][0].factory())
    outcome = next(o for o in outcomes if o.check_id == check)
    assert outcome.outcome == "fail"
    found = {f["fate"] for f in outcome.fates if f["parameter"] == parameter}
    assert found == {fate}
    assert f"`{parameter}` {fate}" in outcome.evidence.actual


# -- the classification, on hand-made captures ------------------------------------------------------

ROUTE = ModelRoute("qwen-image-2.0-pro", "dashscope", "qwen-image-2.0-pro", "image.generate")
SIZE = next(p for p in plan(ENDPOINT_BY_CHECK["PARAM-003"], ROUTE).parameters if p.name == "size")
OK = ClientView(True, False, "200", "{}")


def capture(parameters: dict[str, Any], path: str = "/api/v1/services/aigc/multimodal-generation/generation"
            ) -> CapturedRequest:
    return CapturedRequest("dashscope", "POST", path, {}, {}, {"model": "m", "input": {}, "parameters": parameters})


@pytest.mark.parametrize(("upstream", "client", "fate"), [
    ([capture({"size": "1024*1536"})], OK, "mapped"),
    ([capture({"size": "1024x1536"})], OK, "altered"),
    ([capture({"extra_body": {"size": "1024*1536"}})], OK, "altered"),
    ([capture({})], OK, "dropped"),
    ([capture({"size": "1024*1536"}, path="/compatible-mode/v1/chat/completions")], OK, "altered"),
    ([], OK, "dropped"),
    ([], ClientView(False, True, "400", '{"error": {"message": "size is not supported"}}'), "refused"),
    ([], ClientView(False, True, "400", '{"error": {"message": "bad request"}}'), "failed"),
    ([], ClientView(False, True, "404", '{"error": {"message": "no route for sizes"}}'), "failed"),
    ([], ClientView(False, False, "500", "boom"), "failed"),
])
def test_classification(upstream: list[CapturedRequest], client: ClientView, fate: str) -> None:
    found = classify(SIZE, ROUTE.alias, upstream, client)
    assert found.fate == fate, found.arrived_as
    assert found.value_sent == "1024x1536"


def test_fate_tables_and_matrix() -> None:
    def row(fate: str) -> dict[str, Any]:
        return {"provider": "openai", "endpoint": "OpenAI image generation", "alias": "a", "parameter": "n",
                "value_sent": 5, "fate": fate, "arrived_as": "n = 5", "check_id": "PARAM-001"}

    one = {"parameter_fates": [row("forwarded")]}
    two = {"parameter_fates": [row("dropped")]}
    assert fate_tables(one)[0].counts == {"forwarded": 1}
    assert [r.cells for r in fate_matrix([one, two, {}])] == [["forwarded", "dropped", ""]]


def test_reports_render_without_fates() -> None:
    """A run.json from before PARAM (no parameter_fates) still renders."""
    document = sample_run()
    document.pop("parameter_fates", None)
    assert "Parameter fates" not in render_markdown(document)
    assert "Parameter fates" not in render_matrix_markdown([document, document])
