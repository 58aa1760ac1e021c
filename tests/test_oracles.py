"""Three independent oracles: the mocks (harness/upstream), the checks (harness/checks/_checklib)
and the reference gateway (harness/reference/facts.py) each keep their own table of provider
facts. Were they one shared list, a wrong fact would pass everywhere; kept apart, this test names
every fact they disagree on."""

from __future__ import annotations

import ast
from pathlib import Path

from harness.checks import _checklib as checks
from harness.gateway._seam import TRANSPORT_KEY
from harness.paths import PROJECT_ROOT as ROOT
from harness.reference import facts as reference
from harness.reference import gateway as reference_gateway
from harness.upstream import dashscope as mock_dashscope
from harness.upstream import replicate as mock_replicate


def disagreements(fact: str, tables: dict[str, frozenset[str]]) -> list[str]:
    """Per table, what it holds that another one lacks."""
    everything = frozenset().union(*tables.values())
    return [f"{fact}: {name} lacks {sorted(everything - table)}" for name, table in tables.items()
            if everything - table]


def test_async_only_models_agree() -> None:
    assert disagreements("async-only DashScope image models", {
        "mocks (upstream/dashscope.py ASYNC_ONLY_IMAGE_MODELS)": mock_dashscope.ASYNC_ONLY_IMAGE_MODELS,
        "checks (_checklib.DASHSCOPE_TASK_MODELS)": checks.DASHSCOPE_TASK_MODELS,
        "reference (reference/facts.py DASHSCOPE_TASK_MODELS)": reference.DASHSCOPE_TASK_MODELS,
    }) == []


def test_dashscope_routes_agree() -> None:
    problems = []
    if reference.DASHSCOPE_SYNTHESIS not in mock_dashscope.ASYNC_ONLY_PATHS:
        problems.append(f"reference submits tasks to {reference.DASHSCOPE_SYNTHESIS}, not an async path of the mocks")
    if not checks.DASHSCOPE_TASK_SUBMIT_PATHS <= mock_dashscope.ASYNC_ONLY_PATHS:
        problems.append(f"checks expect task submits at {sorted(checks.DASHSCOPE_TASK_SUBMIT_PATHS)}, "
                        "not all async paths of the mocks")
    if reference.DASHSCOPE_SYNTHESIS not in checks.DASHSCOPE_TASK_SUBMIT_PATHS:
        problems.append(f"reference submits tasks to {reference.DASHSCOPE_SYNTHESIS}, checks expect "
                        f"{sorted(checks.DASHSCOPE_TASK_SUBMIT_PATHS)}")
    sync = {"mocks": mock_dashscope.SYNC_ONLY_PATHS, "checks": frozenset({checks.DASHSCOPE_MULTIMODAL}),
            "reference": frozenset({reference.DASHSCOPE_MULTIMODAL})}
    problems += disagreements("DashScope sync image route", sync)
    if reference.DASHSCOPE_CHAT not in checks.DASHSCOPE_CHAT_PATHS:
        problems.append(f"reference sends chat to {reference.DASHSCOPE_CHAT}, checks expect "
                        f"{sorted(checks.DASHSCOPE_CHAT_PATHS)}")
    if not reference.DASHSCOPE_CHAT.startswith(mock_dashscope.COMPATIBLE_PREFIX):
        problems.append(f"reference sends chat to {reference.DASHSCOPE_CHAT}, outside the mocks' compatible mode")
    if not mock_dashscope.TASK_PATH.match(reference.DASHSCOPE_TASK.format(task_id="t-1")):
        problems.append(f"reference reads tasks at {reference.DASHSCOPE_TASK}, which the mocks do not serve")
    assert problems == []


def test_replicate_routes_agree() -> None:
    problems = []
    if not mock_replicate.MODEL_PATH.match(reference.REPLICATE_MODEL_PREDICTIONS.format(owner_name="o/m")):
        problems.append(f"reference creates predictions at {reference.REPLICATE_MODEL_PREDICTIONS}")
    if not mock_replicate.PREDICTION_PATH.match(reference.REPLICATE_PREDICTION.format(prediction_id="abc123")):
        problems.append(f"reference reads predictions at {reference.REPLICATE_PREDICTION}")
    assert problems == []


def test_seam_key_agrees() -> None:
    assert reference_gateway.TRANSPORT_KEY == TRANSPORT_KEY


def test_reference_imports_no_other_oracle() -> None:
    """The reference gateway imports nothing from the checks, the suites or the mocks."""
    imported = []
    for path in sorted((ROOT / "harness" / "reference").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.append((path.name, node.module))
            elif isinstance(node, ast.Import):
                imported += [(path.name, alias.name) for alias in node.names]
    foreign = [f"{name}: {module}" for name, module in imported
               if module.startswith(("harness.", "suites", "gwconf_suites"))
               and not module.startswith("harness.reference")]
    assert foreign == [], "the reference gateway must keep its own facts"
    assert Path(reference.__file__).parent == ROOT / "harness" / "reference"
