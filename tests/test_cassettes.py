"""The shipped cassettes: valid, self-contained, honest about where they come from."""

from __future__ import annotations

import base64
import json
import shutil
import struct
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from harness.config import _schemas as schemas
from harness.config._cassette import FILES_HOST, Cassette, load_cassette, load_cassettes
from harness.config._cassette_check import validate_tree
from harness.config._catalogue import Catalogue, load_catalogues
from harness.config._profile import load_profile
from harness.errors import ConfigError
from harness.paths import CASSETTES_DIR, GATEWAYS_DIR, SCHEMAS_DIR
from harness.report.markdown import render_markdown
from harness.report.runjson import build_run, cassettes_summary, now_iso

FILES_DIR = CASSETTES_DIR / "files"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_KEYS = {"image", "url"}  # DashScope content[].image and results[].url, OpenAI data[].url

# Scenario names are an API: checks and the reference gateway pick them by marker.
REQUIRED_SCENARIOS = {
    "dashscope": {
        "image-sync", "image-sync-n2", "image-sync-business-error", "image-async",
        "image-async-failed", "image-async-never", "image-async-partial", "image-async-poll-error",
        "image-edit", "chat-compatible", "mt-compatible", "mt-native",
        "error-400", "error-401", "error-403", "error-429", "error-500", "error-503",
        "fault-hang", "fault-drop", "fault-malformed",
    },
    "openai": {
        "image-retired", "image-b64", "image-edit", "chat", "video",
        "error-400", "error-401", "error-403", "error-429", "error-500", "error-503",
        "fault-hang", "fault-drop", "fault-malformed",
    },
    "replicate": {
        "prediction", "prediction-failed", "prediction-canceled",
        "error-401", "error-422", "error-429", "error-500",
    },
}


