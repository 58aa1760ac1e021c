"""action.yml, the ready-made GitHub Action: its `run:` steps, run as the runner would run them.

The steps are taken from action.yml with PyYAML, their `${{ inputs.* }}` substituted from the
inputs given here (or the action's defaults), and run with bash as the runner does
(`bash --noprofile --norc -eo pipefail`), with GITHUB_STEP_SUMMARY, GITHUB_OUTPUT and
GITHUB_ACTION_PATH set. The install step installs gwconf for real into a throwaway venv that
sees this venv's packages (``--no-deps``: only the build backend comes from the package index,
as in CI's own install); the run step runs a fast
selection against the bundled reference gateway. The `uses:` steps (setup-python,
upload-artifact) are GitHub's own and are checked for how they are wired, not run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config import _schemas as schemas
from harness.paths import PROJECT_ROOT

ACTION = yaml.safe_load((PROJECT_ROOT / "action.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def substitute(value: str, inputs: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1).removeprefix("inputs.")
        assert name != match.group(1), f"a run step may only use inputs, not {match.group(0)}"
        return inputs[name]
    return EXPRESSION.sub(one, value)


def run_steps(inputs: dict[str, str], venv: Path, tmp_path: Path, *, only: str | None = None,
              ) -> tuple[int, Path, dict[str, str], str]:
    """Run the action's `run:` steps in order, stopping at the first that fails, as the runner does.

    Returns the exit code, the step summary file, the step outputs and what the steps printed."""
    given = {k: str(v.get("default", "")) for k, v in ACTION["inputs"].items()} | inputs
    missing = [k for k, v in ACTION["inputs"].items() if v.get("required") and k not in inputs]
    assert not missing, missing
    summary = tmp_path / "step-summary.md"
    summary.write_text("# an earlier step's summary\n")
    output = tmp_path / "github-output"
    output.write_text("")
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "GITHUB_ACTION_PATH": str(PROJECT_ROOT), "GITHUB_STEP_SUMMARY": str(summary),
           "GITHUB_OUTPUT": str(output), "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    code, log = 0, ""
    for step in ACTION["runs"]["steps"]:
        if "run" not in step or (only and step.get("name") != only):
            continue
        assert step["shell"] == "bash"
        step_env = {k: substitute(str(v), given) for k, v in step.get("env", {}).items()}
        script = substitute(step["run"], given)
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                              env={**env, **step_env}, cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=300)
        code, log = done.returncode, log + done.stdout + done.stderr
        if code:
            break
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if line)
    return code, summary, outputs, log


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with no gwconf of its own, seeing this venv's packages (so no download)."""
    root = tmp_path_factory.mktemp("action") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    purelib = Path(sysconfig.get_paths(vars={"base": str(root), "platbase": str(root)})["purelib"])
    purelib.mkdir(parents=True, exist_ok=True)
    (purelib / "outer-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return root


@pytest.fixture(scope="module")
def installed(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The action's install step, run for real (its dependencies come from this venv)."""
    tmp = tmp_path_factory.mktemp("install")
    code, _, _, log = run_steps({"profile": "unused",
                                 "pip-args": "--quiet --no-deps --disable-pip-version-check"},
                                venv, tmp, only="Install gwconf")
    assert code == 0, log
    assert (venv / "bin" / "gwconf").is_file(), "the install step must put gwconf on PATH"
    return venv


def reports_in(out: Path) -> set[str]:
    return {p.name for p in out.iterdir()} if out.is_dir() else set()


def test_action_is_composite_and_uploads_the_report_even_on_failure() -> None:
    assert ACTION["runs"]["using"] == "composite"
    steps: list[dict[str, Any]] = ACTION["runs"]["steps"]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "${{ inputs.out }}"
    run = next(s for s in steps if s.get("id") == "run")
    assert steps.index(run) < steps.index(upload)
    assert ACTION["outputs"]["exit-code"]["value"] == "${{ steps.run.outputs.exit-code }}"
    for step in steps:  # inputs reach scripts through env only (no expression injection)
        assert "run" not in step or not EXPRESSION.search(step["run"]), step.get("name")


def test_action_runs_against_a_baseline_and_appends_the_summary(installed: Path, tmp_path: Path) -> None:
    out = tmp_path / "gwconf-report"
    code, summary, outputs, log = run_steps({"profile": "gateways/reference.toml",
                                        "baseline": "gateways/reference.expected.json",
                                        "ratchet": "true", "no-pending": "true",
                                        "args": "-k MAP-001", "out": str(out)}, installed, tmp_path, only="Run gwconf")
    assert code == 0, log
    assert outputs == {"exit-code": "0", "report-dir": str(out)}
    assert {"run.json", "report.html", "report.md", "junit.xml"} <= reports_in(out)
    text = summary.read_text()
    assert text.startswith("# an earlier step's summary\n## gwconf: ✅ PASS for reference")
    assert "**Gate: ✅ passed** against `gateways/reference.expected.json` [*] · ratchet" in text
    document = json.loads((out / "run.json").read_text())
    assert [c["check_id"] for c in document["checks"]] == ["MAP-001"]
    assert document["gate"]["passed"] is True
    assert schemas.errors("report", document) == []


def test_action_fails_the_job_when_the_gate_fails(installed: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "stale.expected.json"
    baseline.write_text(json.dumps({"MAP-001": "thought broken; fixed since"}))
    out = tmp_path / "report"
    code, summary, outputs, log = run_steps({"profile": "gateways/reference.toml", "baseline": str(baseline),
                                        "ratchet": "true", "args": "-k MAP-001", "out": str(out)},
                                       installed, tmp_path, only="Run gwconf")
    assert code == 1, log
    assert outputs == {"exit-code": "1", "report-dir": str(out)}
    assert "run.json" in reports_in(out)  # there for the upload step, which runs always()
    text = summary.read_text()
    assert "**Gate: ❌ failed**" in text and "**MAP-001** pass" in text
    assert "gwconf baseline update" in text


def test_readme_ci_section_uses_the_action_with_its_inputs() -> None:
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text[text.index("\n## CI gate\n"):]
    section = section[:section.index("\n## ", 1)]
    workflow = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    steps = workflow["jobs"]["gwconf"]["steps"]
    step = next(s for s in steps if "/gwconf@" in s.get("uses", ""))
    assert set(step["with"]) <= set(ACTION["inputs"])
    assert {k for k, v in ACTION["inputs"].items() if v.get("required")} <= set(step["with"])
    assert "gwconf baseline update" in section and "--ratchet" in section and "--no-pending" in section
