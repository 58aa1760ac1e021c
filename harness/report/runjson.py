"""Building, reading and validating run.json, the canonical result of one run."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness.config import _schemas as schemas
from harness.config._cassette import cassette_files
from harness.config._catalogue import catalogue_date
from harness.config._redact import scrub_data
from harness.errors import ConfigError
from harness.records._outcome import OUTCOMES, Outcome

FORMAT = "gwconf-run/1"


def harness_version() -> str:
    try:
        return version("gwconf")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def tree_digest(root: Path, pattern: str = "*") -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob(pattern) if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


def cassettes_summary(root: Path) -> dict[str, Any]:
    """run.json's `cassettes`: which fixtures, and which dated model catalogue, judged the run."""
    return {"digest": tree_digest(root), "count": len(cassette_files(root)),
            "catalogue_date": catalogue_date(root)}


def root_causes(outcomes: list[Outcome]) -> dict[str, list[str]]:
    """Each failing check (fail, warn, error), with the checks its failure blocks."""
    causes: dict[str, list[str]] = {o.check_id: [] for o in outcomes if o.outcome in ("fail", "warn", "error")}
    for o in outcomes:
        for cause in o.blocked_by:
            causes.setdefault(cause, []).append(o.check_id)
    return causes


def summarize(outcomes: list[Outcome], client_requests: int = 0) -> dict[str, Any]:
    causes = root_causes(outcomes)
    by_outcome = Counter({o: 0 for o in OUTCOMES})
    by_outcome.update(o.outcome for o in outcomes)
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    must_by_category: dict[str, dict[str, int]] = defaultdict(lambda: {"total": 0, "passed": 0})
    for o in outcomes:
        by_category[o.category][o.outcome] += 1
        if o.level == "MUST" and o.outcome != "skip":
            must_by_category[o.category]["total"] += 1
            must_by_category[o.category]["passed"] += o.outcome == "pass"
    must_total = sum(v["total"] for v in must_by_category.values())
    must_passed = sum(v["passed"] for v in must_by_category.values())
    return {
        "total": len(outcomes),
        "by_outcome": dict(by_outcome),
        "by_category": {k: dict(v) for k, v in by_category.items()},
        "must": {"total": must_total, "passed": must_passed,
                 "rate": round(must_passed / must_total, 4) if must_total else 1.0},
        "must_by_category": {k: {**v, "rate": round(v["passed"] / v["total"], 4) if v["total"]
                                 else 1.0} for k, v in must_by_category.items()},
        "verdict": "pass" if must_passed == must_total else "fail",
        # Distinct defects: a blocked check is explained by its root cause, not counted again.
        "root_causes": {"must": sum(o.level == "MUST" and o.outcome in ("fail", "error") for o in outcomes),
                        "total": len(causes),
                        "blocking": {k: v for k, v in causes.items() if v}},
        "client_requests": client_requests,
    }


def build_run(outcomes: list[Outcome], *, run_id: str, started_at: str, finished_at: str,
              gateway: dict[str, Any], cassettes: dict[str, Any], secrets: tuple[str, ...] = (),
              options: dict[str, Any] | None = None, client_requests: int = 0) -> dict[str, Any]:
    document = {
        "format": FORMAT,
        "harness": {"name": "gwconf", "version": harness_version()},
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": finished_at,
        "gateway": gateway,
        "cassettes": cassettes,
        "options": options or {},
        "summary": summarize(outcomes, client_requests),
        "checks": [o.to_dict() for o in outcomes],
        "parameter_fates": [fate for o in outcomes for fate in o.fates],
    }
    clean = scrub_data(document, secrets)
    assert isinstance(clean, dict)
    return clean


def write_run(document: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file; a missing or broken file is a one-line ConfigError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror})") from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: {what} is not JSON ({exc})") from exc


def read_run(path: Path) -> dict[str, Any]:
    """Load and validate a run.json; a bad file is a one-line ConfigError naming it."""
    document = read_json(path, "run")
    problems = schemas.errors("report", document)
    if problems:
        raise ConfigError(f"{path}: not a gwconf run.json: {problems[0]}")
    return document


def outcomes_of(document: dict[str, Any]) -> list[Outcome]:
    return [Outcome.from_dict(c) for c in document["checks"]]
