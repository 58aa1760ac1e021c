"""`gwconf judge`: a saved run directory re-judged offline gives the run's own verdicts.

The judge must start no process and open no socket: both are made to raise while it runs.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.records._outcome import Exchange, Outcome
from harness.records._recording import RunFacts
from harness.reference import build_app
from harness.report.runjson import build_run, now_iso, write_run
from harness.runner._inprocess import run_in_process
from tests.mutants import MUTANTS
from tests.test_mutation import FAST, PROFILE, TEMPLATE

DIGEST = "sha256:" + "0" * 64
GATEWAY = {"name": "reference", "base_url": "http://127.0.0.1:1", "profile": str(PROFILE),
           "profile_digest": DIGEST, "dialect": "jobs"}


def saved_run(out: Path, app_factory: object) -> list[Outcome]:
    """A run kept on disk as `gwconf run` keeps it: recordings, then run.json."""
    outcomes = run_in_process(PROFILE, app_factory, timeouts=FAST, template_vars=TEMPLATE, store=out)  # type: ignore[arg-type]
    write_run(build_run(outcomes, run_id="test", started_at=now_iso(), finished_at=now_iso(),
                        gateway=GATEWAY, cassettes={"digest": DIGEST, "count": 0}),
              out / "run.json")
    return outcomes


def refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("gwconf judge tried to open a socket or start a process")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("socket", "create_connection", "socketpair", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    for name in ("fork", "posix_spawn", "posix_spawnp", "system", "execv", "execve"):
        monkeypatch.setattr(os, name, refuse)


def verdicts(checks: list[dict]) -> dict[str, tuple[str, str, str, str]]:
    return {c["check_id"]: (c["outcome"], c["message"], c["evidence"]["expected"], c["evidence"]["actual"])
            for c in checks}


@pytest.mark.parametrize("name", ["reference", "image-model-routed-to-chat", "failed-task-as-200-empty"])
def test_judge_reproduces_every_outcome_offline(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    factory = (lambda config: build_app(config).app) if name == "reference" else MUTANTS[name][0].factory()
    outcomes = saved_run(tmp_path, factory)
    ran = verdicts([o.to_dict() for o in outcomes])
    if name != "reference":
        assert {k for k, v in ran.items() if v[0] not in ("pass", "skip")} == MUTANTS[name][1]

    request.getfixturevalue("offline")
    result = CliRunner().invoke(app, ["judge", str(tmp_path), "-q"])

    assert result.exit_code == (0 if name == "reference" else 1), result.output
    judged = json.loads((tmp_path / "run.json").read_text())
    assert verdicts(judged["checks"]) == ran
    assert judged["summary"]["client_requests"] > 60
    assert (tmp_path / "report.html").is_file() and (tmp_path / "report.md").is_file()


def test_failure_evidence_holds_upstream_answers_and_a_portless_repro(tmp_path: Path) -> None:
    saved_run(tmp_path, MUTANTS["image-model-routed-to-chat"][0].factory())
    document = json.loads((tmp_path / "run.json").read_text())
    failures = [c for c in document["checks"] if c["outcome"] in ("fail", "warn")]
    assert failures
    for c in failures:
        e = c["evidence"]
        assert f"gwconf run --gateway {PROFILE} -k {c['check_id']}" in e["curl"]
        assert "127.0.0.1" not in e["curl"] and "localhost" not in e["curl"] and "REDACTED" not in e["curl"], e["curl"]
        assert e["exchanges"], c["check_id"]
        assert all(u["answered"] is not None and "answer_body" in u for u in e["upstream"])
    edits = [x for c in failures for x in c["evidence"]["exchanges"] if x["form"]]
    assert edits and all("--form 'image=@cassettes/files/input-1.png;type=image/png'" in x["curl"] for x in edits)


def test_judge_of_a_directory_without_recordings_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["judge", str(tmp_path)])
    assert result.exit_code == 2
    assert "gwconf: error:" in result.output and "\n" not in result.output.strip()


def test_repro_names_mocks_and_provider_keys_by_shell_variable() -> None:
    """A routing header that carries a mock's URL and a (scrubbed) provider key, as Portkey's
    x-portkey-config does, becomes a curl with shell variables in their place."""
    config = '{"api_key": "[REDACTED sha256:5fd113dcfacd]", "custom_host": "http://127.0.0.1:36125/compatible-mode/v1"}'
    exchange = Exchange("POST", "http://127.0.0.1:8787/v1/images/generations", {"x-portkey-config": config},
                        '{"model": "qwen-image-2.0-pro"}', path="/v1/images/generations")
    facts = RunFacts("p.toml", upstream_urls={"dashscope": "http://127.0.0.1:36125"},
                     provider_key_names={"sha256:5fd113dcfacd": "dashscope"})
    words = shlex.split(exchange.curl(facts.repro_variables()))
    assert words[4] == "$GWCONF_GATEWAY_URL/v1/images/generations"
    assert words[words.index("-H") + 1] == ('x-portkey-config: {"api_key": "${GWCONF_DASHSCOPE_KEY}", '
                                            '"custom_host": "${GWCONF_DASHSCOPE_URL}/compatible-mode/v1"}')
