"""`gwconf run` end to end against the bundled reference gateway, and what it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import _schemas as schemas
from harness.paths import GATEWAYS_DIR, PROJECT_ROOT
from harness.report.runjson import build_run, now_iso, write_run
from harness.runner._inprocess import run_in_process
from tests.conftest import once_per_session
from tests.mutants import MUTANTS
from tests.test_mutation import FAST, TEMPLATE

PLANTED_KEY = "sk-planted-client-key-0123456789abcdef"


def gwconf_run(out: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--gateway", str(GATEWAYS_DIR / "reference.toml"),
         "--out", str(out), "-q", *extra],
        capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One run for the session, whichever workers its tests land on."""

    def make(folder: Path) -> None:
        result = gwconf_run(folder / "out", env={"GWCONF_REFERENCE_KEY": PLANTED_KEY})
        (folder / "result.json").write_text(json.dumps([result.returncode, result.stdout, result.stderr]))

    folder = once_per_session(tmp_path_factory, "reference-run", make)
    code, stdout, stderr = json.loads((folder / "result.json").read_text())
    return folder / "out", subprocess.CompletedProcess([], code, stdout, stderr)


def outcomes(path: Path) -> dict[str, str]:
    return {c["check_id"]: c["outcome"] for c in json.loads(path.read_text())["checks"]}


def test_reference_run_passes_and_writes_every_report(reference_run) -> None:
    out, result = reference_run
    assert result.returncode == 0, result.stderr + result.stdout
    for name in ("run.json", "report.html", "report.md", "junit.xml", "gateway.log"):
        assert (out / name).is_file(), name
    document = json.loads((out / "run.json").read_text())
    assert schemas.errors("report", document) == []
    assert document["summary"]["verdict"] == "pass"
    assert set(outcomes(out / "run.json").values()) == {"pass"}


def test_no_secret_in_any_output(reference_run) -> None:
    out, _ = reference_run
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert PLANTED_KEY not in text, path
            assert "sk-gwconf-" not in text, f"a provider key in {path}"
            assert "Bearer gwk-" not in text and "Bearer sk-" not in text, path


def test_two_workers_give_the_same_outcomes(reference_run, tmp_path: Path) -> None:
    out, _ = reference_run
    result = gwconf_run(tmp_path, "-n", "2")
    assert result.returncode == 0, result.stderr
    assert outcomes(tmp_path / "run.json") == outcomes(out / "run.json")


def test_keyword_selects_checks(tmp_path: Path) -> None:
    result = gwconf_run(tmp_path, "-k", "MAP-007 or MAP-008")
    assert result.returncode == 0, result.stderr
    assert outcomes(tmp_path / "run.json") == {"MAP-007": "pass", "MAP-008": "pass"}


def mutant_run(name: str, out: Path) -> Path:
    mutant, _ = MUTANTS[name]
    started = now_iso()
    found = run_in_process(GATEWAYS_DIR / "reference.toml", mutant.factory(), timeouts=FAST, template_vars=TEMPLATE)
    gateway = {"name": f"mutant-{name}", "base_url": "in-process", "profile": "gateways/reference.toml",
               "profile_digest": "sha256:" + "0" * 64, "dialect": "jobs"}
    document = build_run(found, run_id=f"mutant-{name}", started_at=started, finished_at=now_iso(),
                         gateway=gateway, cassettes={"digest": "sha256:" + "0" * 64, "count": 0})
    return write_run(document, out / f"{name}.json")


def test_diff_names_regressions_and_matrix_renders(reference_run, tmp_path: Path) -> None:
    out, _ = reference_run
    broken = mutant_run("size-not-converted", tmp_path)
    other = mutant_run("retry-after-dropped", tmp_path)
    cli = [sys.executable, "-m", "harness.cli"]
    regressed = subprocess.run([*cli, "diff", str(out / "run.json"), str(broken)], capture_output=True, text=True,
                               timeout=60, cwd=PROJECT_ROOT)
    assert regressed.returncode == 1
    assert "NORM-003" in regressed.stdout
    same = subprocess.run([*cli, "diff", str(out / "run.json"), str(out / "run.json")], capture_output=True,
                          text=True, timeout=60, cwd=PROJECT_ROOT)
    assert same.returncode == 0, same.stdout
    matrix = subprocess.run([*cli, "report", str(out / "run.json"), str(broken), str(other), "--out",
                             str(tmp_path / "matrix")], capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert matrix.returncode == 0, matrix.stderr
    html = (tmp_path / "matrix" / "matrix.html").read_text()
    md = (tmp_path / "matrix" / "matrix.md").read_text()
    for text in (html, md):
        assert "NORM-003" in text and "ERR-011" in text
        assert "mutant-size-not-converted" in text and "reference" in text


def test_baseline_lets_known_failures_pass(tmp_path: Path) -> None:
    baseline = tmp_path / "expected.json"
    baseline.write_text(json.dumps({"NORM-003": "known: size is passed through"}))
    result = gwconf_run(tmp_path / "o", "--baseline", str(baseline), "-k", "NORM-003")
    assert result.returncode == 0, result.stdout + result.stderr


def test_echoed_provider_key_is_caught_and_redacted_in_reports(tmp_path: Path) -> None:
    run_path = mutant_run("provider-key-echoed-in-error", tmp_path)
    document = json.loads(run_path.read_text())
    check = next(c for c in document["checks"] if c["check_id"] == "ERR-014")
    assert check["outcome"] == "fail"
    evidence = json.dumps(check["evidence"])
    assert "[REDACTED sha256:" in evidence, "the echoed key shows as a fingerprint in the evidence"
    subprocess.run([sys.executable, "-m", "harness.cli", "report", str(run_path), "--out", str(tmp_path / "r")],
                   check=True, capture_output=True, timeout=60, cwd=PROJECT_ROOT)
    for path in [run_path, *(tmp_path / "r").iterdir()]:
        assert "sk-gwconf-" not in path.read_text(), path


def test_a_check_whose_worker_dies_is_an_error_not_a_silent_pass(tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "dying.py").write_text(
        "import os\n"
        "from harness.api import MUST, check, scenario\n\n"
        "@scenario('quiet')\n"
        "def quiet(s):\n    'Sends nothing.'\n\n"
        "@scenario('dies')\n"
        "def dies(s):\n    'Kills its worker.'\n    os._exit(3)\n\n"
        "@check('MAP-901', MUST, needs='any', spec='https://example.invalid/spec', scenario='quiet')\n"
        "def passes(t):\n    'Passes.'\n\n"
        "@check('MAP-902', MUST, needs='any', spec='https://example.invalid/spec', scenario='dies')\n"
        "def worker_dies(t):\n    'Kills its worker.'\n")
    result = gwconf_run(tmp_path / "out", "-n", "2", "--suites", str(suites))
    assert result.returncode == 1, result.stderr
    assert outcomes(tmp_path / "out" / "run.json") == {"MAP-901": "pass", "MAP-902": "error"}