def walk(value: Any, key: str | None = None) -> Iterator[tuple[str | None, Any]]:
    """Every (key, leaf) pair of a JSON value; list items inherit their list's key."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item, key)
    else:
        yield key, value


def response_json(cassette: Cassette) -> Iterator[tuple[int, Any]]:
    for n, inter in enumerate(cassette.interactions, start=1):
        try:
            yield n, json.loads(inter.response_body)
        except ValueError:
            assert cassette.fault.get("kind") == "malformed", f"{cassette.path}: interaction {n}"


def image_urls(cassette: Cassette) -> Iterator[tuple[int, str]]:
    for n, body in response_json(cassette):
        for key, leaf in walk(body):
            is_replicate_output = cassette.provider == "replicate" and key == "output"
            if isinstance(leaf, str) and (key in IMAGE_KEYS or is_replicate_output):
                yield n, leaf


@pytest.fixture(scope="module")
def shipped() -> list[Cassette]:
    return load_cassettes(CASSETTES_DIR)


def test_shipped_cassettes_validate_without_problems():
    assert validate_tree(CASSETTES_DIR) == []


def test_every_schema_the_routes_name_exists():
    named = {r.request for r in schemas.ROUTES} | {r.response for r in schemas.ROUTES}
    named |= set(schemas.ERROR_SCHEMAS.values())
    for name in sorted(n for n in named if n):
        assert (SCHEMAS_DIR / f"{name}.schema.json").is_file(), name
        schemas.validator(name)  # resolves every $ref


def test_required_scenarios_exist(shipped):
    for provider, wanted in REQUIRED_SCENARIOS.items():
        have = {c.scenario for c in shipped if c.provider == provider}
        assert wanted <= have, f"{provider}: missing {sorted(wanted - have)}"


def test_error_and_fault_scenarios_are_never_defaults(shipped):
    by_name = {(c.provider, c.scenario): c for c in shipped}
    image_models = {
        "dashscope": set(by_name["dashscope", "image-sync"].models),
        "openai": set(by_name["openai", "image-b64"].models),
        "replicate": set(by_name["replicate", "prediction"].models),
    }
    for c in shipped:
        if c.scenario.startswith(("error-", "fault-")):
            assert not c.default, c.path
            assert set(c.models) == image_models[c.provider], c.path


def test_one_default_per_route_and_model(shipped):
    seen: dict[tuple[str, tuple[str, str], str], Path] = {}
    for c in shipped:
        if not c.default:
            continue
        for model in c.models:
            key = (c.provider, c.route, model)
            assert key not in seen, f"{c.path} and {seen.get(key)} both default for {model}"
            seen[key] = c.path


def test_a_broken_copy_fails_with_one_line_naming_file_and_interaction(tmp_path):
    tree = tmp_path / "cassettes"
    shutil.copytree(CASSETTES_DIR, tree)
    broken = tree / "dashscope" / "image-async.yaml"
    text = broken.read_text(encoding="utf-8")
    # The third interaction (RUNNING poll) loses its task_status.
    marker = '"task_status": "RUNNING", '
    assert text.count(marker) == 1
    broken.write_text(text.replace(marker, ""), encoding="utf-8")

    problems = validate_tree(tree)

    assert len(problems) == 1, problems
    (line,) = problems
    assert "\n" not in line
    assert str(broken) in line
    assert "interaction 3" in line
    assert "task_status" in line


def test_a_wrong_size_separator_is_a_problem(tmp_path):
    tree = tmp_path / "cassettes"
    shutil.copytree(CASSETTES_DIR, tree)
    path = tree / "dashscope" / "image-sync.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('"1328*1328"', '"1328x1328"'),
                    encoding="utf-8")
    problems = validate_tree(tree)
    assert any("interaction 1: request at /parameters/size" in p for p in problems)
    assert all("interaction 1: request" in p and "/parameters/size" in p for p in problems)


def test_invalid_yaml_is_a_config_error_naming_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("metadata: {gwconf: [unclosed\ninteractions: -\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_cassette(path)
    (problem,) = validate_tree(tmp_path)
    assert str(path) in problem


def test_a_missing_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        validate_tree(tmp_path / "nowhere")


def test_every_image_url_is_a_served_png(shipped):
    count = 0
    for c in shipped:
        for n, url in image_urls(c):
            where = f"{c.path}: interaction {n}: {url}"
            assert url.startswith(f"{FILES_HOST}/files/"), where
            path = FILES_DIR / url.removeprefix(f"{FILES_HOST}/files/")
            assert path.is_file(), where
            assert path.read_bytes().startswith(PNG_SIGNATURE), where
            count += 1
    assert count >= 9  # the walk found the images at all


def test_every_b64_json_is_a_shipped_file(shipped):
    files = {p.read_bytes() for p in FILES_DIR.iterdir() if p.is_file()}
    count = 0
    for c in shipped:
        for n, body in response_json(c):
            for key, leaf in walk(body):
                if key == "b64_json":
                    assert base64.b64decode(leaf, validate=True) in files, f"{c.path}: {n}"
                    count += 1
    assert count >= 3


def test_provenance_is_docs_or_sdk_never_a_live_recording(shipped):
    for c in shipped:
        assert c.provenance.kind in {"docs", "sdk"}, c.path
        assert c.provenance.source.startswith("https://") or "==" in c.provenance.source, c.path
        assert c.path.read_text(encoding="utf-8").startswith("#"), f"{c.path}: no comment header"


def test_async_ids_appear_in_every_answer(shipped):
    for c in shipped:
        for literal in c.ids.values():
            for n, inter in enumerate(c.interactions, start=1):
                if inter.status < 400:
                    assert literal.encode() in inter.response_body, f"{c.path}: interaction {n}"


# -- the dated model catalogue ------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogues() -> dict[str, Catalogue]:
    return load_catalogues(CASSETTES_DIR)


def test_every_provider_has_a_dated_catalogue(catalogues):
    assert set(catalogues) == {"dashscope", "openai", "replicate"}
    assert all(date.fromisoformat(c.date) for c in catalogues.values())


def test_every_schema_a_catalogue_names_exists(catalogues):
    for catalogue in catalogues.values():
        for model in catalogue.models.values():
            for endpoint in model.endpoints:
                assert schemas.route_schemas(catalogue.provider, endpoint.method, endpoint.path), endpoint
                for name in [endpoint.request, *(u.schema for u in endpoint.unconfirmed)]:
                    if name:
                        schemas.validator(name)  # resolves every $ref


def test_no_profile_fallback_or_live_cassette_routes_a_retired_model(catalogues, shipped):
    for path in sorted(GATEWAYS_DIR.glob("*.toml")):
        profile = load_profile(path)
        targets = [(m.alias, m.provider, m.upstream_model) for m in profile.models]
        targets += [(f.alias, t.provider, t.upstream_model) for f in profile.fallbacks for t in f.targets]
        for alias, provider, upstream_model in targets:
            model = catalogues[provider].model(upstream_model.split(":")[0])
            assert model is not None, f"{path}: {alias} routes {upstream_model}, not in the {provider} catalogue"
            assert not model.lifecycle.retired, f"{path}: {alias} routes retired {upstream_model}"
    for c in shipped:
        if not c.retired:
            retired = sorted(set(c.models) & catalogues[c.provider].retired)
            assert not retired, f"{c.path} serves retired {retired} as live"


def test_retired_cassettes_answer_what_the_catalogue_says(catalogues, shipped):
    retired = [c for c in shipped if c.retired]
    assert {c.scenario for c in retired} == {"image-retired", "video"}
    for c in retired:
        (inter,) = c.interactions
        request = json.loads(inter.request_body)
        catalogue = catalogues[c.provider]
        gone = catalogue.retired_route(inter.path)
        answer = gone.answer if gone else catalogue.model(request["model"]).lifecycle.answer
        assert inter.status == answer.status, c.path
        expected = json.dumps(answer.body).replace("{model}", request["model"]).replace(
            "{method}", inter.method).replace("{path}", inter.path)
        assert json.loads(inter.response_body) == json.loads(expected), c.path


def copy_provider(tmp_path: Path, provider: str, *names: str) -> Path:
    folder = tmp_path / provider
    folder.mkdir()
    for name in ("catalogue.yaml", *names):
        shutil.copy(CASSETTES_DIR / provider / name, folder / name)
    return folder


def test_validate_refuses_a_cassette_that_serves_a_retired_model_as_live(tmp_path):
    folder = copy_provider(tmp_path, "openai", "image-b64.yaml")
    path = folder / "image-b64.yaml"
    path.write_text(path.read_text().replace("    - gpt-image-2\n", "    - gpt-image-2\n    - dall-e-3\n"))
    (problem,) = validate_tree(tmp_path)
    assert problem.startswith(f"{path}: serves retired model 'dall-e-3' as live (retired on 2026-05-12")


def test_validate_refuses_a_retired_cassette_that_answers_success(tmp_path):
    folder = copy_provider(tmp_path, "openai", "image-retired.yaml")
    path = folder / "image-retired.yaml"
    path.write_text(path.read_text().replace("status: {code: 404, message: Not Found}",
                                             "status: {code: 200, message: OK}"))
    assert any("a retired cassette answers as gone (4xx), not 200" in p for p in validate_tree(tmp_path))


def test_validate_refuses_a_model_missing_from_the_catalogue(tmp_path):
    folder = copy_provider(tmp_path, "openai", "chat.yaml")
    path = folder / "chat.yaml"
    path.write_text(path.read_text().replace("    - gpt-5.4\n", "    - gpt-5.4\n    - gpt-4o-mini\n"))
    (problem,) = validate_tree(tmp_path)
    assert problem == f"{path}: model 'gpt-4o-mini' is not in the openai catalogue of 2026-11-25"


def test_run_json_records_the_catalogue_date_and_report_md_prints_it():
    summary = cassettes_summary(CASSETTES_DIR)
    assert summary["catalogue_date"] == "2026-11-25"
    document = build_run([], run_id="run-catalogue", started_at=now_iso(), finished_at=now_iso(),
                         gateway={"name": "g", "base_url": "http://127.0.0.1:1", "profile": "p.toml",
                                  "profile_digest": summary["digest"], "dialect": "sync"},
                         cassettes=summary)
    assert schemas.errors("report", document) == []
    assert "model catalogue of 2026-11-25" in render_markdown(document)


def test_validate_refuses_a_request_example_that_breaks_its_models_rules(tmp_path):
    folder = copy_provider(tmp_path, "dashscope", "image-sync.yaml")
    path = folder / "image-sync.yaml"
    path.write_text(path.read_text().replace('"size": "1328*1328", "n": 1}', '"size": "1328*1328", "n": 7}'))
    (problem,) = validate_tree(tmp_path)
    assert problem == (f"{path}: interaction 1: request breaks dashscope/models/qwen-image-2.0.request "
                       "at /parameters/n: 7 is greater than the maximum of 6")


def test_the_mock_video_is_a_well_formed_mp4() -> None:
    """The video the mocks serve (gwconf generated it; no provider video) parses as ISO BMFF:
    top-level boxes that add up to the file, ftyp first, a moov with its mvhd (5 s at 1000/s)."""
    data = (CASSETTES_DIR / "files" / "dashscope-video-1.mp4").read_bytes()
    boxes, at = {}, 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        assert size >= 8
        boxes.setdefault(kind, data[at + 8:at + size])
        at += size
    assert at == len(data)
    assert data[4:8] == b"ftyp" and boxes[b"ftyp"][:4] == b"isom"
    moov = boxes[b"moov"]
    assert moov[4:8] == b"mvhd"
    timescale, duration = struct.unpack(">II", moov[8 + 12:8 + 20])
    assert (timescale, duration) == (1000, 5000)


def test_every_shipped_cassette_reads_as_vcrpy_reads_it(shipped):
    """gwconf reads cassettes with PyYAML's safe loader, not through vcrpy (whose import costs a run
    0.15 s): the interactions must be the very ones vcrpy's own `deserialize` gives."""
    from vcr.serialize import deserialize
    from vcr.serializers import yamlserializer

    for cassette in shipped:
        requests, responses, metadata = deserialize(cassette.path.read_text(encoding="utf-8"), yamlserializer)
        assert metadata["gwconf"] == cassette.raw_metadata
        assert len(cassette.interactions) == len(requests) == len(responses), cassette.path
        for mine, request, response in zip(cassette.interactions, requests, responses, strict=True):
            assert (mine.method, mine.request_body) == (request.method.upper(), request.body or b""), cassette.path
            assert mine.request_headers == {k.lower(): v for k, v in request.headers.items()}, cassette.path
            assert mine.status == response["status"]["code"], cassette.path
            assert mine.response_body == (response.get("body") or {}).get("string", b""), cassette.path
            assert mine.response_headers == {k.lower(): list(v) for k, v in (response.get("headers") or {}).items()}


