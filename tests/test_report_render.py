"""Renderers of run.json: self-contained HTML, Markdown, JUnit XML and the matrix of several runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from harness.config import _schemas as schemas
from harness.records._capture import CapturedRequest
from harness.records._outcome import Evidence, Exchange, Outcome
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.markdown import render_markdown
from harness.report.matrix import render_matrix_html, render_matrix_markdown
from harness.report.render import render_reports
from harness.report.runjson import build_run

KEY = "sk-gwconf-dashscope-abc123def456abc123def456"
DIGEST = "sha256:" + "ab" * 32


def exchange(url: str, status: int, body: str, request_body: str = '{"model": "wan-image"}',
             ) -> Exchange:
    return Exchange("POST", url, {"content-type": "application/json",
                                  "authorization": "[REDACTED sha256:000000000000]"},
                    request_body, status, {"content-type": "application/json"}, body, 0.05,
                    path=urlsplit(url).path)


def sample_outcomes(gateway: str = "refgw", *, broken: tuple[str, ...] = ("MAP-002",),
                    secret: str = "") -> list[Outcome]:
    """Two passes, a fail with full evidence, a warn, a skip and an error; MAP, ASYNC, NORM."""
    base = "http://127.0.0.1:8400"

    def out(check_id: str, level: str, outcome: str, message: str = "", **evidence) -> Outcome:
        if check_id in broken and outcome == "pass":
            outcome, message = "fail", f"{gateway} broke {check_id}"
        return Outcome(check_id, f"title of {check_id}", level, check_id.split("-")[0], outcome,
                       0.12, message, spec="https://help.aliyun.com/x", evidence=Evidence(**evidence))

    upstream = CapturedRequest("dashscope", "POST", "/api/v1/services/aigc/multimodal-generation/"
                               "generation", {}, {"authorization": "[REDACTED sha256:1]"},
                               {"model": "qwen-plus", "input": {"messages": []}}, token="t1",
                               scenario="chat-ok", answered=200, seq=3)
    failing = Evidence(
        exchanges=[exchange(f"{base}/v1/images/generations", 200,
                            '{"data": [{"url": "<script>alert(1)</script>"}], "note": "'
                            + secret + '"}')],
        upstream=[upstream],
        expected="upstream path matching /image-generation/",
        actual="/api/v1/services/aigc/multimodal-generation/generation",
        notes=[f"gateway {gateway} sent a chat request", f"key seen: {secret}"],
    )
    return [
        out("MAP-001", "MUST", "pass", exchanges=[exchange(f"{base}/v1/chat", 200, "{}")]),
        out("MAP-002", "MUST", "pass"),
        Outcome("MAP-003", "An image model must reach the image endpoint", "MUST", "MAP", "fail",
                0.4, "image model reached chat endpoint <b>", evidence=failing),
        out("ASYNC-001", "SHOULD", "warn", "task id not echoed"),
        out("ASYNC-002", "MUST", "skip", "profile does not claim video.generate"),
        out("NORM-001", "MUST", "error", "gateway timed out after 10s",
            exchanges=[Exchange("POST", f"{base}/v1/images/generations", {}, "", None,
                                error="ReadTimeout")]),
    ]


def sample_run(gateway: str = "refgw", *, secret: str = "", run_id: str = "run-0001",
               **kwargs) -> dict:
    return build_run(
        sample_outcomes(gateway, secret=secret, **kwargs), run_id=run_id,
        started_at="2025-01-01T10:00:00+00:00", finished_at="2025-01-01T10:01:00+00:00",
        gateway={"name": gateway, "version": "1.2.3", "base_url": "http://127.0.0.1:8400",
                 "profile": f"gateways/{gateway}.yaml", "profile_digest": DIGEST,
                 "dialect": "sync", "key_model": "gateway"},
        cassettes={"digest": DIGEST, "count": 12},
        secrets=(secret,) if secret else (),
    )


REMOTE_LOAD = re.compile(
    r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|@import|url\(\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def test_run_json_validates_against_the_report_schema():
    document = sample_run()
    assert schemas.errors("report", document) == []
    assert document["summary"]["verdict"] == "fail"
    assert document["summary"]["by_category"].keys() == {"MAP", "ASYNC", "NORM"}


def test_html_is_self_contained_and_escapes_evidence():
    page = render_html(sample_run())
    assert REMOTE_LOAD.search(page) is None, REMOTE_LOAD.search(page)
    assert "<link" not in page
    assert "Content-Security-Policy" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "reached chat endpoint &lt;b&gt;" in page
    # evidence may name loopback URLs, as text only
    assert "http://127.0.0.1:8400/v1/images/generations" in page


def test_html_shows_verdict_rates_and_evidence_of_every_check():
    page = render_html(sample_run())
    assert "Verdict: FAIL" in page
    assert "MUST 1/4 passed (25%)" in page
    for check_id in ("MAP-001", "MAP-002", "MAP-003", "ASYNC-001", "ASYNC-002", "NORM-001"):
        assert re.search(rf'<details class="check \w+" id="{check_id}"', page), check_id
    assert "upstream path matching /image-generation/" in page  # expected
    assert "scenario chat-ok" in page  # upstream request
    assert "--data-raw" in page  # curl repro
    assert "ReadTimeout" in page


def test_html_clips_huge_bodies_and_stays_small_for_sixty_checks():
    outcomes = []
    for n in range(60):
        o = sample_outcomes()[2 if n % 5 == 0 else 0]  # every fifth fails
        o.check_id = f"MAP-{n:03d}"
        o.evidence.exchanges[0].response_body = "x" * 15_000
        o.evidence.exchanges[0].request_body = json.dumps({"prompt": "y" * 15_000})
        outcomes.append(o)
    document = build_run(outcomes, run_id="big-run", started_at="2025-01-01T10:00:00+00:00",
                         finished_at="2025-01-01T10:01:00+00:00",
                         gateway=sample_run()["gateway"], cassettes={"digest": DIGEST, "count": 1})
    page = render_html(document)
    assert len(page.encode()) < 250_000
    assert "more chars in run.json" in page
    assert page.count("<details class=\"check") == 60


def test_markdown_summary_is_short_and_names_failures():
    md = render_markdown(sample_run())
    assert md.startswith("## gwconf: ❌ FAIL for refgw 1.2.3")
    assert "| MAP | 1/3 (33%) |" in md
    assert "**MAP-003**" in md and "**NORM-001**" in md
    assert "<b>" not in md  # HTML in a message is escaped for the PR comment
    assert len(md.splitlines()) < 40


def test_junit_loads_with_one_testcase_per_check(tmp_path: Path):
    path = tmp_path / "junit.xml"
    path.write_text(render_junit(sample_run()), encoding="utf-8")
    xml = JUnitXml.fromfile(str(path))
    cases = {case.name.split()[0]: case for suite in xml for case in suite}
    assert sorted(cases) == sorted(c["check_id"] for c in sample_run()["checks"])
    kinds = {i: {type(r) for r in case.result} for i, case in cases.items()}
    assert kinds["MAP-001"] == set()
    assert kinds["MAP-003"] == {Failure}
    assert kinds["NORM-001"] == {Error}
    assert kinds["ASYNC-002"] == {Skipped}
    assert kinds["ASYNC-001"] == set()  # a warning passes, with the warning in system-out
    failure = next(iter(cases["MAP-003"].result))
    assert failure.message == "image model reached chat endpoint <b>"
    assert "Expected: upstream path matching /image-generation/" in failure.text
    assert "<script>alert(1)</script>" in failure.text  # escaped in the file, intact once parsed
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (6, 2, 1, 1)


def test_junit_survives_control_characters_in_evidence(tmp_path: Path):
    document = sample_run()
    document["checks"][2]["message"] = "bad byte \x00 and \x1b[31m ansi"
    path = tmp_path / "junit.xml"
    path.write_text(render_junit(document), encoding="utf-8")
    failure = next(iter(next(c for s in JUnitXml.fromfile(str(path)) for c in s
                             if c.name.startswith("MAP-003")).result))
    assert "ansi" in failure.message


def test_matrix_of_three_runs_in_html_and_markdown(tmp_path: Path):
    runs = [sample_run("refgw", broken=()), sample_run("litellm", run_id="run-0002",
                                                       broken=("MAP-001", "MAP-002")),
            sample_run("portkey", run_id="run-0003")]
    runs[2]["checks"] = runs[2]["checks"][:-1]  # portkey did not run NORM-001
    html = render_matrix_html(runs)
    md = render_matrix_markdown(runs)
    assert REMOTE_LOAD.search(html) is None
    for name in ("refgw 1.2.3", "litellm 1.2.3", "portkey 1.2.3"):
        assert name in html and name in md
    row = next(line for line in md.splitlines() if line.startswith("| MAP-001 "))
    assert row.count("✅ pass") == 2 and row.count("❌ fail") == 1
    row = next(line for line in md.splitlines() if line.startswith("| NORM-001 "))
    assert row.count("💥 error") == 2
    header = md.splitlines()[2]
    assert header.count("|") == 5  # label column plus three gateways

    written = render_reports(runs, tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in written}
    assert {"matrix.html", "matrix.md"} <= names
    assert "runs/litellm-run-0002/report.html" in names
    assert 'href="runs/litellm-run-0002/report.html#MAP-001"' in (tmp_path / "matrix.html"
                                                                  ).read_text()


def test_one_run_writes_html_markdown_and_junit(tmp_path: Path):
    written = render_reports([sample_run()], tmp_path)
    assert sorted(p.name for p in written) == ["junit.xml", "report.html", "report.md"]
    assert all(p.stat().st_size > 0 for p in written)


@pytest.mark.parametrize("several", [False, True], ids=["one-run", "matrix"])
def test_secrets_never_reach_any_report(tmp_path: Path, several: bool):
    document = sample_run(secret=KEY)
    assert KEY not in json.dumps(document)
    documents = [document, sample_run("other", run_id="run-0009", secret=KEY)] if several \
        else [document]
    written = render_reports(documents, tmp_path)
    assert written
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(encoding="utf-8"), path
            assert "abc123def456abc123def456" not in path.read_text(encoding="utf-8"), path


def test_console_summary_and_progress(tmp_path: Path):
    from rich.console import Console

    from harness.report.console import Progress, print_summary

    console = Console(record=True, width=120, force_terminal=True)
    with Progress(console) as progress:
        progress.start_total(6, {"MAP": 3, "ASYNC": 2, "NORM": 1})
        for outcome in sample_outcomes():
            progress.advance(outcome)
    print_summary(sample_run(), console)
    text = console.export_text()
    assert "all checks" in text and "6/6" in text
    assert "MAP-003" in text and "NORM-001" in text
    assert "gwconf: FAIL refgw: MUST 1/4 (25%)" in text

    quiet = Console(record=True, width=200)
    with Progress(quiet, quiet=True) as progress:
        progress.start_total(6)
        for outcome in sample_outcomes():
            progress.advance(outcome)
    print_summary(sample_run(), quiet, quiet=True)
    lines = quiet.export_text().strip().splitlines()
    assert lines == ["gwconf: FAIL refgw: MUST 1/4 (25%), 1 pass 2 fail 1 warn 1 skip 1 error; "
                     "failing: MAP-002, MAP-003, NORM-001"]


def test_console_prints_a_line_per_check_when_not_a_terminal() -> None:
    from rich.console import Console

    from harness.report.console import Progress

    piped = Console(record=True, width=120, force_terminal=False)
    with Progress(piped) as progress:
        progress.announce("budget 100s for 6 checks at -n 1")
        progress.start_total(6, {"MAP": 3, "ASYNC": 2, "NORM": 1})
        for outcome in sample_outcomes():
            progress.advance(outcome)
    lines = piped.export_text().strip().splitlines()
    assert lines[0] == "gwconf: budget 100s for 6 checks at -n 1"
    assert lines[1:] == [f"{o.check_id} {o.outcome} {o.duration:.2f}s" for o in sample_outcomes()]
