"""`gwconf load` against the reference gateway (all jobs right) and against gateways that lose
jobs or reuse ids under concurrency (the report flags them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.paths import CASSETTES_DIR, GATEWAYS_DIR, PROJECT_ROOT
from harness.runner._load import JobRecord, LoadOptions, judge_result, run_load, tally
from harness.upstream.tagging import png_tag, tag_file_urls, tag_png

PROFILE = GATEWAYS_DIR / "reference.toml"
PNG = sorted((CASSETTES_DIR / "files").glob("*.png"))


def mutant_profile(tmp_path: Path, mutant: str) -> Path:
    """The reference profile, started as a load mutant (tests/load_mutants.py) from the repo root."""
    text = PROFILE.read_text().replace(
        'command = ["{python}", "-m", "harness.reference",',
        f'cwd = "{PROJECT_ROOT}"\ncommand = ["{{python}}", "-m", "tests.load_mutants", "--mutant", "{mutant}",')
    (tmp_path / "reference.toml").write_text(text)
    (tmp_path / "reference.config.json.j2").write_text((GATEWAYS_DIR / "reference.config.json.j2").read_text())
    return tmp_path / "reference.toml"


def test_reference_gateway_under_load_loses_nothing(tmp_path: Path) -> None:
    document = run_load(LoadOptions(PROFILE, jobs=30, concurrency=10, out=tmp_path, bound=30, poll_interval=0.05))
    through = document["through_gateway"]
    assert (through["submitted"], through["completed"]) == (30, 30)
    assert through["lost"] == through["duplicate_ids"] == through["wrong_results"] == through["failed"] == 0
    assert document["verdict"] == "pass"
    assert document["direct_to_mock"]["completed"] == 30
    assert all(document["added_latency"][q] is not None for q in ("p50", "p95", "p99"))
    assert json.loads((tmp_path / "load.json").read_text()) == document


@pytest.mark.parametrize(("mutant", "flagged"), [("reuses-job-ids", "duplicate_ids"), ("loses-jobs", "lost")])
def test_load_flags_a_gateway_that_breaks_under_concurrency(tmp_path: Path, mutant: str, flagged: str) -> None:
    document = run_load(LoadOptions(mutant_profile(tmp_path, mutant), jobs=20, concurrency=20, out=tmp_path / "out",
                                    bound=10, poll_interval=0.05, direct=False))
    through = document["through_gateway"]
    assert through[flagged] > 0
    assert document["verdict"] == "fail"
    if mutant == "reuses-job-ids":  # jobs that share an id get each other's images
        assert through["wrong_results"] > 0


def test_cli_prints_a_table_and_one_json_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["load", "--gateway", str(PROFILE), "--jobs", "5", "--concurrency", "5",
                                      "--out", str(tmp_path), "--poll-interval", "0.05"])
    assert result.exit_code == 0, result.output
    line = [x for x in result.stdout.splitlines() if x.startswith("{")]
    assert len(line) == 1 and json.loads(line[0])["through_gateway"]["completed"] == 5


def test_cli_refuses_an_unknown_model_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["load", "--gateway", str(PROFILE), "--model", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "no image.generate model with alias 'nope'" in result.output


def test_locustfile_is_written_for_the_profile(tmp_path: Path) -> None:
    target = tmp_path / "locustfile.py"
    result = CliRunner().invoke(app, ["load", "--gateway", str(PROFILE), "--locustfile", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    compile(text, str(target), "exec")
    assert '"/v1/jobs/{id}"' in text and "dashscope/wan2.2-t2i-flash" in text


def test_tagged_png_names_its_job_and_stays_a_png() -> None:
    data = next(iter(PNG)).read_bytes()
    tagged = tag_png(data, "abc123")
    assert png_tag(tagged) == "abc123" and png_tag(data) is None
    assert tagged.startswith(data[:8]) and tagged.endswith(data[-12:])
    assert tag_file_urls('{"url": "http://m/files/a.png"}', "http://m", "t1") == '{"url": "http://m/files/a.png?job=t1"}'


def test_a_result_from_another_job_is_wrong() -> None:
    data = next(iter(PNG)).read_bytes()
    mine, other = tag_png(data, "mine"), tag_png(data, "other")
    assert judge_result({"data": [{"url": "u"}]}, "mine", {"u": mine}) is None
    assert judge_result({"data": [{"url": "u"}]}, "mine", {"u": other}) == "another job's image"
    assert judge_result({"data": [{"url": "u"}]}, "mine", {"u": data}) == "an image the mock did not make for this job"
    assert judge_result({"data": []}, "mine", {}) == "no data[] in the result"


def test_tally_counts_each_reused_id_once_per_extra_job() -> None:
    records = [JobRecord("a", "succeeded", "j1", 0.1), JobRecord("b", "succeeded", "j1", 0.2),
               JobRecord("c", "succeeded", "j1", 0.3), JobRecord("d", "lost", "j2")]
    t = tally(records, 1.0)
    assert (t.duplicate_ids, t.lost, t.completed, t.p50) == (2, 1, 3, 0.2)