TAGGED = """\
interactions:
- request:
    body: !!python/unicode '{"model": "m"}'
    headers:
      Content-Type: !!python/tuple [application/json]
      X-Twice: [first, second]
    method: post
    uri: https://example.invalid/api/v1/x
  response:
    body: {string: !!python/str '{"ok": true}'}
    headers: {Content-Type: [application/json]}
    status: {code: 200, message: OK}
- request:
    body: !!python/object/new:_io.BytesIO {state: !!python/tuple [!!binary "aGVsbG8=", 0, null]}
    headers: {}
    method: POST
    uri: https://example.invalid/api/v1/y
  response:
    body: {string: ''}
    headers: {}
    status: {code: 204, message: No Content}
metadata:
  gwconf: {provider: dashscope, scenario: tagged, capability: image.generate, models: [m],
           provenance: {kind: docs, source: 'https://example.invalid'}}
version: 1
"""


def test_the_python_tags_vcrpy_accepts_read_as_vcrpy_reads_them(tmp_path):
    from vcr.serialize import deserialize
    from vcr.serializers import yamlserializer

    path = tmp_path / "tagged.yaml"
    path.write_text(TAGGED, encoding="utf-8")
    mine = load_cassette(path).interactions
    requests, responses, _ = deserialize(TAGGED, yamlserializer)
    assert [(i.method, i.request_body, i.request_headers) for i in mine] == [
        (r.method.upper(), r.body.read() if hasattr(r.body, "read") else r.body,
         {k.lower(): v for k, v in r.headers.items()}) for r in requests]
    assert [i.response_body for i in mine] == [r["body"]["string"] for r in responses]


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['true']", "!!python/name:os.system ''"])
def test_a_tag_vcrpy_refuses_is_refused_naming_the_file(tmp_path, tag):
    path = tmp_path / "evil.yaml"
    path.write_text(TAGGED.replace("!!python/unicode '{\"model\": \"m\"}'", tag), encoding="utf-8")
    with pytest.raises(ConfigError, match=str(path)):
        load_cassette(path)


def test_headers_that_are_not_a_mapping_are_a_config_error(tmp_path):
    path = tmp_path / "pairs.yaml"
    path.write_text(TAGGED.replace("    headers: {}\n    method: POST", "    headers: [[a, b]]\n    method: POST"),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="malformed cassette"):
        load_cassette(path)
